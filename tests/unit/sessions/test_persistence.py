"""Sessions written to the state directory come back as they were; a cut turn ends server_restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_mcp.sessions.ingest import finish_turn
from codex_mcp.sessions.persistence import (
    SessionPersister,
    disk_only_matches,
    restore_session,
    stored_worktree,
)
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.state.store import StateStore, StoredSession
from codex_mcp.wire.tools import output_json
from codex_mcp.worktrees import Worktree


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state")
    yield opened
    opened.close()


def _session(session_id: str = "sess_000000000001", *, ephemeral: bool = False) -> Session:
    settings = ThreadSettings(
        approval_policy="on-request", sandbox="workspace-write", cwd="/w", model="m", ephemeral=ephemeral
    )
    return Session(session_id=session_id, thread_id="thr_1", settings=settings, connection_key="k")


def _recover(store: StateStore) -> list[Session]:
    """Every session on disk, as adopting it would load it."""
    persister = SessionPersister(store)
    loaded = [
        persister.load(session_id, connection_key="new", filter_noise=True, view=False)
        for session_id in store.session_ids()
    ]
    return [session for session in loaded if session is not None]


def test_a_finished_session_comes_back_as_it_was(store: StateStore) -> None:
    session = _session()
    persister = SessionPersister(store)
    persister.attach(session)
    session.buffer.append("progress", {"method": "turn/started"})
    session.buffer.append("output", {"method": "item/agentMessage/delta", "delta": "Hi"}, coalesce_key="a")
    session.buffer.append(
        "output", {"method": "item/agentMessage/delta", "delta": " there"}, coalesce_key="a"
    )
    session.tokens.input_tokens, session.tokens.seen = 12, True
    finish_turn(session, status="completed", turn_id="turn_1")
    session.last_cursor = 2
    persister.write(session)

    [back] = _recover(store)
    assert back.session_id == session.session_id
    assert back.thread_id == "thr_1"
    assert back.settings == session.settings
    assert back.status == "idle"
    assert back.result == session.result
    assert back.last_cursor == 2
    assert back.tokens == session.tokens
    assert back.connection_key == "new"
    assert [(e.id, e.data) for e in back.buffer.events()] == [(e.id, e.data) for e in session.buffer.events()]
    assert back.buffer.next_id == session.buffer.next_id
    assert back.turn_finished.is_set()


def test_a_turn_cut_by_the_restart_ends_as_error_server_restart_and_stays_replyable(
    store: StateStore,
) -> None:
    session = _session()
    SessionPersister(store).attach(session)
    session.begin_turn(has_output_schema=False)
    session.active_turn_id = "turn_9"
    session.buffer.append("progress", {"method": "turn/started"})
    SessionPersister(store).write(session)

    [back] = _recover(store)
    assert back.status == "error"
    assert back.result is not None
    assert back.result["reason"] == "server_restart"
    assert back.result["turnId"] == "turn_9"
    assert "codex_reply continues" in back.result["error"]["message"]
    assert back.buffer.events()[-1].type == "result"
    assert output_json(back.public_info(include_sensitive=False))["canResume"] is True
    # The restart's own result event is on disk too, once attached.
    persister = SessionPersister(store)
    persister.attach(back)
    [again] = _recover(store)
    assert again.buffer.events()[-1].data["reason"] == "server_restart"


def test_an_ephemeral_session_says_it_cannot_resume(store: StateStore) -> None:
    session = _session(ephemeral=True)
    session.begin_turn(has_output_schema=False)
    SessionPersister(store).attach(session)
    [back] = _recover(store)
    assert output_json(back.public_info(include_sensitive=False))["canResume"] is False
    assert back.result is not None
    assert "cannot resume" in back.result["error"]["message"]


def test_new_events_after_recovery_continue_the_ids_and_never_grow_an_old_one(store: StateStore) -> None:
    session = _session()
    session.status = "idle"
    SessionPersister(store).attach(session)
    session.buffer.append("output", {"method": "item/agentMessage/delta", "delta": "a"}, coalesce_key="a")
    [back] = _recover(store)
    event = back.buffer.append(
        "output", {"method": "item/agentMessage/delta", "delta": "b"}, coalesce_key="a"
    )
    assert event.id == session.buffer.next_id
    assert back.buffer.events()[0].data["delta"] == "a"


def test_metadata_without_a_thread_is_refused(store: StateStore) -> None:
    stored = StoredSession("sess_1", {"sessionId": "sess_1", "settings": {}}, None, [])
    with pytest.raises(ValueError, match="threadId"):
        restore_session(stored, connection_key="k", filter_noise=True)
    mismatched = StoredSession("sess_1", {"sessionId": "sess_2"}, None, [])
    with pytest.raises(ValueError, match="sess_2"):
        restore_session(mismatched, connection_key="k", filter_noise=True)


def test_unknown_settings_and_a_bad_status_do_not_stop_a_load(store: StateStore) -> None:
    session = _session()
    SessionPersister(store).attach(session)
    meta = store.read_meta(session.session_id)
    assert meta is not None
    meta["settings"]["fromTheFuture"] = True
    meta["status"] = "sleeping"
    store.write_meta(session.session_id, meta)
    [back] = _recover(store)
    assert back.status == "error"


def test_clean_finds_finished_sessions_on_disk_that_are_no_longer_in_memory(store: StateStore) -> None:
    persister = SessionPersister(store)
    idle, running, unreadable = _session("sess_idle"), _session("sess_running"), _session("sess_garbled")
    for session in (idle, running, unreadable):
        persister.attach(session)
    finish_turn(idle, status="completed", turn_id="t")
    persister.write(idle)
    store.write_meta("sess_garbled", {"no": "status"})
    (store.root / "sessions" / "sess_garbled" / "meta.json").write_text("{")
    assert disk_only_matches(store, set(), ["idle", "error"], None) == ["sess_garbled", "sess_idle"]
    assert disk_only_matches(store, {"sess_idle"}, ["idle"], None) == ["sess_garbled"]
    assert disk_only_matches(store, set(), ["idle"], 60_000) == ["sess_garbled"]


def test_a_session_started_by_a_cancelled_call_is_still_marked_after_a_restart(store: StateStore) -> None:
    session = _session()
    session.begin_turn(has_output_schema=False)
    session.started_by_cancelled_call = True
    SessionPersister(store).attach(session)
    [back] = _recover(store)
    assert output_json(back.public_info(include_sensitive=False))["startedByCancelledCall"] is True
    back.begin_turn(has_output_schema=False)
    assert "startedByCancelledCall" not in output_json(back.public_info(include_sensitive=False))


def test_a_sessions_worktree_comes_back_with_its_settings(store: StateStore) -> None:
    session = _session()
    session.settings.worktree = Worktree("/state/worktrees/s", "codex-mcp/s", "a" * 40, "/repo/.git")
    persister = SessionPersister(store)
    persister.attach(session)
    finish_turn(session, status="completed", turn_id="turn_1")
    persister.write(session)
    [back] = _recover(store)
    assert back.settings.worktree == session.settings.worktree
    assert stored_worktree(store, session.session_id) == session.settings.worktree


def test_a_sessions_approvals_mode_comes_back_with_its_settings(store: StateStore) -> None:
    session = _session()
    session.settings.approvals = "elicit"
    persister = SessionPersister(store)
    persister.attach(session)
    finish_turn(session, status="completed", turn_id="turn_1")
    persister.write(session)
    [back] = _recover(store)
    assert back.settings.approvals == "elicit"
