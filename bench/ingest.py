"""Event ingest with persistence on, next to the same stream with it off, and memory after 1M deltas.

    .venv/bin/python bench/ingest.py [--deltas N] [--runs N] [--memory-deltas N]

A stand-in app-server (`bench/streaming_app_server.py`) answers the handshake and then writes
deltas as fast as the pipe takes them; the real `SessionManager` reads, validates (generated
models), ingests and — with a state directory — journals every one. Rates are deltas per second
from `turn/start` to the turn's result, for two shapes: one long message (deltas coalesce into a
few events, each delta one growth record on disk) and one item per delta (every delta its own
event, the buffer evicting past 1000). Runs alternate persistence on/off so noise hits both.
The memory row streams `--memory-deltas` (default 1,000,000) into one session with persistence
on and reports this process's resident set before, midway and after, with the event count kept
in memory and the size of the log on disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402

from codex_mcp.sessions.manager import SessionManager, TurnRequest  # noqa: E402
from codex_mcp.sessions.session import Session, ThreadSettings  # noqa: E402
from codex_mcp.settings import CodexExecutable, Settings  # noqa: E402
from codex_mcp.state.store import StateStore  # noqa: E402

CHILD: Final = REPO / "bench" / "streaming_app_server.py"
PAGE: Final = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pid: int | str = "self") -> float:
    """The resident set of `pid` (this process by default) in MiB."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE / 2**20


def stand_in(directory: Path) -> CodexExecutable:
    wrapper = directory / "codex"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{CHILD}" "$@"\n')
    wrapper.chmod(0o755)
    return CodexExecutable(wrapper, "bench")


async def one_turn(
    codex: CodexExecutable, store: StateStore | None, deltas: int, shape: str
) -> tuple[float, Session]:
    os.environ["BENCH_DELTAS"] = str(deltas)
    os.environ["BENCH_SHAPE"] = shape
    settings = Settings.from_env({})
    async with SessionManager.open(codex, settings, "app-server", store) as manager:
        thread = ThreadSettings(approval_policy="never", sandbox="read-only", cwd=str(REPO))
        # The child is spawned by the first start; time only the stream, not the spawn.
        await manager.warm_up()
        started = time.perf_counter()
        session = await manager.start(thread, TurnRequest(prompt="go"), [])
        with anyio.fail_after(600):
            await session.turn_finished.wait()
        elapsed = time.perf_counter() - started
    assert session.status == "idle", session.result
    return elapsed, session


async def measure_rates(
    codex: CodexExecutable, root: Path, deltas: int, runs: int
) -> dict[tuple[str, bool], list[float]]:
    rates: dict[tuple[str, bool], list[float]] = {}
    for run in range(runs):
        for shape in ("coalesce", "distinct"):
            order = (True, False) if run % 2 == 0 else (False, True)
            for persist in order:
                store = StateStore.open(root / f"state-{run}-{shape}-{persist}") if persist else None
                try:
                    elapsed, _ = await one_turn(codex, store, deltas, shape)
                finally:
                    if store is not None:
                        store.close()
                rates.setdefault((shape, persist), []).append(deltas / elapsed)
                print(f"run {run} {shape} persist={persist}: {deltas / elapsed:,.0f}/s", file=sys.stderr)
    return rates


async def measure_memory(codex: CodexExecutable, root: Path, deltas: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    store = StateStore.open(root / "state-memory")
    try:
        rows.append(("RSS before", f"{rss_mb():.1f} MB"))
        for count in (deltas // 10, deltas):
            elapsed, session = await one_turn(codex, store, count, "distinct")
            log = store.root / "sessions" / session.session_id / "events.jsonl"
            rows.append(
                (
                    f"after {count:,} deltas",
                    f"RSS {rss_mb():.1f} MB, {len(session.buffer)} events kept, "
                    f"log {log.stat().st_size / 2**20:.2f} MB, {count / elapsed:,.0f}/s",
                )
            )
    finally:
        store.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deltas", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-deltas", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codex-mcp-bench-") as temp:
        root = Path(temp)
        codex = stand_in(root)
        rates = await measure_rates(codex, root, args.deltas, args.runs)
        memory = await measure_memory(codex, root, args.memory_deltas)
    print(f"\nevent ingest, {args.deltas:,} deltas per run, {args.runs} runs (median, min-max)\n")
    print("| stream | persistence on | persistence off | on / off |")
    print("| --- | --- | --- | --- |")
    for shape, label in (("coalesce", "one message (coalescing)"), ("distinct", "one event per delta")):
        on, off = rates[(shape, True)], rates[(shape, False)]
        print(
            f"| {label} | {statistics.median(on):,.0f}/s ({min(on):,.0f}-{max(on):,.0f}) "
            f"| {statistics.median(off):,.0f}/s ({min(off):,.0f}-{max(off):,.0f}) "
            f"| {statistics.median(on) / statistics.median(off):.2f} |"
        )
    print("\nmemory, one session, persistence on\n\n| point | figure |\n| --- | --- |")
    for point, figure in memory:
        print(f"| {point} | {figure} |")


if __name__ == "__main__":
    anyio.run(main)
