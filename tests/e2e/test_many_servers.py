"""Many servers on one state directory, as several client windows on one machine run them.

Every server serves; each lists every session of the directory and says which are its own; a
session another live server drives can be polled from anywhere but changed only by its owner; and
when a server dies, the first server that needs its session adopts it and the thread goes on.
"""

from __future__ import annotations

import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.e2e.client import McpServerUnderTest, codex_args, running_server, server_env
from tests.e2e.raw_client import RawClient
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

_SERVERS = 4


async def test_four_servers_serve_at_once_and_a_fifth_lists_every_session_with_its_owner(
    codex_env: CodexEnv,
) -> None:
    async with AsyncExitStack() as stack:
        servers: list[McpServerUnderTest] = [
            await stack.enter_async_context(running_server(codex_env)) for _ in range(_SERVERS)
        ]
        results: dict[int, dict[str, Any]] = {}

        async def run(index: int, mcp: McpServerUnderTest) -> None:
            results[index] = await mcp.call(
                "codex",
                codex_args(f"scenario:plain from server {index}", sandbox="read-only", wait_ms=30_000),
            )

        with anyio.fail_after(90):
            async with anyio.create_task_group() as task_group:
                for index, mcp in enumerate(servers):
                    task_group.start_soon(run, index, mcp)
        assert [results[i]["result"]["text"] for i in range(_SERVERS)] == [PLAIN_TEXT] * _SERVERS
        ids = [results[i]["sessionId"] for i in range(_SERVERS)]

        fifth = await stack.enter_async_context(running_server(codex_env))
        listed = await fifth.call("codex_session", {"action": "list"})
        by_id = {s["sessionId"]: s for s in listed["sessions"]}
        assert sorted(by_id) == sorted(ids)
        assert {s["ownership"] for s in by_id.values()} == {"other-server"}
        assert all("pid " in s["owner"] for s in by_id.values())
        own = await servers[0].call("codex_session", {"action": "list"})
        mine = {s["sessionId"]: s["ownership"] for s in own["sessions"]}
        assert mine[ids[0]] == "this-server"
        assert [mine[i] for i in ids[1:]] == ["other-server"] * (_SERVERS - 1)

        # Another server's session is answered from what its owner wrote.
        poll = await fifth.call(
            "codex_check", {"action": "poll", "sessionId": ids[1], "cursor": 0, "maxEvents": 500}
        )
        assert poll["status"] == "idle"
        assert poll["result"]["text"] == PLAIN_TEXT
        # Changing it is its owner's: a clear error, and the owner still can.
        refused = await fifth.error("codex_reply", {"sessionId": ids[1], "prompt": "scenario:plain again"})
        assert refused.code == "SESSION_OWNED_ELSEWHERE"
        assert "pid " in refused.message
        assert "polling it works" in refused.message
        again = await servers[1].call(
            "codex_reply", {"sessionId": ids[1], "prompt": "scenario:plain again", "waitForResult": 30000}
        )
        assert again["result"]["text"] == PLAIN_TEXT


async def test_a_long_poll_of_another_servers_session_sees_its_turn_end(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as owner, running_server(codex_env) as watcher:
        started = await owner.call("codex", codex_args("scenario:slow take a while", sandbox="read-only"))
        final, events = await watcher.poll_until(started["sessionId"], lambda p: p["status"] == "idle")
    assert final["result"]["status"] == "completed"
    assert [e["type"] for e in events][-1] == "result"


async def test_a_session_whose_server_was_killed_mid_turn_is_adopted_and_its_thread_goes_on(
    codex_env: CodexEnv, mock_model: MockModelServer, tmp_path: Path
) -> None:
    async with running_server(codex_env) as survivor:
        with (tmp_path / "doomed.log").open("wb") as stderr:
            process = await anyio.open_process(
                [sys.executable, "-m", "codex_mcp"],
                env=server_env(codex_env),
                cwd=codex_env.workspace,
                stderr=stderr,
            )
            doomed = RawClient(process)
            await doomed.initialize()
            response = await doomed.request(
                "tools/call",
                {
                    "name": "codex",
                    "arguments": codex_args("scenario:slow remember OSPREY", sandbox="read-only"),
                },
            )
            started = response["result"]["structuredContent"]
            watched = await survivor.call(
                "codex_check", {"action": "poll", "sessionId": started["sessionId"], "cursor": 0}
            )
            assert watched["status"] == "running"
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL

        listed = await survivor.call("codex_session", {"action": "list"})
        (entry,) = listed["sessions"]
        assert (entry["ownership"], entry["status"]) == ("none", "error")
        reply = await survivor.call(
            "codex_reply",
            {
                "sessionId": started["sessionId"],
                "prompt": "scenario:plain what was it?",
                "waitForResult": 30000,
            },
        )
        assert reply["threadId"] == started["threadId"]
        assert reply["result"]["text"] == PLAIN_TEXT
        poll = await survivor.call(
            "codex_check",
            {
                "action": "poll",
                "sessionId": started["sessionId"],
                "cursor": 0,
                "maxEvents": 500,
                "responseMode": "full",
            },
        )
        reasons = [e["data"].get("reason") for e in poll["events"] if e["type"] == "result"]
        assert reasons[0] == "server_restart"
        after = await survivor.call("codex_session", {"action": "list"})
        assert after["sessions"][0]["ownership"] == "this-server"
    assert "OSPREY" in str(mock_model.responses_requests()[-1].input_items)
