"""Sessions survive the server: kill -9 mid-turn, restart, and the conversation goes on.

The first server is killed with SIGKILL while Codex runs a shell command outside any sandbox that
leaves a detached process behind, so nothing but the next server's reaper would ever stop it.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import pytest

from tests.e2e.client import McpServerUnderTest, codex_args, running_server, server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import RawClient, start_raw_server
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import (
    PLAIN_TEXT,
    Reply,
    ScenarioOptions,
    StreamReply,
    analyse,
    completed,
    created,
    decide,
    function_call_events,
)
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

# Keeps the turn running, and leaves behind a command in a session of its own (as a build
# server or a `nohup` would), which Codex's own clean-up cannot reach: only the reaper can.
# Its argv ("313") is unique, so the test can find it in /proc.
HOLD_COMMAND = "setsid sleep 313 >/dev/null 2>&1 & exec sleep 300"


def _hold(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    """Run a long command, then answer once its output is back (it never is, here)."""
    if analyse(body).step > 0:
        return decide(body, options)
    arguments = {"cmd": HOLD_COMMAND, "yield_time_ms": 300_000}
    return StreamReply(
        (
            created("resp_hold"),
            *function_call_events("call_hold", "exec_command", arguments),
            completed("resp_hold"),
        )
    )


async def _finished(mcp: McpServerUnderTest, prompt: str) -> dict[str, Any]:
    """A session started and waited for to the end of its first turn."""
    return await mcp.call("codex", codex_args(prompt, sandbox="read-only", wait_ms=30000))


def _inputs(mock: MockModelServer) -> str:
    return json.dumps(mock.responses_requests()[-1].input_items)


async def _raw_server(
    codex_env: CodexEnv, stderr: BinaryIO, extra: dict[str, str] | None = None
) -> RawClient:
    """A server we can kill: started by hand, spoken to in raw JSON-RPC, initialised."""
    return await start_raw_server(server_env(codex_env, extra), codex_env.workspace, stderr)


def _holders(codex_env: CodexEnv) -> list[int]:
    return live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}", argv_contains=b"313")


def _app_servers(codex_env: CodexEnv) -> list[int]:
    return live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}", argv_contains=b"app-server")


async def test_kill_9_mid_turn_then_restart_lists_the_session_and_the_conversation_goes_on(
    codex_env: CodexEnv, mock_model: MockModelServer, tmp_path: Path
) -> None:
    mock_model.custom_scenarios["hold"] = _hold
    with (tmp_path / "first.log").open("wb") as stderr, anyio.fail_after(90):
        first = await _raw_server(codex_env, stderr)
        process = first.process
        started = await first.call(
            "codex",
            {
                "prompt": "scenario:hold remember KESTREL, then run the command",
                "approvalPolicy": "never",
                "sandbox": "danger-full-access",
            },
        )
        session_id = started["sessionId"]
        await wait_until(lambda: bool(_holders(codex_env)), timeout_s=30, what="the held command")
        before = await first.call(
            "codex_check", {"action": "poll", "sessionId": session_id, "maxEvents": 500}
        )
        assert before["status"] == "running"
        # Events go to disk as they come; the cursor with the rest of meta.json a few times a second.
        await wait_until(
            lambda: _written_cursor(codex_env, session_id) == before["nextCursor"],
            timeout_s=10,
            what="the poll's cursor in meta.json",
        )
        children = _holders(codex_env) + _app_servers(codex_env)
        (entry,) = (codex_env.root / "state" / "servers").glob("*.json")
        ledger = json.loads(entry.read_text())
        assert ledger["pid"] == process.pid
        assert [int(pid) for pid in ledger["children"]] == _app_servers(codex_env)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    assert _holders(codex_env), "the command outlived its server, as nothing stops it but the reaper"

    async with running_server(codex_env) as mcp:
        # The handshake is answered at once; calls are served once the dead server's leftovers are gone.
        listed = await mcp.call("codex_session", {"action": "list"})
        assert [pid for pid in children if _alive(pid)] == []
        assert [s["sessionId"] for s in listed["sessions"]] == [session_id]
        assert listed["sessions"][0]["status"] == "error"
        assert listed["sessions"][0]["canResume"] is True

        after = await mcp.call("codex_check", {"action": "poll", "sessionId": session_id, "maxEvents": 500})
        # The cursor carried over: only what happened since the last poll, i.e. the restart's result.
        assert after["events"][0]["id"] >= before["nextCursor"]
        assert after["result"]["reason"] == "server_restart"
        assert after["result"]["status"] == "error"
        replayed = await mcp.call(
            "codex_check",
            {
                "action": "poll",
                "sessionId": session_id,
                "cursor": 0,
                "maxEvents": 500,
                "responseMode": "full",
            },
        )
        old_ids = [event["id"] for event in before["events"]]
        assert [event["id"] for event in replayed["events"]][: len(old_ids)] == old_ids
        assert [event["type"] for event in replayed["events"]][: len(old_ids)] == [
            event["type"] for event in before["events"]
        ]

        reply = await mcp.call(
            "codex_reply",
            {"sessionId": session_id, "prompt": "scenario:plain what was the word?", "waitForResult": 30000},
        )
    assert reply["status"] == "idle"
    assert reply["threadId"] == started["threadId"]
    assert reply["result"]["text"] == PLAIN_TEXT
    assert "KESTREL" in _inputs(mock_model)
    assert _holders(codex_env) == []


def _written_cursor(codex_env: CodexEnv, session_id: str) -> int | None:
    """The cursor the server last wrote for `session_id` (None before meta.json is readable)."""
    try:
        meta = json.loads((codex_env.root / "state" / "sessions" / session_id / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    cursor = meta.get("lastCursor")
    return cursor if isinstance(cursor, int) else None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_a_killed_codex_child_fails_its_turn_with_its_stderr_and_the_server_goes_on(
    codex_env: CodexEnv,
) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call(
            "codex", {"prompt": "scenario:slow take long", "approvalPolicy": "never", "sandbox": "read-only"}
        )
        app_servers = live_processes_with_env(
            f"CODEX_HOME={codex_env.codex_home}", argv_contains=b"app-server"
        )
        assert len(app_servers) == 1
        os.kill(app_servers[0], signal.SIGKILL)
        poll, _ = await mcp.run_to_end(started["sessionId"])
        assert poll["status"] == "error"
        assert poll["result"]["reason"] == "app_server_exited"
        message = poll["result"]["error"]["message"]
        assert message.startswith("codex app-server exited (killed by SIGKILL); stderr: ")
        # What Codex itself logged last (it warns about the mock's unknown model at every start).
        assert "Unknown model mock-model" in message

        fresh = await _finished(mcp, "scenario:plain hello again")
        assert fresh["status"] == "idle"
        assert fresh["result"]["text"] == PLAIN_TEXT
        again = await mcp.call(
            "codex_reply",
            {"sessionId": started["sessionId"], "prompt": "scenario:plain go on", "waitForResult": 30000},
        )
        assert again["status"] == "idle"


async def test_damaged_state_files_are_skipped_and_the_rest_loads(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        ids: list[str] = []
        for word in ("one", "two"):
            out = await _finished(mcp, f"scenario:plain {word}")
            ids.append(out["sessionId"])
    sessions = codex_env.root / "state" / "sessions"
    good, garbled = ids
    with (sessions / good / "events.jsonl").open("ab") as log:
        log.write(b'{"id": 999, "type": "output", "da')
    (sessions / garbled / "meta.json").write_bytes(b"\x00not json")
    async with running_server(codex_env) as mcp:
        listed = await mcp.call("codex_session", {"action": "list"})
        poll = await mcp.call(
            "codex_check", {"action": "poll", "sessionId": good, "cursor": 0, "maxEvents": 500}
        )
        cleaned = await mcp.call("codex_session", {"action": "clean", "statuses": ["idle", "error"]})
    assert [s["sessionId"] for s in listed["sessions"]] == [good]
    assert poll["status"] == "idle"
    assert poll["result"]["text"] == PLAIN_TEXT
    assert all(event["id"] != 999 for event in poll["events"])
    # The unreadable one can never load, but clean still removes it from disk.
    assert sorted(cleaned["removedSessionIds"]) == sorted(ids)
    assert cleaned["diskSessionsRemoved"] == 2
    assert list(sessions.iterdir()) == []


async def test_state_files_are_private(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        out = await _finished(mcp, "scenario:plain hi")
    state = codex_env.root / "state"
    directory = state / "sessions" / out["sessionId"]
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    names = sorted(path.name for path in directory.iterdir())
    assert names == ["events.jsonl", "meta.json", "owner", "result.json"]
    assert stat.S_IMODE((state / "servers").stat().st_mode) == 0o700
    files = [path for path in state.rglob("*") if path.is_file()]
    assert len(files) >= 4
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["status"] == "idle"
    assert json.loads((directory / "result.json").read_text())["text"] == PLAIN_TEXT


@pytest.mark.parametrize("mode", ["app-server", "exec"])
async def test_an_idle_session_continues_after_a_restart_with_its_context(
    codex_env: CodexEnv, mock_model: MockModelServer, mode: str
) -> None:
    env = {"CODEX_MCP_MODE": mode}
    async with running_server(codex_env, env) as mcp:
        first = await _finished(mcp, "scenario:plain remember OSPREY")
        seen = await mcp.call(
            "codex_check", {"action": "poll", "sessionId": first["sessionId"], "maxEvents": 500}
        )
    async with running_server(codex_env, env) as mcp:
        listed = await mcp.call("codex_session", {"action": "list"})
        again = await mcp.call(
            "codex_check", {"action": "poll", "sessionId": first["sessionId"], "maxEvents": 500}
        )
        reply = await mcp.call(
            "codex_reply",
            {
                "sessionId": first["sessionId"],
                "prompt": "scenario:plain and the word?",
                "waitForResult": 30000,
            },
        )
    assert [(s["sessionId"], s["status"]) for s in listed["sessions"]] == [(first["sessionId"], "idle")]
    # Nothing new since the last poll of the previous server: the cursor carried over.
    assert again["events"] == []
    assert again["nextCursor"] == seen["nextCursor"]
    assert again["result"]["text"] == PLAIN_TEXT
    assert reply["status"] == "idle"
    assert reply["threadId"] == first["threadId"]
    assert "OSPREY" in _inputs(mock_model)


async def test_a_turn_the_drain_cut_short_comes_back_as_server_shutdown(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    with (tmp_path / "first.log").open("wb") as stderr, anyio.fail_after(60):
        first = await _raw_server(codex_env, stderr, {"CODEX_MCP_DRAIN_TIMEOUT_MS": "300"})
        process = first.process
        started = await first.call(
            "codex",
            {"prompt": "scenario:slow take long", "approvalPolicy": "never", "sandbox": "read-only"},
        )
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0
    async with running_server(codex_env) as mcp:
        poll = await mcp.call("codex_check", {"action": "poll", "sessionId": started["sessionId"]})
    assert poll["status"] == "error"
    assert poll["result"]["reason"] == "server_shutdown"
