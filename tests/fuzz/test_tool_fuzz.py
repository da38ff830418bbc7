"""Property-based fuzzing of the five tools, in process: the real server and handlers, a fake Codex.

Each tool gets CODEX_MCP_FUZZ_EXAMPLES valid cases (none may end INTERNAL or break the connection;
an INVALID_ARGUMENT must name its field) and as many invalid ones (each must end INVALID_ARGUMENT
naming the field the case breaks). The server is the one `python -m codex_mcp` builds, called
through the MCP SDK's in-process client, with output validation on, so a result that breaks its
published schema counts as INTERNAL. Codex is `tests/harness/fake_app_server.py`, so a call takes
about a millisecond; the sessions the slots stand for (idle, running, waiting on an approval or a
question, errored, cancelled) are started through the same server. Counts are printed per test
(`pytest -s`).
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Generator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import mcp_types as types
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import find, given, settings
from hypothesis import strategies as st
from mcp import Client

from codex_mcp.backend_mode import ModeChoice, ModeResolver
from codex_mcp.server.app import Startup, build_server
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.wire.tools import TOOL_NAMES
from tests.e2e.processes import live_processes_with_env
from tests.fuzz.strategies import (
    FUZZ_EXAMPLES,
    FUZZ_SETTINGS,
    PROFILE,
    Case,
    ToolArguments,
    World,
    bad_names,
    check_invalid,
    check_refused,
    check_valid,
    outcome_of,
    summary,
    tools_with_aliases,
    tools_with_identifiers,
)
from tests.harness.fake_app_server import write_fake_codex
from tests.harness.images import tiny_png

# Bound on one call: waits are capped at a few ms, so only a hang comes near it.
CALL_BOUND_S: Final = 30.0

pytestmark = pytest.mark.timeout(max(300, FUZZ_EXAMPLES))


@contextmanager
def fuzz_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Generator[World]:
    """The server on the fake Codex, in a portal's event loop; afterwards no child is left."""
    codex = write_fake_codex(tmp_path / "bin")
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / f"{PROFILE}.config.toml").write_text('model = "fuzz-model"\n', encoding="utf-8")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    image = workspace / "pixel.png"
    image.write_bytes(tiny_png())
    # A call without cwd works in the server's: never this repository (a fuzzed worktree: true
    # would add worktrees and branches to it).
    monkeypatch.chdir(workspace)
    # codex_setup and profiles read the process environment; the fake child inherits it.
    monkeypatch.setenv("CODEX_MCP_PATH", str(codex))
    monkeypatch.setenv("CODEX_HOME", str(home))
    settings_env = {
        "CODEX_MCP_VALIDATE_OUTPUT": "1",
        "CODEX_MCP_STATE_DIR": str(tmp_path / "state"),
        # The hanging session would hold the shutdown for the whole default drain.
        "CODEX_MCP_DRAIN_TIMEOUT_MS": "100",
        "CODEX_MCP_APP_SERVER": "child",  # the fake Codex is a child; a service would outlive the test
    }
    startup = Startup(
        Settings.from_env(settings_env),
        CodexExecutable(codex, "test"),
        ModeResolver.fixed(ModeChoice("app-server", "test")),
    )
    with ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal("asyncio"))
        client = stack.enter_context(portal.wrap_async_context_manager(Client(build_server(startup))))

        def tools_call(tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
            async def bounded() -> types.CallToolResult:
                with anyio.fail_after(CALL_BOUND_S):
                    return await client.call_tool(tool, arguments)

            return portal.call(bounded)

        def retry_call(
            tool: str, arguments: dict[str, Any], state: str, responses: dict[str, Any]
        ) -> types.CallToolResult:
            async def bounded() -> types.CallToolResult:
                with anyio.fail_after(CALL_BOUND_S):
                    return await client.call_tool(
                        tool, arguments, request_state=state, input_responses=responses
                    )

            return portal.call(bounded)

        yield World(tools_call, workspace, image, retry_call)
    assert live_processes_with_env(f"CODEX_HOME={home}") == []


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_valid_arguments_never_end_in_internal_or_a_broken_connection(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: Counter[str] = Counter()
    with fuzz_world(tmp_path, monkeypatch) as world:

        @FUZZ_SETTINGS
        @given(ToolArguments(tool).valid())
        def check(case: Case) -> None:
            check_valid(world, tool, case, outcomes)

        check()
        # Still serving after all of it.
        world.session("@idle")
    print(summary(tool, "valid", outcomes))
    assert sum(outcomes.values()) >= min(FUZZ_EXAMPLES, 100)


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_invalid_arguments_end_in_invalid_argument_naming_the_field(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: Counter[str] = Counter()
    with fuzz_world(tmp_path, monkeypatch) as world:

        @FUZZ_SETTINGS
        @given(ToolArguments(tool).invalid())
        def check(case: Case) -> None:
            check_invalid(world, tool, case, outcomes)

        check()
        world.session("@idle")
    print(summary(tool, "invalid", outcomes))
    assert sum(outcomes.values()) >= min(FUZZ_EXAMPLES, 100)


ALIAS_TOOLS: Final = tools_with_aliases(TOOL_NAMES)
ID_TOOLS: Final = tools_with_identifiers(TOOL_NAMES)


def test_aliases_and_identifiers_are_fuzzed_for_every_tool_that_has_them() -> None:
    # codex_setup's one field, cwd, has no other spelling, and it takes no id.
    assert set(ALIAS_TOOLS) == set(TOOL_NAMES) - {"codex_setup"}
    assert set(ID_TOOLS) == {"codex_reply", "codex_session", "codex_check"}


@pytest.mark.parametrize("tool", ALIAS_TOOLS)
def test_snake_case_and_python_names_of_declared_fields_are_refused_naming_them(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: Counter[str] = Counter()
    with fuzz_world(tmp_path, monkeypatch) as world:

        @FUZZ_SETTINGS
        @given(ToolArguments(tool).aliases())
        def check(case: Case) -> None:
            check_invalid(world, tool, case, outcomes)

        check()
        world.session("@idle")
    print(summary(tool, "aliases", outcomes))
    assert sum(outcomes.values()) >= min(FUZZ_EXAMPLES, 100)


@pytest.mark.parametrize("tool", ID_TOOLS)
def test_bad_identifiers_are_refused_naming_the_field_for_every_action(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: Counter[str] = Counter()
    with fuzz_world(tmp_path, monkeypatch) as world:

        @FUZZ_SETTINGS
        @given(ToolArguments(tool).bad_identifiers())
        def check(case: Case) -> None:
            check_refused(world, tool, case, outcomes)

        check()
        world.session("@idle")
    print(summary(tool, "bad identifiers", outcomes))
    assert sum(outcomes.values()) >= min(FUZZ_EXAMPLES, 100)


def test_unknown_tool_names_end_in_invalid_argument_naming_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: Counter[str] = Counter()
    with fuzz_world(tmp_path, monkeypatch) as world:

        @settings(FUZZ_SETTINGS, max_examples=max(FUZZ_EXAMPLES // 4, 25))
        # The SDK's client cannot send a name with a lone surrogate (it encodes it for a header);
        # tests/e2e/test_bad_identifiers.py sends such names raw.
        @given(bad_names(wire_safe=True).filter(lambda name: name not in TOOL_NAMES))
        def check(name: str) -> None:
            outcome = outcome_of(world.call(name, {}))
            assert (outcome.code, outcome.field) == ("INVALID_ARGUMENT", "name"), outcome
            outcomes[f"{outcome.code}({outcome.field})"] += 1

        check()
    print(summary("(unknown)", "tool names", outcomes))


def test_the_valid_cases_of_codex_reply_steer_and_leave_a_new_turns_overrides_out() -> None:
    strategy = ToolArguments("codex_reply").valid()
    overrides = {"model", "approvalPolicy", "effort", "summary", "personality", "sandbox", "cwd"}
    steer = find(
        strategy, lambda case: case.arguments.get("steer") is True and "clientMessageId" in case.arguments
    )
    assert not overrides & set(steer.arguments)
    turn = find(strategy, lambda case: case.arguments.get("steer") is not True and "model" in case.arguments)
    assert "clientMessageId" not in turn.arguments


def test_a_steer_of_the_running_slot_reaches_the_fake_codex_and_a_retry_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fuzz_world(tmp_path, monkeypatch) as world:
        arguments = world.fill(
            {"sessionId": "@running", "prompt": "steer me", "steer": True, "clientMessageId": "f1"}
        )
        first = world.ok("codex_reply", arguments)
        again = world.ok("codex_reply", arguments)
        idle = world.fill({"sessionId": "@idle", "prompt": "steer me", "steer": True})
        refused = outcome_of(world.call("codex_reply", idle))
    assert (first["status"], first["steered"]["duplicate"]) == ("running", False)
    assert again["steered"] == {**first["steered"], "duplicate": True}
    assert refused.code == "SESSION_NOT_RUNNING"


def test_the_valid_cases_of_codex_ask_for_both_approvals_modes() -> None:
    strategy = ToolArguments("codex").valid()
    for mode in ("poll", "elicit"):
        find(strategy, lambda case, mode=mode: case.arguments.get("advanced", {}).get("approvals") == mode)


_STATES: Final = st.one_of(
    st.text(max_size=400),
    st.tuples(st.binary(max_size=200), st.binary(max_size=40)).map(
        lambda parts: ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts)
    ),
)
_RESPONSES: Final = st.dictionaries(
    st.text(min_size=1, max_size=20),
    st.sampled_from(
        [
            types.ElicitResult(action="accept", content={"decision": "accept"}),
            types.ElicitResult(action="decline"),
            types.ElicitResult(action="cancel"),
        ]
    ),
    max_size=3,
)


def test_a_request_state_we_did_not_sign_is_invalid_argument_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fuzz_world(tmp_path, monkeypatch) as world:
        assert world.retry_call is not None
        retry = world.retry_call
        waiting = world.fill({"sessionId": "@approval"})["sessionId"]
        calls = {
            "codex": {
                "prompt": "hello",
                "cwd": str(world.workspace),
                "approvalPolicy": "on-request",
                "sandbox": "read-only",
                "advanced": {"approvals": "elicit"},
            },
            "codex_reply": {"sessionId": waiting, "prompt": "again"},
            "codex_check": {"action": "poll", "sessionId": waiting},
        }
        before = len(world.ok("codex_session", {"action": "list"})["sessions"])
        outcomes: Counter[str] = Counter()

        @settings(FUZZ_SETTINGS, max_examples=min(FUZZ_EXAMPLES, 60))
        @given(tool=st.sampled_from(sorted(calls)), state=_STATES, responses=_RESPONSES)
        def check(tool: str, state: str, responses: dict[str, Any]) -> None:
            outcome = outcome_of(retry(tool, calls[tool], state, responses))
            outcomes[f"{tool}:{outcome.code}({outcome.field})"] += 1
            assert (outcome.code, outcome.field) == ("INVALID_ARGUMENT", "requestState"), outcome

        check()
        after = len(world.ok("codex_session", {"action": "list"})["sessions"])
        pending = world.ok("codex_check", {"action": "poll", "sessionId": waiting})
    assert after == before  # no retry started a session
    assert pending.get("actions")  # ... nor answered the waiting approval
    print(summary("retries", "forged requestState", outcomes))
