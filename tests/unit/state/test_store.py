"""The state directory: servers that share it, owners, safe names, private files, event logs that
survive damage."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.buffer import EventBuffer
from codex_mcp.state import journal as journal_module
from codex_mcp.state.files import check_session_id
from codex_mcp.state.journal import read_events
from codex_mcp.state.store import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state")
    yield opened
    opened.close()


@pytest.mark.parametrize("bad", ["", "..", "../etc", "a/b", "sess_1\x00", "x" * 65, "sess 1", "/abs"])
def test_session_ids_that_could_leave_the_directory_are_refused(bad: str) -> None:
    with pytest.raises(CodexMcpError) as caught:
        check_session_id(bad)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.field == "sessionId"


def test_a_plain_session_id_is_accepted() -> None:
    assert check_session_id("sess_0123456789ab") == "sess_0123456789ab"


def test_the_store_refuses_a_bad_id_before_touching_the_disk(store: StateStore, tmp_path: Path) -> None:
    with pytest.raises(CodexMcpError):
        store.write_meta("../escaped", {"x": 1})
    assert not (tmp_path / "state" / "escaped").exists()
    assert not (tmp_path / "escaped").exists()


def test_several_servers_share_one_directory_and_each_sees_the_others(tmp_path: Path) -> None:
    stores = [StateStore.open(tmp_path / "state") for _ in range(4)]
    try:
        run_ids = {store.run_id for store in stores}
        assert len(run_ids) == 4
        for store in stores:
            assert {info.run_id for info in store.registry.live_servers()} == run_ids
    finally:
        for store in stores:
            store.close()
    # A closed server has deregistered: nothing of it is left to reap.
    assert list((tmp_path / "state" / "servers").iterdir()) == []


def test_a_session_has_one_owner_and_a_dead_owners_session_is_adopted_once(tmp_path: Path) -> None:
    first, second = StateStore.open(tmp_path / "state"), StateStore.open(tmp_path / "state")
    try:
        first.claim_new("sess_a")
        assert first.owner("sess_a").kind == "this-server"
        other = second.owner("sess_a")
        assert other.kind == "other-server"
        assert f"pid {os.getpid()}" in other.describe()
        # A live owner keeps it.
        assert second.adopt("sess_a").kind == "other-server"
        assert first.owner("sess_a").kind == "this-server"
        first.close()
        assert second.owner("sess_a").kind == "none"
        assert second.adopt("sess_a").kind == "none"
        assert second.owner("sess_a").kind == "this-server"
        # The second call finds it owned: a race of two adopters has one winner.
        assert second.adopt("sess_a").kind == "this-server"
    finally:
        first.close()
        second.close()


def test_a_directory_of_the_one_server_layout_is_taken_over_when_its_server_is_dead(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    dead = {"pid": 2**22 + 3, "startTime": 1, "runId": "deadbeef", "startedAt": 1.0}
    (root / "lock").write_text(json.dumps(dead))
    (root / "children.json").write_text(json.dumps({"runId": "deadbeef", "children": {}}))
    store = StateStore.open(root)
    store.close()
    assert not (root / "lock").exists()
    assert not (root / "children.json").exists()


def test_a_live_server_of_the_one_server_layout_is_named_and_refused(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "lock").write_text(json.dumps({"pid": os.getpid(), "runId": "old"}))
    fd = os.open(root / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(CodexMcpError) as caught:
            StateStore.open(root)
    finally:
        os.close(fd)
    assert "CODEX_MCP_STATE_DIR" in caught.value.message
    assert f"older codex-mcp (pid {os.getpid()})" in caught.value.message


def test_files_and_directories_are_private(store: StateStore, tmp_path: Path) -> None:
    store.write_meta("sess_a", {"sessionId": "sess_a"})
    store.write_result("sess_a", {"status": "completed"})
    buffer = EventBuffer()
    buffer.journal = store.journal("sess_a", buffer.events)
    buffer.append("progress", {"method": "x"})
    root = tmp_path / "state"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "sessions" / "sess_a").stat().st_mode) == 0o700
    for path in (root / "sessions" / "sess_a").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_an_event_log_round_trips_growth_of_streamed_deltas(store: StateStore, tmp_path: Path) -> None:
    buffer = EventBuffer()
    buffer.journal = store.journal("sess_a", buffer.events)
    buffer.append("progress", {"method": "turn/started"})
    for piece in ("Hel", "lo, ", "world"):
        buffer.append("output", {"method": "item/agentMessage/delta", "delta": piece}, coalesce_key="m")
    buffer.append("result", {"method": "turn/completed"})
    events, bad = read_events(tmp_path / "state" / "sessions" / "sess_a" / "events.jsonl")
    assert bad == 0
    assert [(e.id, e.type, e.data) for e in events] == [(e.id, e.type, e.data) for e in buffer.events()]
    assert events[1].data["delta"] == "Hello, world"
    assert events[2].pinned


def test_a_torn_or_garbled_line_is_skipped_and_the_rest_loads(store: StateStore, tmp_path: Path) -> None:
    buffer = EventBuffer()
    buffer.journal = store.journal("sess_a", buffer.events)
    buffer.append("progress", {"method": "one"})
    buffer.append("progress", {"method": "two"})
    log = tmp_path / "state" / "sessions" / "sess_a" / "events.jsonl"
    with log.open("ab") as handle:
        handle.write(b"[1, 2]\n\xff\xfe garbage\n")
        handle.write(b'{"id": 7, "grow": "orphan growth", "ts": "t"}\n')
        handle.write(b'{"id": 2, "type": "output", "data": {"method": "cut')
    events, bad = read_events(log)
    assert [e.data["method"] for e in events] == ["one", "two"]
    assert bad == 4


def test_a_log_much_longer_than_the_buffer_is_compacted(
    store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "COMPACT_SLACK_RECORDS", 50)
    buffer = EventBuffer(soft_limit=10, hard_limit=10)
    buffer.journal = store.journal("sess_a", buffer.events)
    for i in range(500):
        buffer.append("progress", {"method": f"m{i}"})
    log = tmp_path / "state" / "sessions" / "sess_a" / "events.jsonl"
    lines = log.read_bytes().splitlines()
    assert len(lines) <= 10 + 50 + 1
    events, bad = read_events(log)
    assert bad == 0
    assert [e.id for e in events][-10:] == [e.id for e in buffer.events()]
    # Writing goes on into the new file, not the replaced one.
    buffer.append("progress", {"method": "after"})
    assert read_events(log)[0][-1].data["method"] == "after"


def test_load_reports_none_for_garbage_metadata_and_drops_a_garbage_result(
    store: StateStore, tmp_path: Path
) -> None:
    sessions = tmp_path / "state" / "sessions"
    store.write_meta("sess_good", {"sessionId": "sess_good"})
    (sessions / "sess_good" / "result.json").write_text("[not an object]")
    store.write_meta("sess_bad", {"sessionId": "sess_bad"})
    (sessions / "sess_bad" / "meta.json").write_bytes(b'{"sessionId": "sess_b')
    (sessions / "not a session").mkdir()
    assert store.session_ids() == ["sess_bad", "sess_good"]
    good = store.load("sess_good")
    assert good is not None
    assert good.result is None
    assert store.load("sess_bad") is None


def test_remove_deletes_a_sessions_files(store: StateStore, tmp_path: Path) -> None:
    store.write_meta("sess_a", {"sessionId": "sess_a"})
    assert store.remove("sess_a") is True
    assert store.remove("sess_a") is False
    assert not (tmp_path / "state" / "sessions" / "sess_a").exists()


def test_children_are_recorded_with_their_start_time_and_forgotten_on_exit(
    store: StateStore, tmp_path: Path
) -> None:
    entry = tmp_path / "state" / "servers" / f"{store.run_id}.json"
    store.started(4242, 99)
    ledger = json.loads(entry.read_text())
    assert ledger["runId"] == store.run_id
    assert ledger["pid"] == os.getpid()
    assert ledger["children"] == {"4242": 99}
    store.ended(4242)
    assert json.loads(entry.read_text())["children"] == {}


def test_an_unusable_state_dir_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CodexMcpError) as caught:
        StateStore.open(blocker / "state")
    assert caught.value.message.startswith(f"CODEX_MCP_STATE_DIR={blocker / 'state'}: cannot use it")
