"""The one bounded run of Codex every probe uses: what it keeps, and that a hung one is killed whole."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import anyio
import pytest

from codex_mcp.codex_probe import CodexRun, VersionCache, codex_version, parse_version, run_codex
from tests.e2e.processes import live_processes_with_env

pytestmark = pytest.mark.anyio

_SHORT_S = 0.5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "codex"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def test_a_run_keeps_the_exit_status_and_both_outputs_stripped(tmp_path: Path) -> None:
    codex = _script(tmp_path, 'echo " out $1 "; echo "err" >&2; exit 3')
    assert await run_codex(codex, ("x",), timeout_s=10) == CodexRun(3, "out x", "err")


async def test_a_run_that_gives_no_answer_is_killed_with_everything_in_its_group(tmp_path: Path) -> None:
    # Unique on the machine: another test run at the same time has the same tmp_path names.
    marker = f"probe-{uuid.uuid4().hex}"
    # A child of its own that outlives the shell's exit must go with the group, too.
    codex = _script(tmp_path, f"export PROBE_MARK={marker}\nsleep 60 &\necho started\nexec sleep 60")
    with anyio.fail_after(10):
        run = await run_codex(codex, (), timeout_s=_SHORT_S)
    assert run.returncode is None
    assert run.stdout == "started"
    # SIGKILL is delivered at once, but the orphaned child is reaped by init a moment later.
    for _ in range(250):
        if not live_processes_with_env(f"PROBE_MARK={marker}"):
            break
        await anyio.sleep(0.02)
    assert live_processes_with_env(f"PROBE_MARK={marker}") == []


async def test_a_cancelled_run_is_killed_too(tmp_path: Path) -> None:
    marker = f"probe-{uuid.uuid4().hex}"
    codex = _script(tmp_path, f"PROBE_MARK={marker} exec sleep 60")
    with anyio.move_on_after(_SHORT_S):
        await run_codex(codex, (), timeout_s=60)
    assert live_processes_with_env(f"PROBE_MARK={marker}") == []


async def test_a_codex_that_cannot_start_raises_os_error(tmp_path: Path) -> None:
    not_executable = tmp_path / "codex"
    not_executable.write_text("not a program")
    with pytest.raises(PermissionError):  # an OSError: callers word it as "could not run"
        await run_codex(not_executable, ("--version",), timeout_s=_SHORT_S)


async def test_output_past_the_bound_is_read_and_dropped(tmp_path: Path) -> None:
    codex = _script(tmp_path, "head -c 2000000 /dev/zero | tr '\\0' x")
    run = await run_codex(codex, (), timeout_s=10)
    assert run.returncode == 0
    assert 0 < len(run.stdout) < 2_000_000


def test_the_version_is_the_last_word_of_a_successful_run_only() -> None:
    assert parse_version(CodexRun(0, "codex-cli 0.163.0", "WARNING: something")) == "0.163.0"
    assert parse_version(CodexRun(1, "codex-cli 0.163.0", "")) is None
    assert parse_version(CodexRun(0, "", "codex-cli 0.163.0")) is None
    assert parse_version(CodexRun(None, "codex-cli", "")) is None


async def test_the_version_or_why_not(tmp_path: Path) -> None:
    assert await codex_version(_script(tmp_path, "echo codex-cli 1.2.3"), timeout_s=10) == ("1.2.3", None)
    broken = _script(tmp_path, "echo first >&2; echo 'boom: no' >&2; exit 4")
    assert await codex_version(broken, timeout_s=10) == (None, "`codex --version` exited 4: boom: no")
    hung = _script(tmp_path, "exec sleep 60")
    assert await codex_version(hung, timeout_s=_SHORT_S) == (
        None,
        "`codex --version` did not answer within 0.5s",
    )


async def test_the_cache_runs_version_once_per_executable(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    codex = _script(tmp_path, f'echo "$*" >> "{log}"; echo codex-cli 1.2.3')
    cache = VersionCache()
    results = [await cache.version(codex, timeout_s=10) for _ in range(3)]
    assert results == [("1.2.3", None)] * 3
    assert log.read_text().splitlines() == ["--version"]
