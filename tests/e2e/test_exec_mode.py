"""The exec fallback end to end: MCP client -> codex-mcp -> real `codex exec --json` -> mock model."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import anyio
import pytest

from tests.e2e.client import codex_args, running_server
from tests.e2e.processes import live_processes_with_env
from tests.harness.codex_env import CodexEnv
from tests.harness.images import tiny_png
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

EXEC = {"CODEX_MCP_MODE": "exec"}


def _inputs_text(mock: MockModelServer) -> str:
    return json.dumps(mock.responses_requests()[-1].input_items)


async def test_a_plain_exec_turn_returns_the_agents_answer(codex_env: CodexEnv) -> None:
    async with running_server(codex_env, EXEC) as mcp:
        out = await mcp.call("codex", codex_args("scenario:plain hello", wait_ms=60000))
        info = await mcp.call(
            "codex_session", {"action": "get", "sessionId": out["sessionId"], "includeSensitive": True}
        )
    assert out["status"] == "idle"
    assert out["result"]["text"] == PLAIN_TEXT
    assert out["result"]["usage"]["totalTokens"] > 0
    assert info["backend"] == "exec"
    assert not info["threadId"].startswith("exec_thread_")


async def test_an_exec_reply_resumes_the_thread_with_its_context(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env, EXEC) as mcp:
        first = await mcp.call("codex", codex_args("scenario:plain the password is HERON", wait_ms=60000))
        reply = await mcp.call(
            "codex_reply",
            {
                "sessionId": first["sessionId"],
                "prompt": "scenario:plain the password?",
                "waitForResult": 60000,
            },
        )
    assert reply["status"] == "idle"
    assert reply["threadId"] == first["threadId"]
    assert "HERON" in _inputs_text(mock_model)


async def test_exec_structured_output_and_image_input(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    image = codex_env.workspace / "pixel.png"
    image.write_bytes(tiny_png())
    schema = {
        "type": "object",
        "properties": {"status": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["status", "answer"],
        "additionalProperties": False,
    }
    async with running_server(codex_env, EXEC) as mcp:
        out = await mcp.call(
            "codex",
            codex_args(
                "scenario:structured look",
                wait_ms=60000,
                advanced={"outputSchema": schema, "images": [str(image)]},
            ),
        )
    assert out["result"]["structuredOutput"] == json.loads(out["result"]["text"])
    assert "input_image" in _inputs_text(mock_model)


async def test_cancelling_an_exec_turn_stops_its_child(codex_env: CodexEnv) -> None:
    async with running_server(codex_env, EXEC) as mcp:
        started = await mcp.call(
            "codex", {"prompt": "scenario:slow take long", "approvalPolicy": "never", "sandbox": "read-only"}
        )
        await mcp.poll_until(started["sessionId"], lambda p: any(e["type"] == "output" for e in p["events"]))
        await mcp.call("codex_session", {"action": "cancel", "sessionId": started["sessionId"]})
        final, _ = await mcp.run_to_end(started["sessionId"])
        with anyio.fail_after(10):
            # The child dies in the background after cancel returns; an outside process has no event.
            while _codex_children(codex_env):  # noqa: ASYNC110
                await anyio.sleep(0.1)
    assert final["status"] == "cancelled"


async def test_fork_steer_and_background_terminals_are_not_supported_in_exec_mode(
    codex_env: CodexEnv,
) -> None:
    async with running_server(codex_env, EXEC) as mcp:
        out = await mcp.call("codex", codex_args("scenario:plain hi", wait_ms=60000))
        fork = await mcp.error("codex_session", {"action": "fork", "sessionId": out["sessionId"]})
        clean = await mcp.error(
            "codex_session", {"action": "clean_background_terminals", "sessionId": out["sessionId"]}
        )
        slow = await mcp.call("codex", codex_args("scenario:slow take long"))
        steer = await mcp.error(
            "codex_reply", {"sessionId": slow["sessionId"], "prompt": "change course", "steer": True}
        )
        await mcp.call("codex_session", {"action": "cancel", "sessionId": slow["sessionId"]})
    assert fork.code == "EXEC_NOT_SUPPORTED"
    assert clean.code == "EXEC_NOT_SUPPORTED"
    assert steer.code == "EXEC_NOT_SUPPORTED"


async def test_a_codex_without_app_server_is_detected_and_run_in_exec_mode(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    stand_in = tmp_path / "codex-internal"
    stand_in.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "app-server" ]; then echo "error: no subcommand app-server" >&2; exit 2; fi\n'
        f'exec "{codex_env.binary}" "$@"\n'
    )
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    async with running_server(codex_env, {"CODEX_MCP_PATH": str(stand_in)}) as mcp:
        setup = await mcp.call("codex_setup", {})
        out = await mcp.call("codex", codex_args("scenario:plain hi", wait_ms=60000))
    assert setup["backend"]["mode"] == "exec"
    assert out["result"]["text"] == PLAIN_TEXT


def _codex_children(codex_env: CodexEnv) -> list[int]:
    return live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}", argv_contains=b"\0exec\0")
