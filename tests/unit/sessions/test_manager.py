"""The session manager on a fake backend: its commands, the routing of what Codex says, answers to
Codex's requests, and the long-poll wait, with no Codex process (each test runs in milliseconds)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.backend import TurnRequest
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.polling import PollRequest, poll
from codex_mcp.sessions.session import PendingRequest, Session, ThreadSettings
from codex_mcp.state.store import StateStore
from codex_mcp.wire.tools import output_json
from tests.harness.fake_backend import STEP_BOUND_S, FakeBackend, open_on_fake
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.anyio

_NOW_MS = 1_795_487_575_000


def _settings() -> ThreadSettings:
    return ThreadSettings(approval_policy="on-request", sandbox="workspace-write", cwd="/work")


async def _start(manager: SessionManager, prompt: str = "do it") -> Session:
    return await manager.start(_settings(), TurnRequest(prompt=prompt), [])


def _approval(session: Session) -> dict[str, Any]:
    return {
        "threadId": session.thread_id,
        "turnId": session.active_turn_id,
        "itemId": "call_1",
        "startedAtMs": _NOW_MS,
        "command": "touch made.txt",
        "cwd": "/work",
        "availableDecisions": ["accept", "decline", "cancel"],
    }


async def _decide(manager: SessionManager, session_id: str, request_id: str, decision: str) -> None:
    """Answer an approval with a plain decision (no amendment, no deny message)."""
    await manager.respond_permission(
        session_id,
        request_id,
        decision=decision,
        execpolicy_amendment=None,
        network_policy_amendment=None,
        deny_message=None,
    )


def _kinds(session: Session) -> list[str]:
    return [event.type for event in session.buffer.events()]


async def test_a_session_starts_a_thread_and_a_turn_and_ends_with_codexs_answer() -> None:
    async with open_on_fake() as (manager, fake):
        begun: list[Session] = []
        session = await manager.start(_settings(), TurnRequest(prompt="hello"), [], begun.append)
        assert begun == [session]
        assert fake.threads == [session.thread_id]
        assert [(thread, turn.prompt) for thread, turn in fake.turns] == [(session.thread_id, "hello")]
        assert session.settings.model == "fake-model"  # the model Codex chose
        assert (session.status, session.backend, session.connection_key) == ("running", "app-server", "fake")
        fake.complete_turn(session, "all done")
        assert session.status == "idle"
        assert session.result is not None
        assert session.result["text"] == "all done"
        assert await manager.get(session.session_id) is session


async def test_an_approval_goes_to_actions_and_the_callers_decision_goes_back_to_codex() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        codex_id = await fake.request("item/commandExecution/requestApproval", _approval(session))
        assert session.status == "waiting_approval"
        (pending,) = session.pending.values()
        assert pending.codex_id == codex_id
        assert pending.available_decisions == ["accept", "decline", "cancel"]

        await _decide(manager, session.session_id, pending.request_id, "accept")
        answered_id, answer = await fake.answer()
        assert (answered_id, answer["result"]) == (codex_id, {"decision": "accept"})
        assert session.status == "running"
        assert not session.pending
        assert _kinds(session).count("approval_request") == _kinds(session).count("approval_result") == 1


async def test_a_decision_the_request_does_not_offer_is_refused_and_nothing_reaches_codex() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        params = _approval(session) | {"availableDecisions": ["decline", "cancel"]}
        await fake.request("item/commandExecution/requestApproval", params)
        (pending,) = session.pending.values()
        with pytest.raises(CodexMcpError) as refused:
            await _decide(manager, session.session_id, pending.request_id, "accept")
        assert refused.value.code == "INVALID_ARGUMENT"
        assert session.status == "waiting_approval"
        assert pending.request_id in session.pending
        assert fake.answers.given == []


async def test_interrupt_asks_the_backend_and_the_session_goes_idle_when_codex_confirms() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        turn_id = session.active_turn_id
        await manager.interrupt(session.session_id)
        assert fake.interrupted == [turn_id]
        assert session.status == "running"  # until Codex says the turn ended
        fake.complete_turn(session, "stopped", status="interrupted")
        assert session.status == "idle"
        with pytest.raises(CodexMcpError) as idle:
            await manager.interrupt(session.session_id)
        assert idle.value.code == "SESSION_NOT_RUNNING"


async def test_a_fork_is_a_new_idle_session_on_the_new_thread_and_codex_events_reach_it() -> None:
    async with open_on_fake() as (manager, fake):
        source = await _start(manager)
        fake.complete_turn(source, "first")
        fork = await manager.fork(source.session_id)
        assert fork.session_id != source.session_id
        assert fork.thread_id == fake.threads[-1] != source.thread_id
        assert (fork.status, fork.settings) == ("idle", source.settings)
        assert fork.settings is not source.settings  # a reply override on one must not move the other
        await manager.reply(fork.session_id, TurnRequest(prompt="go on"), [])
        assert fake.prepared == [fork.thread_id]
        fake.complete_turn(fork, "from the fork")
        assert fork.result is not None
        assert fork.result["text"] == "from the fork"
        assert source.result is not None
        assert source.result["text"] == "first"


async def test_cancel_declines_what_waits_stops_the_turn_and_a_later_reply_is_refused() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        turn_id = session.active_turn_id
        codex_id = await fake.request("item/commandExecution/requestApproval", _approval(session))
        await manager.cancel(session.session_id)
        answered_id, answer = await fake.answer()
        # Codex hears a decline; the session's events say the caller cancelled.
        assert (answered_id, answer["result"]) == (codex_id, {"decision": "decline"})
        (result,) = [e.data for e in session.buffer.events() if e.type == "approval_result"]
        assert result["decision"] == "cancel"
        assert fake.stopped == [turn_id]
        assert session.status == "cancelled"
        assert not session.pending
        # Codex's late end of the cancelled turn changes nothing.
        assert turn_id is not None
        fake.complete_turn(session, "too late", turn_id=turn_id)
        assert session.status == "cancelled"
        with pytest.raises(CodexMcpError) as refused:
            await manager.reply(session.session_id, TurnRequest(prompt="again"), [])
        assert refused.value.code == "CANCELLED"
        assert len(fake.turns) == 1


async def test_a_reply_to_a_running_session_is_busy_and_starts_nothing() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        with pytest.raises(CodexMcpError) as busy:
            await manager.reply(session.session_id, TurnRequest(prompt="more"), [])
        assert busy.value.code == "SESSION_BUSY"
        assert len(fake.turns) == 1
        assert fake.prepared == []


async def test_an_answer_after_codex_went_away_is_refused_and_the_request_stays() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        await fake.request("item/commandExecution/requestApproval", _approval(session))
        (pending,) = session.pending.values()
        fake.codex_gone = True
        with pytest.raises(CodexMcpError) as gone:
            await _decide(manager, session.session_id, pending.request_id, "accept")
        assert gone.value.code == "SESSION_NOT_RUNNING"
        assert pending.request_id in session.pending


async def test_polls_through_the_manager_walk_the_cursor_and_tell_a_stale_one() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        fake.complete_turn(session, "done")
        first = output_json(await poll(manager, session, PollRequest(max_events=2), []))
        rest = output_json(await poll(manager, session, PollRequest(max_events=100), []))
        ids = [event["id"] for event in first["events"] + rest["events"]]
        assert ids == sorted(set(ids))
        assert rest["nextCursor"] == session.buffer.next_id
        warnings: list[str] = []
        stale = output_json(await poll(manager, session, PollRequest(cursor=0, answering=True), warnings))
        assert stale["events"] == []
        assert stale["nextCursor"] == session.last_cursor
        assert warnings == [f"Provided cursor 0 is stale; used session cursor {session.last_cursor}."]


async def test_a_long_poll_through_the_manager_wakes_when_codex_speaks() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        await poll(manager, session, PollRequest(max_events=100), [])
        answer: dict[str, Any] = {}

        async def codex_answers_later() -> None:
            await anyio.sleep(0.05)
            fake.complete_turn(session, "woke")

        started = time.monotonic()
        with anyio.fail_after(STEP_BOUND_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(codex_answers_later)
                answer = output_json(
                    await poll(manager, session, PollRequest(max_events=100, wait_ms=3000), [])
                )
        assert time.monotonic() - started < 2.5  # woken by Codex, not by the end of the wait
        assert answer["events"][0]["data"]["method"] == "item/completed"
        assert answer["result"]["text"] == "woke"


async def test_a_stop_now_ends_running_turns_as_cut_by_the_client_and_kills_codex() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _start(manager)
        manager.stop_now("the client stopped codex-mcp")
        assert fake.killed
        assert session.status == "error"
        assert session.result is not None
        assert session.result["reason"] == "client_stopped"


async def test_sessions_start_on_the_backend_and_key_it_names() -> None:
    exec_like = FakeBackend(name="exec", key="exec")
    async with open_on_fake(backend=exec_like) as (manager, _):
        session = await _start(manager)
        assert (session.backend, session.connection_key) == ("exec", "exec")


async def _left_running(state: Path) -> tuple[str, str]:
    """A session whose turn was running on a shared service when its server exited: its id, thread."""
    store = StateStore.open(state)
    try:
        async with open_on_fake(backend=FakeBackend(outlive=True), store=store) as (manager, fake):
            session = await _start(manager)
            await fake.request("item/commandExecution/requestApproval", _approval(session))
            assert not fake.closed
        assert fake.closed  # the manager let go of the service
        assert session.status == "waiting_approval"  # not ended by the exit: the turn goes on
        return session.session_id, session.thread_id
    finally:
        store.close()


async def _reattached(
    manager: SessionManager, fake: FakeBackend, session_id: str
) -> tuple[Session, PendingRequest]:
    """The session a new server adopted and re-attached to, and the one request it still waits on."""
    session = await manager.lookup(session_id)
    await wait_until(lambda: bool(fake.reattached), timeout_s=STEP_BOUND_S, what="the re-attach")
    (pending,) = session.pending.values()
    return session, pending


async def test_a_turn_that_ended_while_no_server_was_attached_shows_its_result_and_items(
    tmp_path: Path,
) -> None:
    session_id, thread_id = await _left_running(tmp_path / "state")
    turn = {
        "id": "turn-2",
        "status": "completed",
        "items": [{"type": "agentMessage", "id": "msg-away", "text": "done while away"}],
    }
    store = StateStore.open(tmp_path / "state")
    try:
        fake = FakeBackend(outlive=True, ended_while_away={thread_id: turn})
        async with open_on_fake(backend=fake, store=store) as (manager, _):
            session = await manager.lookup(session_id)
            with anyio.fail_after(STEP_BOUND_S):
                await session.turn_finished.wait()
            assert fake.reattached == [thread_id]
            assert session.status == "idle"
            assert session.result is not None
            assert session.result["text"] == "done while away"
            recovered = [e.data for e in session.buffer.events() if e.data.get("recovered")]
            assert [data.get("itemId") for data in recovered] == ["msg-away"]
            assert not session.pending  # what it waited on ended with the turn
    finally:
        store.close()


async def test_a_turn_still_running_keeps_its_pending_approval_and_takes_codexs_replay(
    tmp_path: Path,
) -> None:
    session_id, thread_id = await _left_running(tmp_path / "state")
    store = StateStore.open(tmp_path / "state")
    try:
        async with open_on_fake(backend=FakeBackend(outlive=True), store=store) as (manager, fake):
            session, pending = await _reattached(manager, fake, session_id)
            # Codex replays the request (same id) to the connection that resumed the thread.
            session.active_turn_id = session.active_turn_id or "turn-2"
            replay = _approval(session)
            await fake.request_with_id(pending.codex_id, "item/commandExecution/requestApproval", replay)
            assert list(session.pending) == [pending.request_id]  # the same action, not a second one
            await _decide(manager, session_id, pending.request_id, "accept")
            assert await fake.answer() == (
                pending.codex_id,
                {"id": pending.codex_id, "result": {"decision": "accept"}},
            )
            assert fake.reattached == [thread_id]
    finally:
        store.close()


async def test_an_approval_that_expired_while_no_server_was_attached_is_declined_when_replayed(
    tmp_path: Path,
) -> None:
    session_id, _ = await _left_running(tmp_path / "state")
    store = StateStore.open(tmp_path / "state")
    try:
        async with open_on_fake(backend=FakeBackend(outlive=True), store=store) as (manager, fake):
            session, pending = await _reattached(manager, fake, session_id)
            pending.expires_at = "2000-01-01T00:00:00.000+00:00"  # its timeout passed while detached
            replay = _approval(session) | {"turnId": session.active_turn_id or "turn-2"}
            await fake.request_with_id(pending.codex_id, "item/commandExecution/requestApproval", replay)
            assert await fake.answer() == (
                pending.codex_id,
                {"id": pending.codex_id, "result": {"decision": "decline"}},
            )
            assert not session.pending
            (result,) = [e.data for e in session.buffer.events() if e.type == "approval_result"]
            assert (result["requestId"], result["decision"], result["timeout"]) == (
                pending.request_id,
                "decline",
                True,
            )
    finally:
        store.close()


async def test_a_forgotten_session_lets_codex_unload_its_thread_and_upkeep_hears_the_busy_keys() -> None:
    async with open_on_fake() as (manager, fake):
        running = await _start(manager)
        gone = await _start(manager)
        await manager.cancel(gone.session_id)
        matched, _, _ = await manager.clean(["cancelled"], None, dry_run=False, include_disk=False)
        assert matched == [gone.session_id]
        await wait_until(lambda: bool(fake.forgotten), timeout_s=STEP_BOUND_S, what="the unsubscribe")
        assert fake.forgotten == [gone.thread_id]
        # The watchdog (once a second) tells the backend which keys still run turns.
        await wait_until(lambda: bool(fake.busy_keys), timeout_s=STEP_BOUND_S, what="the upkeep")
        assert fake.busy_keys[-1] == {running.connection_key}
