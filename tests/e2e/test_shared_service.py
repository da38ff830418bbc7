"""Sessions on the shared Codex service (CODEX_MCP_APP_SERVER=shared), real Codex, real stdio servers:
a turn outlives the server that started it (kill -9), the next server picks it up with its real
result or its pending approval, and two servers on one state directory use one app-server process
that is gone once both have exited and the idle period has passed."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import pytest

from codex_mcp.proc import proc_tree
from codex_mcp.service.layout import SERVICE_VARIABLE, service_key
from tests.e2e.client import running_server, server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import RawClient, start_raw_server
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import FINAL_AFTER_TOOL, SLOW_TEXT_PREFIX
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.real_codex, pytest.mark.anyio, pytest.mark.timeout(240)]

IDLE_MS = 1500
# The shared service is the default: these servers run with CODEX_MCP_APP_SERVER unset.
SHARED: dict[str, str | None] = {"CODEX_MCP_APP_SERVER": None, "CODEX_MCP_SERVICE_IDLE_MS": str(IDLE_MS)}


def _tagged(codex_env: CodexEnv) -> proc_tree.ProcessSnapshot:
    """The live processes of the service our servers share (keeper, Codex, what Codex runs)."""
    key = service_key(codex_env.binary, str(codex_env.codex_home), ())
    return proc_tree.tagged(f"{SERVICE_VARIABLE}={key}".encode())


@pytest.fixture(autouse=True)
def no_service_left(codex_env: CodexEnv) -> Iterator[None]:
    yield
    left = _tagged(codex_env)
    proc_tree.signal_all(left, signal.SIGKILL)
    assert not left, f"service processes outlived the test and its idle period: {sorted(left)}"


def _app_servers(codex_env: CodexEnv) -> list[int]:
    return live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}", argv_contains=b"app-server")


async def _raw_server(codex_env: CodexEnv, stderr: BinaryIO) -> RawClient:
    return await start_raw_server(server_env(codex_env, SHARED), codex_env.workspace, stderr)


def _pending_on_disk(codex_env: CodexEnv, session_id: str) -> list[str] | None:
    try:
        meta: dict[str, Any] = json.loads(
            (codex_env.root / "state" / "sessions" / session_id / "meta.json").read_text()
        )
    except (OSError, ValueError):
        return None
    pending: list[dict[str, Any]] = meta.get("pending") or []
    return [str(entry["requestId"]) for entry in pending]


async def _killed_after(client: RawClient) -> None:
    client.process.send_signal(signal.SIGKILL)
    assert await client.process.wait() == -signal.SIGKILL


async def _killed_with_an_approval_pending(
    codex_env: CodexEnv, tmp_path: Path, advanced: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A server that started a turn now waiting on a command's approval (written to disk), then
    was killed -9: the session id and the pending action."""
    with (tmp_path / "first.log").open("wb") as stderr, anyio.fail_after(120):
        first = await _raw_server(codex_env, stderr)
        started = await first.call(
            "codex",
            {
                "prompt": "scenario:shell make the file",
                "approvalPolicy": "untrusted",
                "sandbox": "workspace-write",
                "advanced": {"waitForResult": 30000, **advanced},
            },
        )
        session_id = started["sessionId"]
        assert started["status"] == "waiting_approval", started
        (action,) = started["actions"]
        await wait_until(
            lambda: _pending_on_disk(codex_env, session_id) == [action["requestId"]],
            timeout_s=10,
            what="the pending approval in meta.json",
        )
        await _killed_after(first)
    return session_id, action


async def _wait_stopped(codex_env: CodexEnv) -> None:
    await wait_until(
        lambda: not _tagged(codex_env), timeout_s=IDLE_MS / 1000 + 30, what="the idle service's stop"
    )


