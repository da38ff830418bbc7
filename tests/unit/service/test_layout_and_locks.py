"""A service's identity, its files, and the locks it is found and shared by."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.service import attach, keeper
from codex_mcp.service.attach import SharedService
from codex_mcp.service.layout import ServiceLayout, service_key
from codex_mcp.service.locks import hold_shared, is_held, try_exclusive


def test_the_keeper_is_spawned_by_its_own_module_name() -> None:
    # `start_detached` spawns `python -m keeper.MODULE`: a stale name would start nothing.
    assert keeper.__name__ == keeper.MODULE


def test_the_key_changes_with_the_executable_its_contents_the_codex_home_and_the_args(tmp_path: Path) -> None:
    codex = tmp_path / "codex"
    codex.write_text("one")
    first = service_key(codex, "/home/a/.codex", ())
    assert service_key(codex, "/home/a/.codex", ()) == first
    assert service_key(codex, "/home/b/.codex", ()) != first
    assert service_key(codex, "/home/a/.codex", ("-c", "x=1")) != first
    codex.write_text("an upgrade")
    os.utime(codex, ns=(1, 1))
    assert service_key(codex, "/home/a/.codex", ()) != first


def test_the_layout_is_private_and_its_socket_url_is_under_the_state_directory(tmp_path: Path) -> None:
    layout = ServiceLayout.under(tmp_path / "state", "abc123")
    assert stat.S_IMODE(layout.root.stat().st_mode) == 0o700
    assert layout.url == f"unix://{tmp_path}/state/svc/abc123/sock"
    assert layout.read_info() == {}
    layout.info.write_text("{torn")
    assert layout.read_info() == {}


def test_a_shared_hold_keeps_the_lock_held_until_it_is_let_go_and_a_dead_holder_holds_nothing(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "attach.lock"
    assert not is_held(lock)
    fd = hold_shared(lock)
    assert is_held(lock)
    assert try_exclusive(lock) is None
    os.close(fd)
    assert not is_held(lock)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl,os,time; fd=os.open({str(lock)!r}, os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_SH); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        assert is_held(lock)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert not is_held(lock)  # the kernel let go of a killed holder's lock


@pytest.mark.anyio
async def test_a_server_using_the_service_for_a_turn_keeps_the_keeper_from_recycling_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = ServiceLayout.under(tmp_path / "state", "abc123")
    service = SharedService(layout, ["codex"], {}, idle_s=1.0, start_timeout_s=0.3)
    await service.hold_busy()
    assert try_exclusive(layout.busy_lock) is None  # the keeper's recycle check
    service.release_busy_if_idle(running=False)  # asked for just now: still held
    assert try_exclusive(layout.busy_lock) is None
    monkeypatch.setattr(attach, "_BUSY_GRACE_S", 0.0)
    service.release_busy_if_idle(running=True)  # a turn runs: held
    assert try_exclusive(layout.busy_lock) is None
    service.release_busy_if_idle(running=False)
    gate = try_exclusive(layout.busy_lock)
    assert gate is not None  # nothing of ours runs there: the keeper may recycle
    try:
        with pytest.raises(CodexMcpError, match="being recycled for over 0s"):
            await service.hold_busy()  # a recycle that never ends is a clear error, in bounded time
    finally:
        os.close(gate)
    await service.hold_busy()
    service.detach()
    gate = try_exclusive(layout.busy_lock)
    assert gate is not None
    os.close(gate)
