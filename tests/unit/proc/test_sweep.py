"""The detached sweeper: what a stopped server's children started is killed after the server is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from codex_mcp.proc import proc_tree, sweep

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


def test_the_spawned_module_is_this_module() -> None:
    # `start_detached` spawns `python -m sweep.MODULE`; if that name went stale the spawn would start
    # a Python that fails to import it, and nothing would be swept.
    assert sweep.__name__ == sweep.MODULE


def test_the_sweeper_runs_as_its_own_process_from_its_module_path() -> None:
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    start = proc_tree.start_time(child.pid)
    assert start is not None
    order = json.dumps({"tree": {str(child.pid): start}, "tags": []})
    ran = subprocess.run([sys.executable, "-m", sweep.MODULE, order], check=False, timeout=30)
    assert ran.returncode == 0
    assert child.wait(5) == -9
