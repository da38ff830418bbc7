"""ChildProcess: line framing, the stderr tail, writes, and a shutdown that leaves nothing running."""

from __future__ import annotations

import sys
import textwrap

import anyio
import pytest

from codex_mcp.backends.process import ChildProcess, open_child
from codex_mcp.errors import ChildClosedError
from codex_mcp.proc import proc_tree

# Each test's bound; the hardest shutdown (SIGTERM ignored) takes about 4 s of grace periods.
TEST_TIMEOUT_S = 20.0


def _python(script: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script)]


async def _all_lines(child: ChildProcess) -> list[bytes]:
    return [line async for line in child.lines]


def _snapshot(*pids: int) -> proc_tree.ProcessSnapshot:
    snapshot: proc_tree.ProcessSnapshot = {}
    for pid in pids:
        started = proc_tree.start_time(pid)
        assert started is not None, f"pid {pid} is not running"
        snapshot[pid] = started
    return snapshot


@pytest.mark.anyio
async def test_stdout_lines_arrive_in_order_without_their_newline() -> None:
    script = """
        import sys
        for i in range(2000):
            sys.stdout.write(f"line {i}\\n")
        sys.stdout.write("last without newline")
    """
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script)) as child:
            lines = await _all_lines(child)

    assert lines == [f"line {i}".encode() for i in range(2000)] + [b"last without newline"]


@pytest.mark.anyio
async def test_non_json_lines_are_delivered_as_they_are() -> None:
    script = r"""
        import sys
        sys.stdout.buffer.write(b'{"id": 1, "result": {}}\nnot json {\n\xff\xfe binary\r\n\n')
    """
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script)) as child:
            lines = await _all_lines(child)

    assert lines == [b'{"id": 1, "result": {}}', b"not json {", b"\xff\xfe binary\r"]


@pytest.mark.anyio
async def test_a_line_over_the_limit_is_dropped_and_the_lines_around_it_still_arrive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = """
        import sys
        sys.stdout.write("before\\n" + "x" * 300_000 + "\\n" + "after\\n" + "y" * 5000)
    """
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script), max_line_bytes=1000) as child:
            lines = await _all_lines(child)

    assert lines == [b"before", b"after"]
    dropped = [r.getMessage() for r in caplog.records if "dropped a stdout line" in r.getMessage()]
    assert len(dropped) == 2
    assert "300000 bytes" in dropped[0]


@pytest.mark.anyio
async def test_the_stderr_tail_keeps_only_the_last_lines_each_cut_short() -> None:
    script = """
        import sys
        for i in range(1000):
            sys.stderr.write(f"err {i}\\n")
        sys.stderr.write("z" * 100_000 + "\\n")
    """
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script)) as child:
            assert await child.wait_exit() == 0
            tail = child.stderr_tail().split("\n")

    assert 1 < len(tail) <= 200
    assert tail[:-1] == [f"err {i}" for i in range(1001 - len(tail), 1000)]
    assert tail[-1].startswith("zzz")
    assert len(tail[-1]) < 5000


@pytest.mark.anyio
async def test_writing_after_the_child_exited_raises_child_closed_error() -> None:
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python("import sys; sys.stderr.write('bye\\n'); sys.exit(3)")) as child:
            assert await child.wait_exit() == 3
            with pytest.raises(ChildClosedError, match="bye"):
                await child.write(b"hello\n")


@pytest.mark.anyio
async def test_concurrent_writes_reach_the_child_as_whole_lines() -> None:
    script = """
        import sys
        for line in sys.stdin:
            sys.stdout.write(line)
            sys.stdout.flush()
    """
    sent = {f"{writer}-{i}-".encode() + b"p" * 20_000 for writer in range(2) for i in range(50)}
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script)) as child:

            async def write_all(writer: int) -> None:
                for line in sorted(s for s in sent if s.startswith(f"{writer}-".encode())):
                    await child.write(line + b"\n")

            received: list[bytes] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(write_all, 0)
                tg.start_soon(write_all, 1)
                async for line in child.lines:
                    received.append(line)
                    if len(received) == len(sent):
                        break

    assert set(received) == sent


@pytest.mark.anyio
async def test_a_child_that_exits_when_stdin_closes_is_not_signalled() -> None:
    script = """
        import sys
        sys.stdin.read()
        print("stdin closed", flush=True)
    """
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script)) as child:
            pass

    assert child.returncode == 0


@pytest.mark.anyio
async def test_shutdown_kills_a_child_that_ignores_sigterm_and_its_grandchild_in_another_session() -> None:
    grandchild = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    script = f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        proc = subprocess.Popen([sys.executable, "-c", {grandchild!r}], start_new_session=True,
                                stdin=subprocess.DEVNULL)
        print(proc.pid, flush=True)
        sys.stdin.read()
        time.sleep(600)
    """
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script)) as child:
            grandchild_pid = int(await child.lines.receive())
            family = _snapshot(child.pid, grandchild_pid)
            assert proc_tree.alive(family) == family

    assert child.returncode is not None
    assert proc_tree.alive(family) == {}


@pytest.mark.anyio
async def test_a_grandchild_orphaned_before_shutdown_is_still_killed() -> None:
    script = """
        import subprocess, sys
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(proc.pid, flush=True)
        sys.stdin.readline()
    """
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with open_child(_python(script)) as child:
            grandchild_pid = int(await child.lines.receive())
            orphan = _snapshot(grandchild_pid)
            await child.snapshot_tree()
            await child.write(b"exit now\n")
            assert await child.wait_exit() == 0
            assert proc_tree.alive(orphan) == orphan

    assert proc_tree.alive(orphan) == {}
