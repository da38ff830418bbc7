"""Fan-in wait, digests and session records end to end: MCP client over stdio -> codex-mcp -> real Codex
app-server -> mock model.

`scenario:slow` streams its answer for 8 s; `scenario:shell` under approvalPolicy untrusted asks to run
a command; `scenario:bulk` runs 500 commands and answers with 200 KB.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import anyio
import jsonschema
import mcp_types as types
import pytest

from codex_mcp.resources.published import published_schemas
from codex_mcp.sessions.shaping import json_size
from tests.e2e.client import McpServerUnderTest, codex_args, running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import BULK_FAIL_EVERY, bulk_answer, bulk_command

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

Json = dict[str, Any]


def sorted_by_index(commands: list[Json]) -> list[Json]:
    """The bulk commands ordered by their number (parallel calls may complete in any order)."""

    def number(command: Json) -> int:
        found = re.search(r"bulk (\d+)", command["command"])
        assert found is not None, command
        return int(found.group(1))

    return sorted(commands, key=number)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _start(mcp: McpServerUnderTest, prompt: str, **fields: Any) -> str:
    started = await mcp.call("codex", codex_args(prompt, **fields))
    return str(started["sessionId"])


async def _completed_at(mcp: McpServerUnderTest, session_id: str) -> float:
    poll = await mcp.call(
        "codex_check", {"action": "poll", "sessionId": session_id, "pollOptions": {"finalOnly": True}}
    )
    return _epoch(poll["result"]["completedAt"])


async def _read(mcp: McpServerUnderTest, uri: str) -> types.TextResourceContents:
    result = await mcp.session.read_resource(uri)
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    return content


async def test_wait_over_five_sessions_returns_when_any_then_all_finished_and_other_calls_answer_meanwhile(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env, {"CODEX_MCP_HEARTBEAT_MS": "500"}) as mcp:
        ids = [await _start(mcp, f"scenario:slow number {n}") for n in range(5)]
        beats: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            beats.append(progress)

        result = await mcp.raw_call(
            "codex_session",
            {"action": "wait", "sessionIds": ids, "until": "any", "waitMs": 60000},
            progress_callback=on_progress,
        )
        any_returned = time.time()
        assert not result.is_error, result.content
        waited_any: Json = dict(result.structured_content or {})
        assert waited_any["reason"] == "condition_met"
        done = [entry for entry in waited_any["waited"] if entry["done"]]
        assert done
        first_done = min([await _completed_at(mcp, entry["sessionId"]) for entry in done])
        # Returned once the first turn ended, not before and not long after.
        assert first_done <= any_returned < first_done + 3
        assert beats  # heartbeats while it waited
        assert json_size(waited_any) <= 8192

        answered: list[float] = []
        waited_all: Json = {}

        async def wait_all() -> None:
            nonlocal waited_all
            waited_all = await mcp.call(
                "codex_session", {"action": "wait", "sessionIds": ids, "until": "all", "waitMs": 60000}
            )

        async with anyio.create_task_group() as group:
            group.start_soon(wait_all)
            await anyio.sleep(0.5)
            before = time.monotonic()
            await mcp.call("codex_session", {"action": "list"})
            await mcp.call("codex_check", {"action": "poll", "sessionId": ids[-1]})
            answered.append(time.monotonic() - before)
        all_returned = time.time()
        assert waited_all["reason"] == "condition_met"
        assert all(entry["done"] for entry in waited_all["waited"])
        last_done = max([await _completed_at(mcp, session_id) for session_id in ids])
        assert last_done <= all_returned < last_done + 3
        # The calls made while the wait waited were answered at once.
        assert answered[0] < 2.0
        for entry in waited_all["waited"]:
            assert entry["digest"]["finalMessage"].startswith("slow chunk 0.")


async def test_wait_wakes_for_an_approval(codex_env: CodexEnv, mock_model: MockModelServer) -> None:
    async with running_server(codex_env) as mcp:
        slow = await _start(mcp, "scenario:slow keep going")
        shell = await _start(mcp, "scenario:shell run it", approvalPolicy="untrusted")
        started = time.monotonic()
        waited = await mcp.call(
            "codex_session", {"action": "wait", "sessionIds": [slow, shell], "until": "all", "waitMs": 60000}
        )
        took = time.monotonic() - started
        assert waited["reason"] == "needs_input"
        assert took < 7  # before the slow turn's 8 s
        by_id = {entry["sessionId"]: entry for entry in waited["waited"]}
        assert by_id[shell]["interactionState"] == "waiting_input"
        (action,) = by_id[shell]["digest"]["actions"]
        assert action["kind"] == "command"
        await mcp.call(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": shell,
                "requestId": action["requestId"],
                "decision": "decline",
            },
        )
        await mcp.call("codex_session", {"action": "cancel", "sessionId": slow})


async def test_a_digest_of_500_commands_and_a_200_kb_answer_stays_within_budget_and_the_record_reads_in_pages(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env) as mcp:
        session_id = await _start(mcp, "scenario:bulk do everything", sandbox="read-only")
        with anyio.fail_after(240):
            while True:
                waited = await mcp.call(
                    "codex_session", {"action": "wait", "sessionIds": [session_id], "waitMs": 30000}
                )
                if waited["waited"][0]["done"]:
                    break
        digest_entry = waited["waited"][0]["digest"]
        assert digest_entry["commandCount"] == 500, digest_entry
        for budget in (2048, 8192):
            polled = await mcp.call(
                "codex_check",
                {
                    "action": "poll",
                    "sessionId": session_id,
                    "responseMode": "digest",
                    "pollOptions": {"maxBytes": budget},
                },
            )
            assert json_size(polled) <= budget
            digest = polled["digest"]
            assert digest["truncated"] is True
            assert {"finalMessage", "commands"} <= set(digest["cut"])
            assert digest["finalMessageChars"] == 200_000
            assert digest["commandCount"] == 500
            assert digest["usage"]["totalTokens"] > 0
            assert digest["fullRecord"] == f"codex-mcp:///sessions/{session_id}/events"
            failed = [c for c in digest["commands"] if c.get("exitCode") == 3]
            assert failed  # the failing commands are the ones kept first
        default = await mcp.call(
            "codex_check", {"action": "poll", "sessionId": session_id, "responseMode": "digest"}
        )
        assert json_size(default) <= 8192

        templates = await mcp.session.list_resource_templates()
        assert "codex-mcp:///sessions/{sessionId}/events{?cursor,limit}" in {
            t.uri_template for t in templates.resource_templates
        }
        page_schema = published_schemas()["resources/session-events-page.json"]
        assert json.loads(
            (await _read(mcp, "codex-mcp:///schemas/resources/session-events-page.json")).text
        ) == (page_schema)
        uri: str | None = digest["fullRecord"] + "?limit=250"
        ids: list[int] = []
        pages: list[Json] = []
        while uri is not None:
            content = await _read(mcp, uri)
            assert content.mime_type == "application/json"
            page = json.loads(content.text)
            jsonschema.validate(page, page_schema)
            pages.append(page)
            ids += [event["id"] for event in page["events"]]
            uri = page.get("nextUri")
        assert len(pages) >= 3
        # The whole log, from the first event to the end: what the poll buffer evicted (about 500
        # of the turn's 1500 events) is kept for this resource.
        assert pages[0]["oldestCursor"] == 0
        assert ids == list(range(pages[-1]["endCursor"]))
        assert len(ids) > 1000  # 500 commands, about 3 events each (deltas coalesce by timing)
        final = [e for p in pages for e in p["events"] if e["type"] == "result"]
        assert final[-1]["data"]["text"] == bulk_answer(200_000)

        turns = json.loads((await _read(mcp, digest["turnsRecord"])).text)
        jsonschema.validate(turns, published_schemas()["resources/session-turns.json"])
        commands = turns["lastTurn"]["commands"]
        # Codex shows each as the shell line it ran (`/bin/bash -lc '<command>'`).
        assert len(commands) == 500
        assert all(bulk_command(n) in c["command"] for n, c in enumerate(sorted_by_index(commands)))
        assert sum(c.get("exitCode") == 3 for c in commands) == 500 // BULK_FAIL_EVERY
        assert turns["turns"][-1]["text"] == bulk_answer(200_000)