async def test_a_turn_outlives_a_kill_9_of_its_server_and_the_next_server_shows_its_real_result(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    with (tmp_path / "first.log").open("wb") as stderr, anyio.fail_after(120):
        first = await _raw_server(codex_env, stderr)
        started = await first.call(
            "codex",
            {"prompt": "scenario:slow keep going", "approvalPolicy": "never", "sandbox": "read-only"},
        )
        session_id = started["sessionId"]
        before = await first.call(
            "codex_check", {"action": "poll", "sessionId": session_id, "maxEvents": 500}
        )
        assert before["status"] == "running"
        await _killed_after(first)
    assert _app_servers(codex_env), "the service went with the server that started it"

    async with running_server(codex_env, SHARED) as mcp:
        listed = await mcp.call("codex_session", {"action": "list"})
        assert [s["sessionId"] for s in listed["sessions"]] == [session_id]
        # From the cursor the killed server's client had: every event from there to the end.
        from_cursor = {
            "action": "poll",
            "sessionId": session_id,
            "cursor": before["nextCursor"],
            "maxEvents": 500,
            "pollOptions": {"waitMs": 5000},
        }
        with anyio.fail_after(60):
            after = await mcp.call("codex_check", from_cursor)
            while after["status"] == "running":
                after = await mcp.call("codex_check", from_cursor)
        ids = [event["id"] for event in after["events"]]
        assert ids == sorted(set(ids))
        assert ids[0] == before["nextCursor"]
        assert after["status"] == "idle", after
        assert after["result"]["status"] == "completed"
        assert after["result"]["text"].startswith(SLOW_TEXT_PREFIX)
        reply = await mcp.call(
            "codex_reply", {"sessionId": session_id, "prompt": "scenario:plain more", "waitForResult": 30000}
        )
        assert reply["status"] == "idle"
        assert reply["threadId"] == started["threadId"]
    await _wait_stopped(codex_env)


async def test_an_approval_pending_when_the_server_was_killed_is_answered_from_the_next_server(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    session_id, action = await _killed_with_an_approval_pending(codex_env, tmp_path, {})

    async with running_server(codex_env, SHARED) as mcp:
        polled = await mcp.call("codex_check", {"action": "poll", "sessionId": session_id})
        assert polled["status"] == "waiting_approval", polled
        assert [a["requestId"] for a in polled["actions"]] == [action["requestId"]]
        answered = await mcp.call(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": session_id,
                "requestId": action["requestId"],
                "decision": "accept",
            },
        )
        assert answered["status"] in ("running", "idle")
        done, _ = await mcp.run_to_end(session_id)
        assert done["status"] == "idle", done
        assert done["result"]["text"] == FINAL_AFTER_TOOL
    await _wait_stopped(codex_env)


async def test_two_servers_on_one_directory_share_one_app_server_that_stops_when_both_are_gone(
    codex_env: CodexEnv,
) -> None:
    async with running_server(codex_env, SHARED) as one, running_server(codex_env, SHARED) as two:
        for mcp in (one, two):
            done = await mcp.call(
                "codex",
                {
                    "prompt": "scenario:plain hi",
                    "approvalPolicy": "never",
                    "sandbox": "read-only",
                    "advanced": {"waitForResult": 30000},
                },
            )
            assert done["status"] == "idle"
        assert len(_app_servers(codex_env)) == 1
    await _wait_stopped(codex_env)
    assert _app_servers(codex_env) == []


async def test_an_approval_whose_timeout_passed_while_no_server_was_attached_is_declined_visibly(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    approval_ms = 1500
    session_id, action = await _killed_with_an_approval_pending(
        codex_env, tmp_path, {"approvalTimeoutMs": approval_ms}
    )
    await anyio.sleep(approval_ms / 1000 + 1)  # the timeout passes while nobody is attached

    async with running_server(codex_env, SHARED) as mcp:
        every = {"action": "poll", "sessionId": session_id, "cursor": 0, "maxEvents": 500}
        done, _ = await mcp.poll_until(
            session_id, lambda poll: poll["status"] in ("idle", "error"), max_events=500
        )
        full = await mcp.call("codex_check", every)
        assert not done.get("actions")
        (result,) = [e for e in full["events"] if e["type"] == "approval_result"]
        assert (result["data"]["requestId"], result["data"]["decision"]) == (action["requestId"], "decline")
        assert result["data"]["timeout"] is True
        # Declined: Codex did not run the command, and the turn ended with its real result.
        assert not (codex_env.workspace / "made.txt").exists()
        assert done["result"]["status"] == "completed", done
    await _wait_stopped(codex_env)
