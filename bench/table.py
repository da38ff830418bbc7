"""The whole performance table in one run, each figure next to a baseline measured alongside it.

    .venv/bin/python bench/table.py [--quick]

Rows (every ratio is codex-mcp / baseline, from the same run):

- start -> initialize: our server (`python -m codex_mcp`) against a bare MCP SDK server
  (`bench/bare_mcp_server.py`) started the same way, interleaved.
- poll latency, session start, turn overhead: `bench/sessions.py`'s measurements against `MCP ping`
  and against the same calls made directly to `codex app-server`.
- ingest rate: `bench/ingest.py`, persistence on against off; memory after 1,000,000 deltas.
- 20 sessions: wall time of 20 concurrent sessions (each streams and asks one approval; the suite's
  load scenario) against one such session alone, and the server's resident memory per session.

Progress goes to stderr, the table to stdout. `--quick` shrinks every count (a smoke run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
for entry in (REPO, REPO / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import anyio  # noqa: E402
import ingest  # noqa: E402
import sessions  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from tests.e2e.client import running_server, server_env  # noqa: E402
from tests.e2e.test_load import echo_with_approval, run_one_session  # noqa: E402
from tests.harness.codex_env import CodexEnv, create_codex_env  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402
from tests.harness.procs import descendants  # noqa: E402

Row = tuple[str, str, str, str]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _initialize_ms(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(60):
            await session.initialize()
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed


async def measure_startup(codex_env: CodexEnv, count: int) -> Row:
    ours = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codex_mcp"],
        env=server_env(codex_env, {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0"}),
        cwd=str(codex_env.workspace),
    )
    bare = StdioServerParameters(
        command=sys.executable,
        args=[str(REPO / "bench" / "bare_mcp_server.py")],
        cwd=str(codex_env.workspace),
    )
    mine: list[float] = []
    base: list[float] = []
    for index in range(count):
        for which in ("ours", "bare") if index % 2 == 0 else ("bare", "ours"):
            (mine if which == "ours" else base).append(
                await _initialize_ms(ours if which == "ours" else bare)
            )
    return _row("start -> initialize result", mine, base, "bare MCP SDK server", "ms")


def _row(label: str, ours: list[float], base: list[float], baseline: str, unit: str) -> Row:
    mine, theirs = statistics.median(ours), statistics.median(base)
    fmt = "{:,.0f}" if unit == "/s" else "{:,.2f}"
    return (
        label,
        f"{fmt.format(mine)} {unit}",
        f"{fmt.format(theirs)} {unit} ({baseline})",
        f"{mine / theirs:.2f}" if theirs else "-",
    )


def session_rows(samples: sessions.Samples) -> list[Row]:
    pairs = (
        ("codex_check poll (idle session)", sessions.POLL_RAW, sessions.PING, "MCP ping, same connection"),
        ("codex start, later session", sessions.LATER, sessions.LATER_DIRECT, "direct thread+turn start"),
        ("new-session turn to result", sessions.NEW_SERVER, sessions.NEW_DIRECT, "direct app-server turn"),
        ("follow-up turn to result", sessions.REPLY_SERVER, sessions.REPLY_DIRECT, "direct app-server turn"),
    )
    rows = [
        _row(label, samples[mine], samples[base], baseline, "ms") for label, mine, base, baseline in pairs
    ]
    first = statistics.median(samples[sessions.FIRST])
    rows.insert(1, ("codex start, first session (spawns Codex)", f"{first:.2f} ms", "-", "-"))
    return rows


def _server_pid() -> int:
    for pid in descendants(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"codex_mcp" in argv:
            return pid
    raise RuntimeError("no codex-mcp server among our children")


async def measure_load(mock: MockModelServer, root: Path, sessions_count: int) -> list[Row]:
    mock.custom_scenarios["load"] = echo_with_approval
    walls: dict[int, float] = {}
    memory: tuple[float, float] = (0.0, 0.0)
    for count in (1, sessions_count):
        codex_env = create_codex_env(
            root / f"load{count}", mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}"
        )
        results: dict[int, dict[str, Any]] = {}
        async with running_server(codex_env, {"CODEX_MCP_VALIDATE_OUTPUT": "0"}) as mcp:
            # One session first so the Codex child is up: wall times compare turns, not a spawn.
            await run_one_session(mcp, 10_000, {})
            server = _server_pid()
            before = ingest.rss_mb(server)
            started = time.perf_counter()
            with anyio.fail_after(600):
                async with anyio.create_task_group() as group:
                    for index in range(count):
                        group.start_soon(run_one_session, mcp, index, results)
            walls[count] = time.perf_counter() - started
            if count == sessions_count:
                memory = (before, ingest.rss_mb(server))
        bad = [i for i, r in results.items() if r["final"]["status"] != "idle"]
        if len(results) != count or bad:
            raise RuntimeError(f"load run of {count}: {len(results)} finished, not idle: {bad}")
        log(f"  {count} session(s): {walls[count]:.2f} s")
    one, many = walls[1], walls[sessions_count]
    before, after = memory
    return [
        (
            f"{sessions_count} concurrent sessions, wall time",
            f"{many:.2f} s",
            f"{one:.2f} s (one session alone)",
            f"{many / one:.2f}",
        ),
        (
            "server memory per finished session",
            f"{(after - before) * 1024 / sessions_count:.0f} KB",
            f"{before:.1f} MB server RSS before",
            "-",
        ),
    ]


async def measure_ingest(root: Path, deltas: int, runs: int, memory_deltas: int) -> list[Row]:
    codex = ingest.stand_in(root)
    rates = await ingest.measure_rates(codex, root, deltas, runs)
    rows = [
        _row(
            f"ingest, {label}, persistence on",
            rates[(shape, True)],
            rates[(shape, False)],
            "persistence off",
            "/s",
        )
        for shape, label in (("coalesce", "one streamed message"), ("distinct", "one event per delta"))
    ]
    memory = await ingest.measure_memory(codex, root, memory_deltas)
    rows += [(f"memory, {point}", figure, "-", "-") for point, figure in memory]
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of every row")
    args = parser.parse_args()
    quick = args.quick
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="codex-mcp-table-") as temp:
        root = Path(temp)
        with MockModelServer() as mock:
            log("start -> initialize")
            startup_env = create_codex_env(
                root / "startup", mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}"
            )
            rows.append(await measure_startup(startup_env, 3 if quick else 10))
            log("sessions (bench/sessions.py)")
            options = argparse.Namespace(
                runs=1 if quick else 2,
                polls=30 if quick else 200,
                later=3 if quick else 10,
                turns=2 if quick else 6,
                profile=None,
            )
            rows += session_rows(await sessions.bench(root / "sessions", options))
            log("20-session load")
            rows += await measure_load(mock, root, 5 if quick else 20)
        log("ingest (bench/ingest.py)")
        rows += await measure_ingest(
            root, 20_000 if quick else 200_000, 1 if quick else 3, 100_000 if quick else 1_000_000
        )
    print("| figure | codex-mcp | baseline (same run) | ratio |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    anyio.run(main)
