"""Orphan reaping: what a dead server left is stopped, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_mcp.proc import proc_tree
from codex_mcp.state.reaper import RUN_VARIABLE, reap
from codex_mcp.state.store import StateStore


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)


def _start(spawned: list[subprocess.Popen[bytes]], argv: list[str], tag: str | None = None) -> int:
    env = dict(os.environ)
    if tag is not None:
        env[RUN_VARIABLE] = tag
    process = subprocess.Popen(argv, env=env, start_new_session=True)
    spawned.append(process)
    deadline = time.monotonic() + 5
    # Wait for the exec to happen, so /proc shows the final command line and environment.
    while Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[0] != argv[0].encode():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return process.pid


def _alive(pid: int) -> bool:
    start = proc_tree.start_time(pid)
    return start is not None and bool(proc_tree.alive({pid: start}))


def test_a_process_carrying_the_dead_runs_tag_is_stopped(spawned: list[subprocess.Popen[bytes]]) -> None:
    tagged = _start(spawned, ["sleep", "30"], tag="run-dead")
    other_run = _start(spawned, ["sleep", "30"], tag="run-alive")
    untagged = _start(spawned, ["sleep", "30"])
    assert reap("run-dead", {}) == [tagged]
    assert not _alive(tagged)
    assert _alive(other_run)
    assert _alive(untagged)


def test_a_recorded_child_and_its_descendants_are_stopped(spawned: list[subprocess.Popen[bytes]]) -> None:
    shell = _start(spawned, ["sh", "-c", "sleep 30 & wait"])
    deadline = time.monotonic() + 5
    while len(proc_tree.expand({shell: proc_tree.start_time(shell) or 0})) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    family = proc_tree.expand({shell: proc_tree.start_time(shell) or 0})
    assert sorted(reap("run-dead", {shell: proc_tree.start_time(shell) or 0})) == sorted(family)
    assert not any(_alive(pid) for pid in family)


def test_a_recorded_pid_with_another_start_time_is_someone_elses(
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    stranger = _start(spawned, ["sleep", "30"])
    start = proc_tree.start_time(stranger)
    assert start is not None
    assert reap("run-dead", {stranger: start - 1}) == []
    assert _alive(stranger)


def test_a_dead_servers_children_are_reaped_and_a_live_servers_are_not(
    spawned: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    leftover = _start(spawned, ["sleep", "30"])
    bystander = _start(spawned, ["sleep", "30"])
    root = tmp_path / "state"
    servers = root / "servers"
    servers.mkdir(parents=True)
    dead = {
        "runId": "rundead",
        "pid": 2**22 + 3,
        "startTime": 1,
        "startedAt": 1.0,
        "children": {str(leftover): proc_tree.start_time(leftover)},
    }
    (servers / "rundead.json").write_text(json.dumps(dead))
    (servers / "rundead.lock").write_text("")  # nobody holds it: its server is gone
    live = StateStore.open(root)
    live.started(bystander, proc_tree.start_time(bystander))
    reaper_store = StateStore.open(root)
    try:
        reaper_store.reap_dead_servers()
        assert not _alive(leftover)
        assert _alive(bystander)
        assert not (servers / "rundead.json").exists()
        assert (servers / f"{live.run_id}.json").exists()
    finally:
        reaper_store.close()
        live.close()
