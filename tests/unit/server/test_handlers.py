"""The tools' handlers on a manager running on a fake backend: arguments parsed as a client's are,
outputs read as the client reads them (the structured content) and checked against the published
output schemas; no Codex process, each test in milliseconds."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.hosts import Host
from codex_mcp.server import handlers
from codex_mcp.sessions.manager import SessionManager
from tests.harness.fake_backend import FakeBackend, open_on_fake
from tests.harness.images import tiny_png
from tests.harness.tool_calls import call_tool

pytestmark = pytest.mark.anyio

Json = dict[str, Any]


@pytest.fixture
async def on_fake() -> AsyncGenerator[tuple[SessionManager, FakeBackend]]:
    async with open_on_fake() as opened:
        yield opened


_tool = call_tool


async def _started(manager: SessionManager, cwd: Path) -> Json:
    arguments = {
        "prompt": "do it",
        "cwd": str(cwd),
        "approvalPolicy": "on-request",
        "sandbox": "workspace-write",
    }
    return await _tool(manager, "codex", arguments)


async def test_codex_starts_a_session_and_codex_check_reads_its_events_and_result(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    assert started["status"] == "running"
    (thread_id, turn) = fake.turns[0]
    assert turn.prompt == "do it"
    session = await manager.get(started["sessionId"])
    assert session.thread_id == thread_id
    assert session.settings.cwd == str(tmp_path)
    fake.complete_turn(session, "finished")
    checked = await _tool(
        manager, "codex_check", {"action": "poll", "sessionId": started["sessionId"], "maxEvents": 100}
    )
    assert checked["status"] == "idle"
    assert checked["result"]["text"] == "finished"
    assert checked["nextCursor"] == session.buffer.next_id


async def test_an_approval_shows_in_actions_and_respond_permission_answers_codex(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    session = await manager.get(started["sessionId"])
    params = {
        "threadId": session.thread_id,
        "turnId": session.active_turn_id,
        "itemId": "call_1",
        "startedAtMs": 0,
        "command": "touch made.txt",
        "cwd": str(tmp_path),
        "availableDecisions": ["accept", "decline"],
    }
    codex_id = await fake.request("item/commandExecution/requestApproval", params)
    checked = await _tool(manager, "codex_check", {"action": "poll", "sessionId": started["sessionId"]})
    assert checked["status"] == "waiting_approval"
    (action,) = checked["actions"]
    assert action["command"] == "touch made.txt"
    answered = await _tool(
        manager,
        "codex_check",
        {
            "sessionId": started["sessionId"],
            "action": "respond_permission",
            "requestId": action["requestId"],
            "decision": "accept",
        },
    )
    assert answered["status"] == "running"
    assert answered.get("actions", []) == []
    assert await fake.answer() == (codex_id, {"id": codex_id, "result": {"decision": "accept"}})


async def test_interrupt_fork_and_list_through_codex_session(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    session_id = started["sessionId"]
    session = await manager.get(session_id)
    turn_id = session.active_turn_id
    interrupted = await _tool(manager, "codex_session", {"action": "interrupt", "sessionId": session_id})
    assert interrupted["success"] is True
    assert fake.interrupted == [turn_id]
    fake.complete_turn(session, "", status="interrupted")
    forked = await _tool(manager, "codex_session", {"action": "fork", "sessionId": session_id})
    fork_id = forked["sessionId"]
    assert fork_id != session_id
    assert (forked["threadId"], forked["status"]) == (fake.threads[-1], "idle")
    listed = await _tool(manager, "codex_session", {"action": "list"})
    assert {entry["sessionId"] for entry in listed["sessions"]} == {session_id, fork_id}
    got = await _tool(manager, "codex_session", {"action": "get", "sessionId": fork_id})
    assert got["status"] == "idle"


async def test_a_reply_after_cancel_is_refused_and_no_turn_starts(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    cancelled = await _tool(manager, "codex_session", {"action": "cancel", "sessionId": started["sessionId"]})
    assert cancelled["success"] is True
    with pytest.raises(CodexMcpError) as refused:
        await _tool(manager, "codex_reply", {"sessionId": started["sessionId"], "prompt": "again"})
    assert refused.value.code == "CANCELLED"
    assert len(fake.turns) == 1


async def test_codex_check_walks_the_cursor_and_an_answer_with_an_old_cursor_is_told_stale(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    session_id = started["sessionId"]
    session = await manager.get(session_id)
    fake.complete_turn(session, "done")
    first = await _tool(manager, "codex_check", {"action": "poll", "sessionId": session_id, "maxEvents": 1})
    second = await _tool(
        manager,
        "codex_check",
        {"action": "poll", "sessionId": session_id, "cursor": first["nextCursor"], "maxEvents": 100},
    )
    assert [event["id"] for event in first["events"]] == [first["nextCursor"] - 1]
    assert second["events"][0]["id"] == first["nextCursor"]
    assert second["nextCursor"] == session.buffer.next_id
    fake_params = {
        "threadId": session.thread_id,
        "turnId": "turn-late",
        "itemId": "q",
        "questions": [{"id": "q1", "header": "H", "question": "Which?", "isOther": False, "isSecret": False}],
        "isBlocking": True,
    }
    await manager.reply(session_id, handlers.TurnRequest(prompt="next"), [])
    await fake.request("item/tool/requestUserInput", fake_params | {"turnId": session.active_turn_id})
    (action,) = session.pending.values()
    answered = await _tool(
        manager,
        "codex_check",
        {
            "sessionId": session_id,
            "action": "respond_user_input",
            "requestId": action.request_id,
            "answers": {"q1": {"answers": ["this one"]}},
            "cursor": 0,
        },
    )
    assert answered["events"] == []
    assert answered["compatWarnings"] == [
        f"Provided cursor 0 is stale; used session cursor {session.last_cursor}."
    ]


async def test_a_long_poll_returns_when_codex_ends_the_turn(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    session = await manager.get(started["sessionId"])
    await _tool(
        manager, "codex_check", {"action": "poll", "sessionId": started["sessionId"], "maxEvents": 100}
    )
    checked: Json = {}

    async def poll() -> None:
        nonlocal checked
        checked = await _tool(
            manager,
            "codex_check",
            {
                "action": "poll",
                "sessionId": started["sessionId"],
                "maxEvents": 100,
                "pollOptions": {"waitMs": 4000},
            },
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(poll)
        await anyio.sleep(0.05)
        assert checked == {}  # still waiting
        fake.complete_turn(session, "news")
    assert checked["status"] == "idle"
    assert checked["result"]["text"] == "news"


async def test_with_remote_hosts_cwd_and_images_are_the_host_s_paths_not_checked_here(
    on_fake: tuple[SessionManager, FakeBackend],
) -> None:
    manager, fake = on_fake
    hosts = (Host("box", "ws://127.0.0.1:1"),)
    arguments: Json = {
        "prompt": "do it",
        "cwd": "/srv/repo/../repo",  # no such directory here: it is the host's
        "approvalPolicy": "never",
        "sandbox": "read-only",
        "advanced": {"images": ["shots/a.png"]},
    }
    await _tool(manager, "codex", arguments, hosts)
    assert fake.started[-1].cwd == "/srv/repo"
    assert fake.turns[-1][1].images == ["/srv/repo/shots/a.png"]
    for cwd, why in (
        ("repo", "is not an absolute path"),
        ("~/repo", "is not an absolute path"),
        (None, "required"),
    ):
        with pytest.raises(CodexMcpError) as refused:
            await _tool(
                manager,
                "codex",
                {**arguments, "cwd": cwd} if cwd else {k: v for k, v in arguments.items() if k != "cwd"},
                hosts,
            )
        assert (refused.value.code, refused.value.field) == ("INVALID_ARGUMENT", "cwd")
        assert why in refused.value.message


async def test_codex_reply_steer_adds_to_the_running_turn_and_a_retry_sends_nothing_more(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    session_id = started["sessionId"]
    session = await manager.get(session_id)
    turn_id = session.active_turn_id
    with pytest.raises(CodexMcpError) as busy:
        await _tool(manager, "codex_reply", {"sessionId": session_id, "prompt": "use tabs"})
    assert busy.value.code == "SESSION_BUSY"
    steer = {"sessionId": session_id, "prompt": "use tabs", "steer": True, "clientMessageId": "tabs-1"}
    steered = await _tool(manager, "codex_reply", steer)
    assert (steered["status"], steered["execution"]["mode"]) == ("running", "background")
    assert steered["steered"] == {"turnId": turn_id, "clientMessageId": "tabs-1", "duplicate": False}
    again = await _tool(manager, "codex_reply", steer)
    assert again["steered"] == {"turnId": turn_id, "clientMessageId": "tabs-1", "duplicate": True}
    assert [(turn, request.prompt) for turn, request in fake.steered] == [(turn_id, "use tabs")]
    assert len(fake.turns) == 1
    fake.complete_turn(session, "tabs it is")
    # The retry after the end: still not sent, and it carries the turn's result.
    late = await _tool(manager, "codex_reply", steer)
    assert (late["status"], late["result"]["text"], late["steered"]["duplicate"]) == (
        "idle",
        "tabs it is",
        True,
    )
    with pytest.raises(CodexMcpError) as ended:
        await _tool(manager, "codex_reply", {"sessionId": session_id, "prompt": "and spaces?", "steer": True})
    assert ended.value.code == "SESSION_NOT_RUNNING"
    assert (len(fake.turns), len(fake.steered)) == (1, 1)


async def test_codex_reply_steer_takes_images_but_refuses_a_new_turns_overrides(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _started(manager, tmp_path)
    session_id = started["sessionId"]
    image = tmp_path / "pixel.png"
    image.write_bytes(tiny_png())
    await _tool(
        manager,
        "codex_reply",
        {"sessionId": session_id, "prompt": "like this", "steer": True, "images": ["pixel.png"]},
    )
    assert [request.images for _, request in fake.steered] == [[str(image)]]
    overrides: list[tuple[str, object]] = [
        ("model", "other"),
        ("sandbox", "read-only"),
        ("outputSchema", {}),
        ("cwd", str(tmp_path)),
    ]
    for field, value in overrides:
        with pytest.raises(CodexMcpError) as refused:
            await _tool(
                manager, "codex_reply", {"sessionId": session_id, "prompt": "x", "steer": True, field: value}
            )
        assert (refused.value.code, refused.value.field) == ("INVALID_ARGUMENT", field)
        assert "not allowed with steer=true" in refused.value.message
    with pytest.raises(CodexMcpError) as alone:
        await _tool(manager, "codex_reply", {"sessionId": session_id, "prompt": "x", "clientMessageId": "a"})
    assert (alone.value.code, alone.value.field) == ("INVALID_ARGUMENT", "clientMessageId")
    assert len(fake.steered) == 1
