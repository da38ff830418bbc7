"""The detached sweeper: what a stopped server's children started is killed after the server is gone."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from codex_mcp.backends import proc_tree, sweep

_GONE_WITHIN_S = 10.0


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + _GONE_WITHIN_S
    while time.monotonic() < deadline:
        if not proc_tree.alive({pid: proc_tree.start_time(pid) or -1}):
            return True
        time.sleep(0.02)
    return False


def test_the_sweeper_kills_a_detached_process_carrying_a_tag_and_spares_others() -> None:
    tag = f"CODEX_MCP_PROCESS_TAG={uuid.uuid4().hex}"
    name, value = tag.split("=", 1)
    tagged = subprocess.Popen(["sleep", "60"], env={**os.environ, name: value}, start_new_session=True)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        sweep.start_detached({}, [tag])
        assert _wait_gone(tagged.pid)
        tagged.wait(5)
        assert bystander.poll() is None
    finally:
        for process in (tagged, bystander):
            process.kill()
            process.wait()


def test_a_recorded_tree_is_killed_in_process_too() -> None:
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    start = proc_tree.start_time(child.pid)
    assert start is not None
    sweep.sweep({child.pid: start}, [], rounds=1)
    assert child.wait(5) == -9
