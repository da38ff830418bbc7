"""Fan-in `wait`, `responseMode: "digest"` and the session records as resources, on a manager running on
the fake backend: outputs read as a client reads them and checked against the published schemas."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp.shared.exceptions import MCPError

from codex_mcp.resources.catalog import ResourceCatalog
from codex_mcp.resources.published import published_schemas
from codex_mcp.resources.server_info import ServerFacts
from codex_mcp.server import handlers, results
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.session import Session
from codex_mcp.sessions.shaping import json_size
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.wire.tools import output_json, output_model, output_problems, parse_input
from tests.harness.fake_backend import FakeBackend, open_on_fake

pytestmark = pytest.mark.anyio

Json = dict[str, Any]
BOUND_S = 10.0


@pytest.fixture
async def on_fake() -> AsyncGenerator[tuple[SessionManager, FakeBackend]]:
    async with open_on_fake() as opened:
        yield opened


async def _tool(
    manager: SessionManager, name: str, arguments: Json, progress: list[tuple[float, str]] | None = None
) -> Json:
    handler = {
        "codex": handlers.codex,
        "codex_reply": handlers.codex_reply,
        "codex_check": handlers.codex_check,
        "codex_session": handlers.codex_session,
    }[name]

    async def report(elapsed_s: float, message: str) -> None:
        if progress is not None:
            progress.append((elapsed_s, message))

    call = handlers.Call(manager_or_error=manager, report_progress=report, heartbeat_s=0.05)
    with anyio.fail_after(BOUND_S):
        output = await handler(parse_input(name, arguments), call)
    assert type(output) is output_model(name)
    content = results.success(output_json(output)).structured_content
    assert content is not None
    assert output_problems(name, content) == []
    return content


async def _start(manager: SessionManager, cwd: Path, **advanced: Any) -> Session:
    arguments: Json = {"prompt": "go", "cwd": str(cwd), "approvalPolicy": "never", "sandbox": "read-only"}
    if advanced:
        arguments["advanced"] = advanced
    started = await _tool(manager, "codex", arguments)
    return await manager.get(started["sessionId"])


async def _sessions(manager: SessionManager, cwd: Path, count: int) -> list[Session]:
    return [await _start(manager, cwd) for _ in range(count)]


def _later(fake: FakeBackend, session: Session, delay_s: float, ended: dict[str, float]) -> Any:
    async def finish() -> None:
        await anyio.sleep(delay_s)
        fake.complete_turn(session, f"done {session.session_id}")
        ended[session.session_id] = time.monotonic()

    return finish


async def test_wait_any_returns_when_the_first_session_finishes(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    sessions = await _sessions(manager, tmp_path, 3)
    ended: dict[str, float] = {}
    waited: Json = {}
    returned = 0.0
    async with anyio.create_task_group() as group:
        group.start_soon(_later(fake, sessions[1], 0.3, ended))
        waited = await _tool(
            manager,
            "codex_session",
            {"action": "wait", "sessionIds": [s.session_id for s in sessions], "waitMs": 5000},
        )
        returned = time.monotonic()
    assert waited["reason"] == "condition_met"
    assert returned - ended[sessions[1].session_id] < 0.5
    entries = {entry["sessionId"]: entry for entry in waited["waited"]}
    assert [entry["sessionId"] for entry in waited["waited"]] == [s.session_id for s in sessions]
    assert entries[sessions[1].session_id]["done"] is True
    assert entries[sessions[1].session_id]["digest"]["finalMessage"] == f"done {sessions[1].session_id}"
    assert entries[sessions[0].session_id]["done"] is False
    assert json_size(waited) <= 8192


async def test_wait_all_returns_after_the_last_session_finishes_and_heartbeats_meanwhile(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    sessions = await _sessions(manager, tmp_path, 3)
    ended: dict[str, float] = {}
    progress: list[tuple[float, str]] = []
    waited: Json = {}
    returned = 0.0
    async with anyio.create_task_group() as group:
        for index, session in enumerate(sessions):
            group.start_soon(_later(fake, session, 0.1 + 0.15 * index, ended))
        waited = await _tool(
            manager,
            "codex_session",
            {
                "action": "wait",
                "sessionIds": [s.session_id for s in sessions],
                "until": "all",
                "responseMode": "full",
            },
            progress,
        )
        returned = time.monotonic()
    assert waited["reason"] == "condition_met"
    assert returned >= max(ended.values())
    assert returned - max(ended.values()) < 0.5
    assert all(entry["done"] and "result" in entry for entry in waited["waited"])
    assert progress
    assert progress[0][1].startswith("waiting for all of 3 sessions")


async def test_wait_wakes_for_an_approval_and_times_out_otherwise(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    sessions = await _sessions(manager, tmp_path, 2)
    ids = [s.session_id for s in sessions]
    started = time.monotonic()
    timed_out = await _tool(manager, "codex_session", {"action": "wait", "sessionIds": ids, "waitMs": 200})
    assert timed_out["reason"] == "timeout"
    assert 0.2 <= time.monotonic() - started < 2
    target = sessions[1]
    params = {
        "threadId": target.thread_id,
        "turnId": target.active_turn_id,
        "itemId": "call_1",
        "startedAtMs": 0,
        "command": "touch x",
        "cwd": str(tmp_path),
        "availableDecisions": ["accept", "decline"],
    }

    async def ask() -> None:
        await anyio.sleep(0.2)
        await fake.request("item/commandExecution/requestApproval", params)

    waited: Json = {}
    async with anyio.create_task_group() as group:
        group.start_soon(ask)
        waited = await _tool(manager, "codex_session", {"action": "wait", "sessionIds": ids, "until": "all"})
    assert waited["reason"] == "needs_input"
    entry = waited["waited"][1]
    assert entry["interactionState"] == "waiting_input"
    (action,) = entry["digest"]["actions"]
    assert action["command"] == "touch x"


async def test_other_calls_are_answered_while_a_wait_waits(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, _fake = on_fake
    (session,) = await _sessions(manager, tmp_path, 1)
    answered: list[float] = []
    async with anyio.create_task_group() as group:

        async def wait() -> None:
            await _tool(
                manager,
                "codex_session",
                {"action": "wait", "sessionIds": [session.session_id], "waitMs": 1000},
            )

        group.start_soon(wait)
        await anyio.sleep(0.1)
        before = time.monotonic()
        await _tool(manager, "codex_check", {"action": "poll", "sessionId": session.session_id})
        await _tool(manager, "codex_session", {"action": "list"})
        answered.append(time.monotonic() - before)
    assert answered[0] < 0.3


async def test_wait_for_an_unknown_session_is_refused_before_waiting(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, _fake = on_fake
    (session,) = await _sessions(manager, tmp_path, 1)
    with pytest.raises(Exception, match=r"SESSION_NOT_FOUND|not found"):
        await _tool(
            manager, "codex_session", {"action": "wait", "sessionIds": [session.session_id, "nosuch"]}
        )


def _big_turn(fake: FakeBackend, session: Session, *, commands: int, answer_chars: int) -> None:
    for index in range(commands):
        item: Json = {
            "type": "commandExecution",
            "id": f"cmd_{index}",
            "command": f"echo step {index}",
            "cwd": "/tmp",
            "status": "completed" if index % 50 else "failed",
            "exitCode": 0 if index % 50 else 1,
            "commandActions": [],
            "aggregatedOutput": f"step {index}\n",
        }
        fake.notify(
            "item/completed",
            {
                "threadId": session.thread_id,
                "turnId": session.active_turn_id,
                "item": item,
                "completedAtMs": 0,
            },
        )
    change = {
        "type": "fileChange",
        "id": "patch_1",
        "status": "completed",
        "changes": [{"path": f"src/f{n}.py", "kind": {"type": "update"}, "diff": "+x"} for n in range(40)],
    }
    fake.notify(
        "item/completed",
        {"threadId": session.thread_id, "turnId": session.active_turn_id, "item": change, "completedAtMs": 0},
    )
    fake.notify(
        "thread/tokenUsage/updated",
        {
            "threadId": session.thread_id,
            "turnId": session.active_turn_id,
            "tokenUsage": {
                "total": {
                    "inputTokens": 10,
                    "cachedInputTokens": 0,
                    "outputTokens": 5,
                    "reasoningOutputTokens": 0,
                    "totalTokens": 15,
                },
                "last": {
                    "inputTokens": 10,
                    "cachedInputTokens": 0,
                    "outputTokens": 5,
                    "reasoningOutputTokens": 0,
                    "totalTokens": 15,
                },
            },
        },
    )
    fake.complete_turn(session, "A" * answer_chars)


async def test_a_digest_of_a_huge_turn_stays_within_its_budget_and_names_the_full_record(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _start(manager, tmp_path)
    _big_turn(fake, session, commands=500, answer_chars=200_000)
    sid = session.session_id
    for budget in (1024, 4096, 8192, 50_000):
        polled = await _tool(
            manager,
            "codex_check",
            {
                "action": "poll",
                "sessionId": sid,
                "responseMode": "digest",
                "pollOptions": {"maxBytes": budget},
            },
        )
        assert json_size(polled) <= budget, budget
        digest = polled["digest"]
        assert polled["events"] == []
        assert "result" not in polled
        assert digest["truncated"] is True
        assert "finalMessage" in digest["cut"]
        assert "commands" in digest["cut"]
        assert digest["finalMessageChars"] == 200_000
        assert digest["commandCount"] == 500
        assert digest["fileCount"] == 40
        assert digest["fullRecord"] == f"codex-mcp:///sessions/{sid}/events"
        assert digest["turnsRecord"] == f"codex-mcp:///sessions/{sid}/turns"
        assert digest["usage"]["totalTokens"] == 15
        kept = digest["commands"]
        if budget >= 4096:
            # Failed commands are kept first.
            assert {"command": "echo step 450", "status": "failed", "exitCode": 1} in kept
    default = await _tool(
        manager, "codex_check", {"action": "poll", "sessionId": sid, "responseMode": "digest"}
    )
    assert 6000 < json_size(default) <= 8192


async def test_a_small_turn_digest_is_whole_and_codex_reply_answers_with_one(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _start(manager, tmp_path)
    _big_turn(fake, session, commands=3, answer_chars=100)
    reply = await _tool(
        manager,
        "codex_reply",
        {"sessionId": session.session_id, "prompt": "more", "responseMode": "digest", "maxBytes": 2048},
    )
    assert json_size(reply) <= 2048
    assert reply["digest"]["status"] == "running"
    assert "result" not in reply
    fake.complete_turn(session, "second")
    polled = await _tool(
        manager, "codex_check", {"action": "poll", "sessionId": session.session_id, "responseMode": "digest"}
    )
    digest = polled["digest"]
    assert "truncated" not in digest
    assert digest["finalMessage"] == "second"
    assert digest["commands"] == []  # the second turn ran none


def _validate(schema_path: str, value: Any) -> None:
    jsonschema.validate(value, published_schemas()[schema_path])


async def test_the_records_are_resources_read_in_pages_that_validate(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _start(manager, tmp_path)
    _big_turn(fake, session, commands=300, answer_chars=10_000)
    catalog = ResourceCatalog(
        ServerFacts(Settings.from_env({}), CodexExecutable(Path("/x/codex"), "fake"), None)
    )
    templates = catalog.templates_result().resource_templates
    assert {t.uri_template for t in templates} >= {
        "codex-mcp:///sessions/{sessionId}/events{?cursor,limit}",
        "codex-mcp:///sessions/{sessionId}/turns",
        "codex-mcp:///sessions/{sessionId}/patch",
    }
    sid = session.session_id
    uri: str | None = f"codex-mcp:///sessions/{sid}/events?limit=100"
    seen: list[int] = []
    pages = 0
    while uri is not None:
        mime, text = await catalog.text(uri, manager)
        assert mime == "application/json"
        page = json.loads(text)
        _validate("resources/session-events-page.json", page)
        seen += [event["id"] for event in page["events"]]
        pages += 1
        uri = page.get("nextUri")
        assert page["hasMore"] == (uri is not None)
    assert seen == [event.id for event in session.buffer.events()]
    assert pages >= 3
    _mime, text = await catalog.text(f"codex-mcp:///sessions/{sid}/turns", manager)
    turns = json.loads(text)
    _validate("resources/session-turns.json", turns)
    assert len(turns["lastTurn"]["commands"]) == 300
    assert turns["turns"][0]["text"] == "A" * 10_000
    _mime, text = await catalog.text(f"codex-mcp:///sessions/{sid}/turns/0", manager)
    assert json.loads(text) == turns["turns"][0]
    # Nothing get hides without includeSensitive: the session's cwd and config appear in no record.
    assert str(tmp_path) not in text
    for bad in (
        f"codex-mcp:///sessions/{sid}/events?limit=0",
        f"codex-mcp:///sessions/{sid}/events?cursor=x",
        f"codex-mcp:///sessions/{sid}/events?other=1",
        f"codex-mcp:///sessions/{sid}/turns/9",
        f"codex-mcp:///sessions/{sid}/patch",
        "codex-mcp:///sessions/nosuch/events",
        f"codex-mcp:///sessions/{sid}/secrets",
    ):
        with pytest.raises(MCPError):
            await catalog.text(bad, manager)
