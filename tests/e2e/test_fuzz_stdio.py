"""A sample of the tool fuzz cases over stdio: a real MCP client, `python -m codex_mcp`, the fake Codex.

In process (`tests/fuzz`) the arguments never leave Python; here each case is JSON-encoded by the
client, parsed by the SDK in the server, and its result written back, so whatever only serialization
breaks shows up. A tenth of CODEX_MCP_FUZZ_EXAMPLES per tool and kind. Also nonsense below the
tools: lines that are no JSON-RPC at all must leave the server serving, with nothing but JSON on
its stdout.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Generator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import mcp_types as types
import pytest
from anyio.abc import Process
from anyio.from_thread import start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_mcp.wire.tools import TOOL_NAMES
from tests.e2e.client import running_server, server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import RawClient
from tests.fuzz.strategies import (
    FUZZ_EXAMPLES,
    FUZZ_SETTINGS,
    PROFILE,
    Case,
    ToolArguments,
    World,
    check_invalid,
    check_refused,
    check_valid,
    nested,
    summary,
    tools_with_aliases,
    tools_with_identifiers,
)
from tests.harness.codex_env import CodexEnv
from tests.harness.fake_app_server import write_fake_codex
from tests.harness.images import tiny_png

STDIO_EXAMPLES: Final = max(FUZZ_EXAMPLES // 10, 10)
CALL_BOUND_S: Final = 30.0
_STDIO_SETTINGS: Final = settings(FUZZ_SETTINGS, max_examples=STDIO_EXAMPLES)
# Lines a client could write that are no request we can answer; the SDK answers some, drops others.
NONSENSE_LINES: Final = (
    b"this is not json",
    b"\xff\xfe\x00 binary \x80",
    b"[1, 2, 3]",
    b"{",
    b"null",
    b'{"jsonrpc": "2.0", "method": "tools/call"}',
    b'{"jsonrpc": "2.0", "id": 900, "method": "no/such/method", "params": {}}',
    b'{"jsonrpc": "2.0", "id": 901, "method": "tools/call"}',
    b'{"jsonrpc": "2.0", "id": 902, "method": "tools/call", "params": {"name": "codex", "arguments": [1]}}',
    b'{"jsonrpc": "2.0", "id": 903, "method": "tools/call", "params": {"name": 7}}',
    # A lone surrogate escape: valid JSON text, but no str the server could write back.
    b'{"jsonrpc": "2.0", "id": 904, "method": "tools/call", '
    b'"params": {"name": "codex_setup", "arguments": {"cwd": "\\ud800"}}}',
    # Deeper than the SDK's JSON parser goes.
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 905,
            "method": "tools/call",
            "params": {"name": "codex", "arguments": nested(400, True)},
        }
    ).encode(),
    b'{"jsonrpc": "2.0", "id": 906, "method": "tools/call", '
    + b'"params": {"name": "codex_setup", "arguments": {"cwd": "'
    + b"a" * 5_000_000
    + b'"}}}',
)

pytestmark = pytest.mark.timeout(max(300, STDIO_EXAMPLES * 5))


def _fake_env(codex_env: CodexEnv) -> dict[str, str]:
    fake = write_fake_codex(codex_env.root / "fake-bin")
    (codex_env.codex_home / f"{PROFILE}.config.toml").write_text('model = "fuzz-model"\n', encoding="utf-8")
    # The hanging session would hold the shutdown for the whole default drain.
    return {"CODEX_MCP_PATH": str(fake), "CODEX_MCP_DRAIN_TIMEOUT_MS": "100"}


@contextmanager
def stdio_world(codex_env: CodexEnv) -> Generator[World]:
    """`python -m codex_mcp` on the fake Codex behind a real stdio client; afterwards no child is left."""
    image = codex_env.workspace / "pixel.png"
    image.write_bytes(tiny_png())
    with ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal("asyncio"))
        mcp = stack.enter_context(
            portal.wrap_async_context_manager(running_server(codex_env, _fake_env(codex_env)))
        )

        def tools_call(tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
            async def bounded() -> types.CallToolResult:
                with anyio.fail_after(CALL_BOUND_S):
                    return await mcp.raw_call(tool, arguments)

            return portal.call(bounded)

        yield World(tools_call, codex_env.workspace, image)
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_a_sample_of_valid_arguments_over_stdio_never_ends_in_internal(
    tool: str, codex_env: CodexEnv
) -> None:
    outcomes: Counter[str] = Counter()
    with stdio_world(codex_env) as world:

        @_STDIO_SETTINGS
        @given(ToolArguments(tool, wire_safe=True).valid())
        def check(case: Case) -> None:
            check_valid(world, tool, case, outcomes)

        check()
        world.session("@idle")
    print(summary(tool, "valid over stdio", outcomes))
    assert sum(outcomes.values()) >= min(STDIO_EXAMPLES, 10)


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_a_sample_of_invalid_arguments_over_stdio_ends_in_invalid_argument_naming_the_field(
    tool: str, codex_env: CodexEnv
) -> None:
    outcomes: Counter[str] = Counter()
    with stdio_world(codex_env) as world:

        @_STDIO_SETTINGS
        @given(ToolArguments(tool, wire_safe=True).invalid())
        def check(case: Case) -> None:
            check_invalid(world, tool, case, outcomes)

        check()
        world.session("@idle")
    print(summary(tool, "invalid over stdio", outcomes))
    assert sum(outcomes.values()) >= min(STDIO_EXAMPLES, 10)


@pytest.mark.parametrize("tool", tools_with_aliases(TOOL_NAMES))
def test_a_sample_of_aliases_over_stdio_is_refused_naming_them(tool: str, codex_env: CodexEnv) -> None:
    outcomes: Counter[str] = Counter()
    with stdio_world(codex_env) as world:

        @_STDIO_SETTINGS
        @given(ToolArguments(tool, wire_safe=True).aliases())
        def check(case: Case) -> None:
            check_invalid(world, tool, case, outcomes)

        check()
        world.session("@idle")
    print(summary(tool, "aliases over stdio", outcomes))
    assert sum(outcomes.values()) >= min(STDIO_EXAMPLES, 10)


@pytest.mark.parametrize("tool", tools_with_identifiers(TOOL_NAMES))
def test_a_sample_of_bad_identifiers_over_stdio_is_refused_naming_the_field(
    tool: str, codex_env: CodexEnv
) -> None:
    # Lone surrogates are left out: the SDK's client cannot write them (test_bad_identifiers
    # sends them raw).
    outcomes: Counter[str] = Counter()
    with stdio_world(codex_env) as world:

        @_STDIO_SETTINGS
        @given(ToolArguments(tool, wire_safe=True).bad_identifiers())
        def check(case: Case) -> None:
            check_refused(world, tool, case, outcomes)

        check()
        world.session("@idle")
    print(summary(tool, "bad identifiers over stdio", outcomes))
    assert sum(outcomes.values()) >= min(STDIO_EXAMPLES, 10)


async def _still_serving(raw: RawClient) -> None:
    with anyio.fail_after(CALL_BOUND_S):
        answer = await raw.request("tools/call", {"name": "codex_session", "arguments": {"action": "list"}})
    assert answer["result"]["structuredContent"] == {"action": "list", "sessions": []}, answer


async def _write_line(process: Process, line: bytes) -> None:
    assert process.stdin is not None
    with anyio.fail_after(CALL_BOUND_S):
        await process.stdin.send(line + b"\n")


async def _start_server(codex_env: CodexEnv) -> tuple[Process, RawClient]:
    env = server_env(codex_env, _fake_env(codex_env))
    process = await anyio.open_process([sys.executable, "-m", "codex_mcp"], env=env, cwd=codex_env.workspace)
    raw = RawClient(process)
    with anyio.fail_after(CALL_BOUND_S):
        await raw.initialize()
    return process, raw


async def _stop_server(process: Process, raw: RawClient) -> None:
    """Close stdin: the server must exit 0, having written nothing but JSON-RPC lines."""
    assert process.stdin is not None
    await process.stdin.aclose()
    with anyio.fail_after(CALL_BOUND_S):
        assert process.stdout is not None
        async for chunk in process.stdout:
            raw.stdout += chunk
        assert await process.wait() == 0
    await process.aclose()
    for line in raw.stdout.splitlines():
        assert isinstance(json.loads(line), dict), line[:200]


@pytest.mark.anyio
async def test_nonsense_lines_leave_the_server_serving_with_only_json_on_stdout(codex_env: CodexEnv) -> None:
    process, raw = await _start_server(codex_env)
    try:
        for line in NONSENSE_LINES:
            await _write_line(process, line)
            await _still_serving(raw)
    finally:
        await _stop_server(process, raw)
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


def test_random_bytes_on_stdin_leave_the_server_serving(codex_env: CodexEnv) -> None:
    with start_blocking_portal("asyncio") as portal:
        process, raw = portal.call(_start_server, codex_env)

        @settings(_STDIO_SETTINGS, max_examples=max(STDIO_EXAMPLES // 2, 10))
        @given(st.binary(max_size=300).map(lambda data: data.replace(b"\n", b" ")))
        def check(line: bytes) -> None:
            portal.call(_write_line, process, line)
            portal.call(_still_serving, raw)

        try:
            check()
        finally:
            portal.call(_stop_server, process, raw)
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


# --- names the wire cannot carry ------------------------------------------------------------


def _not_utf8(path: Path) -> str:
    """`path` + a name holding the byte 0xff, as Python spells it (a surrogate escape)."""
    return os.fsdecode(os.fsencode(path) + b"/odd-\xff")


@pytest.mark.anyio
async def test_a_cwd_leading_to_a_name_that_is_not_utf8_is_refused_naming_cwd(codex_env: CodexEnv) -> None:
    odd = _not_utf8(codex_env.root)
    os.mkdir(odd)
    link = codex_env.workspace / "link"
    link.symlink_to(odd)
    async with running_server(codex_env, _fake_env(codex_env)) as mcp:
        error = await mcp.error(
            "codex", {"prompt": "hello", "approvalPolicy": "never", "sandbox": "read-only", "cwd": str(link)}
        )
        setup = await mcp.error("codex_setup", {"cwd": str(link)})
        listed = await mcp.call("codex_session", {"action": "list"})
    assert (error.code, error.field) == ("INVALID_ARGUMENT", "cwd")
    assert "not UTF-8" in error.message
    assert (setup.code, setup.field) == ("INVALID_ARGUMENT", "cwd")
    assert listed["sessions"] == []


@pytest.mark.anyio
async def test_a_codex_home_whose_name_is_not_utf8_is_reported_with_replacement_characters(
    codex_env: CodexEnv,
) -> None:
    home = _not_utf8(codex_env.root)
    os.mkdir(home)
    async with running_server(codex_env, {**_fake_env(codex_env), "CODEX_HOME": home}) as mcp:
        report = await mcp.call("codex_setup", {})
        still = await mcp.call("codex_session", {"action": "list"})
    [user_config] = [f for f in report["configFiles"] if f["scope"] == "user"]
    assert "odd-\ufffd" in user_config["path"]
    assert still == {"action": "list", "sessions": []}
