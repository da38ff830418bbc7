"""Backend detection never downgrades silently: it runs on first need, off the start-up path, and tells
"this Codex has no app-server" (an error exit) from "the probe did not answer in time".

Each case runs a stand-in Codex: a shell script that does one thing for `app-server --help` and
hands everything else to the real pinned Codex (which talks to the mock model). The cases whose
probe hangs run the real server in process with a short probe bound (the shipped bound is 10 s).
"""

from __future__ import annotations

import json
import logging
import stat
import sys
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, cast

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from codex_mcp.backend_mode import ModeResolver
from codex_mcp.server.app import Startup, build_server
from codex_mcp.settings import CodexExecutable, Settings
from tests.e2e.client import running_server, server_env
from tests.e2e.processes import live_processes_with_env
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

START: Final = {"approvalPolicy": "never", "sandbox": "read-only", "advanced": {"waitForResult": 60_000}}
# The probe bound of the in-process cases: a hang is cut this soon.
_PROBE_BOUND_S: Final = 0.5
_TEST_BOUND_S: Final = 90.0
_USAGE_ERROR: Final = "echo \"error: unrecognized subcommand 'app-server'\" >&2; exit 2"


def _stand_in(path: Path, codex_env: CodexEnv, on_help: str, on_app_server: str = "") -> Path:
    """A Codex whose `app-server --help` runs `on_help` (and `app-server` alone `on_app_server`, if
    given); every call is logged to `<path>.log`, everything else goes to the real Codex."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_suffix(".log")
    lines = [
        "#!/bin/sh",
        f'echo "$*" >> "{log}"',
        f'if [ "$1" = "app-server" ] && [ "$2" = "--help" ]; then {on_help}; fi',
    ]
    if on_app_server:
        lines.append(f'if [ "$1" = "app-server" ] && [ "$#" = 1 ]; then {on_app_server}; fi')
    lines.append(f'exec "{codex_env.binary}" "$@"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _calls(stand_in: Path) -> list[str]:
    log = stand_in.with_suffix(".log")
    return log.read_text().splitlines() if log.exists() else []


def _structured(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    return cast(dict[str, Any], result.structured_content)


async def _server_info(client: Client | ClientSession) -> dict[str, Any]:
    read = await client.read_resource("codex-mcp:///server-info")
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    return cast(dict[str, Any], json.loads(content.text))


@asynccontextmanager
async def in_process(
    codex_env: CodexEnv, stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncGenerator[Client]:
    """The real server in process on `stand_in`, its probe bounded by `_PROBE_BOUND_S`."""
    # The children inherit our environment: the isolated Codex's one, with the stand-in as Codex.
    for name, value in server_env(codex_env, {"CODEX_MCP_PATH": str(stand_in)}).items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(
        {
            "CODEX_MCP_VALIDATE_OUTPUT": "1",
            "CODEX_MCP_DRAIN_TIMEOUT_MS": "100",
            "CODEX_MCP_APP_SERVER": "child",
        }
    )
    backend = ModeResolver(stand_in, probe_timeout_s=_PROBE_BOUND_S)
    startup = Startup(settings, CodexExecutable(stand_in, "CODEX_MCP_PATH"), backend)
    with anyio.fail_after(_TEST_BOUND_S):
        async with Client(build_server(startup)) as client:
            yield client
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


async def test_the_server_answers_its_first_requests_without_running_the_probe(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    # A Codex that hangs on everything: anything at start-up that ran it would hold the answers up.
    stand_in = _stand_in(tmp_path / "bin" / "codex", codex_env, on_help="exec sleep 600")
    stand_in.write_text(f'#!/bin/sh\necho "$*" >> "{stand_in.with_suffix(".log")}"\nexec sleep 600\n')
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codex_mcp"],
        env=server_env(codex_env, {"CODEX_MCP_PATH": str(stand_in)}),
        cwd=str(codex_env.workspace),
    )
    began = time.monotonic()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(30):
            await session.initialize()
            answered = time.monotonic() - began
            tools = await session.list_tools()
            await session.list_resources()
        calls_before_any_need = _calls(stand_in)
    assert calls_before_any_need == []
    assert len(tools.tools) == 5
    # Well under the probe's 10 s bound: nothing waited for the hanging Codex.
    assert answered < 10, answered


async def test_a_codex_that_exits_2_on_app_server_help_runs_exec_and_says_why(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    stand_in = _stand_in(tmp_path / "bin" / "codex-internal", codex_env, on_help=_USAGE_ERROR)
    async with running_server(codex_env, {"CODEX_MCP_PATH": str(stand_in)}) as mcp:
        setup = await mcp.call("codex_setup", {})
        info = await _server_info(mcp.session)
        out = await mcp.call("codex", {"prompt": "scenario:plain hi", **START})
    assert setup["backend"]["mode"] == "exec"
    source = setup["backend"]["source"]
    assert "exited 2" in source
    assert "unrecognized subcommand 'app-server'" in source
    assert "no app-server" in source
    assert info["backend"] == setup["backend"]
    assert out["result"]["text"] == PLAIN_TEXT
    assert _calls(stand_in).count("app-server --help") == 1


async def test_a_probe_that_hangs_assumes_app_server_and_the_first_spawn_confirms_it(
    codex_env: CodexEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in = _stand_in(tmp_path / "bin" / "codex", codex_env, on_help="exec sleep 600")
    with caplog.at_level(logging.WARNING, logger="codex_mcp.backend_mode"):
        async with in_process(codex_env, stand_in, monkeypatch) as client:
            assumed = _structured(await client.call_tool("codex_setup", {}))["backend"]
            out = _structured(await client.call_tool("codex", {"prompt": "scenario:plain hi", **START}))
            confirmed = _structured(await client.call_tool("codex_setup", {}))["backend"]
            info = await _server_info(client)
    assert assumed["mode"] == "app-server"
    assert assumed["source"].startswith("assumed: `codex app-server --help` gave no answer")
    assert out["result"]["text"] == PLAIN_TEXT
    assert confirmed["mode"] == "app-server"
    assert confirmed["source"].startswith("confirmed: `codex app-server` started")
    assert info["backend"] == confirmed
    assert any(r.levelno == logging.WARNING and "gave no answer" in r.getMessage() for r in caplog.records)
    assert _calls(stand_in).count("app-server --help") == 1


async def test_a_hung_probe_then_a_codex_without_app_server_falls_back_to_exec_at_the_first_spawn(
    codex_env: CodexEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A cold Codex without app-server: its first --help hangs, the later ones and the spawn fail at once.
    first = tmp_path / "first-help-done"
    stand_in = _stand_in(
        tmp_path / "bin" / "codex",
        codex_env,
        on_help=f'if [ ! -e "{first}" ]; then touch "{first}"; exec sleep 600; fi; {_USAGE_ERROR}',
        on_app_server=_USAGE_ERROR,
    )
    with caplog.at_level(logging.WARNING, logger="codex_mcp.backend_mode"):
        async with in_process(codex_env, stand_in, monkeypatch) as client:
            out = _structured(await client.call_tool("codex", {"prompt": "scenario:plain hi", **START}))
            session = _structured(
                await client.call_tool("codex_session", {"action": "get", "sessionId": out["sessionId"]})
            )
            setup = _structured(await client.call_tool("codex_setup", {}))["backend"]
            info = await _server_info(client)
    assert out["result"]["text"] == PLAIN_TEXT
    assert session["backend"] == "exec"
    assert setup["mode"] == "exec"
    assert setup["source"].startswith("fallback: `codex app-server` did not start")
    assert "no app-server" in setup["source"]
    assert info["backend"] == setup
    assert any(r.levelno == logging.WARNING and "backend exec" in r.getMessage() for r in caplog.records)
    assert _calls(stand_in)[:3] == ["app-server --help", "app-server", "app-server --help"]
