"""The recursion guard with the real Codex: a user config that runs codex-mcp starts no nested server.

The user's `[mcp_servers.codex-mcp]` runs our server the way a config would (`command =
<this python>`, `args = ["-m", "codex_mcp"]`). A nested codex-mcp would show three ways: a process
whose environment is Codex's whitelist (our HOME, none of our CODEX_MCP_* settings), the state
directory it creates under that HOME (`~/.codex-mcp`), and `mcpServer/startupStatus/updated`
events in the session. The last test allows nesting on purpose and sees all of it, so these checks
can fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import anyio
import mcp_types as types
import pytest

from codex_mcp.nesting import NESTING_LEVEL_VARIABLE
from tests.e2e.client import McpServerUnderTest, running_server
from tests.harness.codex_env import CodexEnv, create_codex_env
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

START: Final = {"approvalPolicy": "never", "sandbox": "read-only", "advanced": {"waitForResult": 60_000}}
# A nested server would start with the thread; a live one is found within this.
_NESTED_START_S: Final = 20.0


def _entry(*, required: bool, name: str = "codex-mcp") -> str:
    lines = [f'[mcp_servers."{name}"]', f'command = "{sys.executable}"', 'args = ["-m", "codex_mcp"]']
    if required:
        lines.append("required = true")
    return "\n".join(lines) + "\n"


def _guarded_env(
    mock_model: MockModelServer, root: Path, *, extra: str = "", top_level: str = ""
) -> CodexEnv:
    return create_codex_env(
        root,
        mock_model.base_url,
        proxy_url=f"http://127.0.0.1:{mock_model.port}",
        config_extra=extra,
        config_top_level=top_level,
    )


def _nested_servers(codex_env: CodexEnv) -> list[int]:
    """Live codex-mcp processes started by a Codex child: our HOME, none of our settings."""
    home = f"HOME={codex_env.home}".encode()
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        ours = any(entry.startswith(b"CODEX_MCP_PATH=") for entry in environ)
        if b"codex_mcp" in argv and home in environ and not ours and state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


def _environ(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def _mcp_startup_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if str(e["data"].get("method", "")).startswith("mcpServer/startupStatus")]


async def _events(mcp: McpServerUnderTest, session_id: str) -> list[dict[str, Any]]:
    poll = await mcp.call(
        "codex_check",
        {"action": "poll", "sessionId": session_id, "cursor": 0, "maxEvents": 500, "responseMode": "full"},
    )
    return list(poll["events"])


def _assert_no_nested_server(codex_env: CodexEnv, events: list[dict[str, Any]]) -> None:
    assert _nested_servers(codex_env) == []
    assert not (codex_env.home / ".codex-mcp").exists()
    assert _mcp_startup_events(events) == []


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
async def test_a_codex_home_entry_running_codex_mcp_starts_no_nested_server(
    mock_model: MockModelServer, tmp_path: Path, required: bool
) -> None:
    codex_env = _guarded_env(mock_model, tmp_path / "codex", extra=_entry(required=required))
    async with running_server(codex_env) as mcp:
        first = await mcp.call("codex", {"prompt": "scenario:plain hi", **START})
        reply = await mcp.call(
            "codex_reply",
            {"sessionId": first["sessionId"], "prompt": "scenario:plain again", "waitForResult": 60_000},
        )
        fork = await mcp.call("codex_session", {"action": "fork", "sessionId": first["sessionId"]})
        forked = await mcp.call(
            "codex_reply",
            {"sessionId": fork["sessionId"], "prompt": "scenario:plain fork", "waitForResult": 60_000},
        )
        events = await _events(mcp, first["sessionId"]) + await _events(mcp, fork["sessionId"])
        _assert_no_nested_server(codex_env, events)
    assert first["status"] == reply["status"] == forked["status"] == "idle"
    assert first["result"]["text"] == PLAIN_TEXT


async def test_a_resumed_thread_starts_no_nested_server(mock_model: MockModelServer, tmp_path: Path) -> None:
    codex_env = _guarded_env(mock_model, tmp_path / "codex", extra=_entry(required=True))
    async with running_server(codex_env) as mcp:
        first = await mcp.call("codex", {"prompt": "scenario:plain hi", **START})
        _assert_no_nested_server(codex_env, await _events(mcp, first["sessionId"]))
    # A new server on the same state directory resumes the thread in a new Codex child.
    async with running_server(codex_env) as mcp:
        reply = await mcp.call(
            "codex_reply",
            {"sessionId": first["sessionId"], "prompt": "scenario:plain again", "waitForResult": 60_000},
        )
        events = await _events(mcp, first["sessionId"])
        _assert_no_nested_server(codex_env, events)
    assert reply["status"] == "idle"
    assert reply["result"]["text"] == PLAIN_TEXT


async def test_an_exec_session_with_a_required_codex_mcp_entry_works_and_nests_nothing(
    mock_model: MockModelServer, tmp_path: Path
) -> None:
    codex_env = _guarded_env(mock_model, tmp_path / "codex", extra=_entry(required=True))
    async with running_server(codex_env, {"CODEX_MCP_MODE": "exec"}) as mcp:
        first = await mcp.call("codex", {"prompt": "scenario:plain hi", **START})
        reply = await mcp.call(
            "codex_reply",
            {"sessionId": first["sessionId"], "prompt": "scenario:plain again", "waitForResult": 60_000},
        )
        events = await _events(mcp, first["sessionId"])
        _assert_no_nested_server(codex_env, events)
    assert first["status"] == reply["status"] == "idle"
    assert reply["result"]["text"] == PLAIN_TEXT


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
async def test_a_project_entry_running_codex_mcp_starts_no_nested_server_trusted_or_not(
    mock_model: MockModelServer, tmp_path: Path, trusted: bool
) -> None:
    root = tmp_path / "codex"
    workspace = root / "workspace"
    # Codex reads a project's .codex/config.toml only when the project is trusted; the guard must
    # disable the entry when it does, and must not break the thread when it does not.
    trust = f'[projects."{workspace}"]\ntrust_level = "trusted"\n' if trusted else ""
    codex_env = _guarded_env(mock_model, root, extra=trust)
    (workspace / ".codex").mkdir()
    (workspace / ".codex" / "config.toml").write_text(_entry(required=True, name="project-codex-mcp"))
    async with running_server(codex_env) as mcp:
        out = await mcp.call("codex", {"prompt": "scenario:plain hi", **START})
        events = await _events(mcp, out["sessionId"])
        _assert_no_nested_server(codex_env, events)
    assert out["status"] == "idle"
    assert out["result"]["text"] == PLAIN_TEXT


async def test_nesting_on_purpose_starts_one_nested_server_that_knows_its_depth(
    mock_model: MockModelServer, tmp_path: Path
) -> None:
    codex_env = _guarded_env(mock_model, tmp_path / "codex", extra=_entry(required=True))
    async with running_server(codex_env, {"CODEX_MCP_MAX_NESTING": "1"}) as mcp:
        out = await mcp.call("codex", {"prompt": "scenario:plain hi", **START})
        with anyio.fail_after(_NESTED_START_S):
            # The nested server is Codex's child, not ours: only /proc shows it.
            while not _nested_servers(codex_env):  # noqa: ASYNC110
                await anyio.sleep(0.1)
        [nested] = _nested_servers(codex_env)
        environ = _environ(nested)
        read = await mcp.session.read_resource("codex-mcp:///server-info")
    [content] = read.contents
    assert isinstance(content, types.TextResourceContents)
    assert json.loads(content.text)["nesting"] == {"level": 0, "maxNesting": 1, "childrenMayNest": True}
    assert out["status"] == "idle"
    assert f"{NESTING_LEVEL_VARIABLE}=1".encode() in environ
    assert b"CODEX_MCP_MAX_NESTING=1" in environ
    assert (codex_env.home / ".codex-mcp").exists()
