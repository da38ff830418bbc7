"""Steering a running turn (`codex_reply` `steer: true`) in the manager, on a fake backend: what
reaches Codex, the retries that must not, and the turns a steer must never start."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.backend import SteerRequest, TurnRequest
from codex_mcp.sessions.manager import STEERED_EVENT, SessionManager, Steered
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.state.store import StateStore
from tests.harness.fake_backend import STEP_BOUND_S, FakeBackend, open_on_fake

pytestmark = pytest.mark.anyio


def _settings() -> ThreadSettings:
    return ThreadSettings(approval_policy="on-request", sandbox="workspace-write", cwd="/work")


async def _running(manager: SessionManager) -> Session:
    return await manager.start(_settings(), TurnRequest(prompt="write the parser"), [])


async def _steer(
    manager: SessionManager, session: Session, prompt: str, client_id: str | None = None
) -> Steered:
    with anyio.fail_after(STEP_BOUND_S):
        _, steered = await manager.steer(session.session_id, prompt, [], client_id)
    return steered


async def _refused(manager: SessionManager, session: Session, prompt: str) -> CodexMcpError:
    with pytest.raises(CodexMcpError) as refused:
        await _steer(manager, session, prompt)
    return refused.value


async def test_a_steer_reaches_the_running_turn_which_goes_on_and_ends_with_its_answer() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        turn_id = session.active_turn_id
        assert turn_id is not None
        steered = await _steer(manager, session, "use a recursive descent parser", "fix-1")
        assert steered == Steered(turn_id, "fix-1", duplicate=False)
        assert fake.steered == [(turn_id, SteerRequest("use a recursive descent parser", [], "fix-1"))]
        assert (session.status, session.active_turn_id) == ("running", turn_id)
        assert len(fake.turns) == 1  # no new turn
        ours = [e.data for e in session.buffer.events() if e.data.get("method") == STEERED_EVENT]
        assert ours == [
            {
                "method": STEERED_EVENT,
                "turnId": turn_id,
                "clientMessageId": "fix-1",
                "prompt": "use a recursive descent parser",
            }
        ]
        # Codex's own item for it, the steer's id as its clientId, shows as output.
        shown = [
            e
            for e in session.buffer.events()
            if e.data.get("method") == "item/completed" and e.data["item"]["type"] == "userMessage"
        ]
        assert [(e.type, e.data["item"]["clientId"]) for e in shown] == [("output", "fix-1")]
        fake.complete_turn(session, "parsed recursively")
        assert session.result is not None
        assert (session.status, session.result["turnId"], session.result["text"]) == (
            "idle",
            turn_id,
            "parsed recursively",
        )


async def test_without_a_client_id_the_server_makes_one_for_each_steer() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        first = await _steer(manager, session, "one")
        second = await _steer(manager, session, "two")
        assert first.client_message_id.startswith("codex-mcp-steer-")
        assert first.client_message_id != second.client_message_id
        assert [request.client_message_id for _, request in fake.steered] == [
            first.client_message_id,
            second.client_message_id,
        ]


async def test_a_retry_of_the_same_steer_on_the_same_turn_is_not_sent_again() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        first = await _steer(manager, session, "stop using regexes")
        again = await _steer(manager, session, "stop using regexes")
        assert again == Steered(first.turn_id, first.client_message_id, duplicate=True)
        with_id = await _steer(manager, session, "stop using regexes", "retry-me")
        assert with_id.duplicate is False  # another call: an id the first had not
        assert (await _steer(manager, session, "stop using regexes", "retry-me")).duplicate is True
        assert (await _steer(manager, session, "stop using regexes", "another")).duplicate is False
        assert (await _steer(manager, session, "something else", "retry-me")).duplicate is False
        assert [(request.prompt, request.client_message_id) for _, request in fake.steered] == [
            ("stop using regexes", first.client_message_id),
            ("stop using regexes", "retry-me"),
            ("stop using regexes", "another"),
            ("something else", "retry-me"),
        ]


async def test_two_identical_steers_at_once_send_one() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        results: list[Steered] = []

        async def steer() -> None:
            results.append(await _steer(manager, session, "same text", "same-id"))

        async with anyio.create_task_group() as group:
            group.start_soon(steer)
            group.start_soon(steer)
        assert sorted(result.duplicate for result in results) == [False, True]
        assert len(fake.steered) == 1


async def test_the_same_text_on_the_next_turn_is_a_new_steer() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        await _steer(manager, session, "add tests", "t")
        fake.complete_turn(session, "done")
        await manager.reply(session.session_id, TurnRequest(prompt="next"), [])
        steered = await _steer(manager, session, "add tests", "t")
        assert (steered.turn_id, steered.duplicate) == (session.active_turn_id, False)
        assert len(fake.steered) == 2


async def test_after_the_turn_ended_a_steer_fails_and_starts_no_turn_but_a_retry_still_dedups() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        sent = await _steer(manager, session, "rename it", "r1")
        fake.complete_turn(session, "renamed")
        # The retry of a steer the ended turn took: it landed, nothing is sent again.
        retry = await _steer(manager, session, "rename it", "r1")
        assert retry == Steered(sent.turn_id, "r1", duplicate=True)
        refused = await _refused(manager, session, "and document it")
        assert refused.code == "SESSION_NOT_RUNNING"
        assert "codex_reply without steer" in refused.message
        assert (len(fake.turns), len(fake.steered), session.status) == (1, 1, "idle")


async def test_a_turn_that_ends_before_the_steer_reaches_codex_fails_it_and_a_retry_is_sent() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        fake.steer_races_turn_end = True
        refused = await _refused(manager, session, "too late?")
        assert refused.code == "SESSION_NOT_RUNNING"
        assert fake.steered == []
        # Nothing was sent, so nothing is remembered: the retry goes to Codex.
        assert (await _steer(manager, session, "too late?")).duplicate is False
        assert len(fake.steered) == 1
        assert len(fake.turns) == 1


async def test_a_turn_not_started_yet_cannot_be_steered() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        session.active_turn_id = None  # turn/start not answered yet
        refused = await _refused(manager, session, "early")
        assert (refused.code, refused.message) == (
            "SESSION_NOT_RUNNING",
            "the turn has not started yet; poll and retry",
        )
        assert fake.steered == []


async def test_a_turn_waiting_for_an_approval_can_be_steered() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        params = {
            "threadId": session.thread_id,
            "turnId": session.active_turn_id,
            "itemId": "call_1",
            "startedAtMs": 0,
            "command": "rm -rf build",
            "cwd": "/work",
        }
        await fake.request("item/commandExecution/requestApproval", params)
        assert session.status == "waiting_approval"
        assert (await _steer(manager, session, "keep the build dir")).duplicate is False
        assert session.status == "waiting_approval"


async def test_cancelled_and_exec_sessions_refuse_a_steer() -> None:
    async with open_on_fake() as (manager, fake):
        session = await _running(manager)
        await manager.cancel(session.session_id)
        assert (await _refused(manager, session, "x")).code == "CANCELLED"
    async with open_on_fake(backend=FakeBackend(name="exec")) as (manager, fake):
        session = await _running(manager)
        assert session.backend == "exec"
        assert (await _refused(manager, session, "x")).code == "EXEC_NOT_SUPPORTED"
        assert fake.steered == []


async def test_steers_are_remembered_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = StateStore.open(state)
    try:
        async with open_on_fake(backend=FakeBackend(outlive=True), store=store) as (manager, fake):
            session = await _running(manager)
            session_id = session.session_id
            sent = await _steer(manager, session, "keep going", "k1")
    finally:
        store.close()
    store = StateStore.open(state)
    try:
        async with open_on_fake(backend=FakeBackend(outlive=True), store=store) as (manager, fake):
            adopted = await manager.get(session_id)
            assert adopted.status == "running"  # its turn went on in the shared service
            retry = await _steer(manager, adopted, "keep going", "k1")
            assert retry == Steered(sent.turn_id, "k1", duplicate=True)
            assert fake.steered == []
    finally:
        store.close()
