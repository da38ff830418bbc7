"""Session latencies through codex-mcp, each next to a baseline measured in the same run.

    .venv/bin/python bench/sessions.py [--runs N] [--polls N] [--later N] [--turns N] [--profile DIR]

Everything runs against the real pinned Codex (`codex app-server`) and the scripted mock model, in a
throwaway CODEX_HOME per run. Each run starts one fresh codex-mcp server (a real MCP client over
stdio, `tests/e2e/client.py`) and one direct app-server connection (`tests/harness/app_server_client.py`)
on the same CODEX_HOME, then measures:

1. `codex_check` poll round trips on an idle session, interleaved with MCP `ping` and `tools/list`
   on the same connection (the transport cost our handler sits on).
2. `codex` return time without waitForResult: the first session of the fresh server (spawns the
   app-server child) and the later ones (shared child), interleaved with the direct baseline
   `thread/start` + `turn/start` (until Codex accepts the turn).
3. Whole turns through the server against the same turns driven directly, interleaved pair by pair
   (the order alternates), so machine noise hits both alike:
   - new session: `codex` + waitForResult from call to result, against direct
     `thread/start` + `turn/start` -> `turn/completed` (thread/start is in both);
   - follow-up: `codex_reply` + waitForResult on that session, against direct `turn/start` ->
     `turn/completed` on the direct thread (thread/start is in neither).
   The overhead rows are the median etc. of the per-pair differences (server - direct).

Between timed calls every session is run to idle (untimed), so each figure is taken on a quiet
child. The table goes to stdout, progress to stderr. `--profile DIR` runs the server under
cProfile (through a `sitecustomize` on its PYTHONPATH), writes `DIR/server-<pid>.prof` and prints
the top functions to stderr; the timings of such a run are inflated by the profiler.
"""

from __future__ import annotations

import argparse
import os
import pstats
import statistics
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/sessions.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402
import mcp_types as types  # noqa: E402

from tests.e2e.client import McpServerUnderTest, running_server  # noqa: E402
from tests.harness.app_server_client import AppServerClient  # noqa: E402
from tests.harness.codex_env import CodexEnv, create_codex_env  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402
from tests.harness.procs import ProcessSnapshot, descendants, kill_survivors  # noqa: E402

PROMPT: Final = "scenario:plain hi"
CALL_TIMEOUT_S: Final = 60.0
"""Bound on one timed call (a mock turn takes well under a second)."""
RUN_TIMEOUT_S: Final = 600.0
"""Bound on one whole run."""
WAIT_MS: Final = 30_000
PROFILE_VAR: Final = "CODEX_MCP_BENCH_PROFILE"

# Row labels, in table order.
PING: Final = "MCP ping (transport baseline)"
LIST: Final = "MCP tools/list"
POLL_RAW: Final = "codex_check poll, raw tools/call"
POLL_SDK: Final = "codex_check poll, SDK call_tool (+client validation)"
FIRST: Final = "codex, 1st session of a fresh server (spawn)"
LATER: Final = "codex, later sessions (shared child)"
LATER_DIRECT: Final = "direct thread/start + turn/start (baseline)"
LATER_OVER: Final = "  overhead, later session (server - direct)"
NEW_SERVER: Final = "new session: codex waitForResult"
NEW_DIRECT: Final = "new session: direct thread/start+turn -> completed"
NEW_OVER: Final = "  overhead per new-session turn (server - direct)"
REPLY_SERVER: Final = "follow-up: codex_reply waitForResult"
REPLY_DIRECT: Final = "follow-up: direct turn/start -> completed"
REPLY_OVER: Final = "  overhead per follow-up turn (server - direct)"

TABLES: Final = (
    ("1. poll on an idle session (round trip over stdio)", (PING, LIST, POLL_RAW, POLL_SDK)),
    ("2. codex return, no waitForResult", (FIRST, LATER, LATER_DIRECT, LATER_OVER)),
    (
        "3. whole turn, server vs direct app-server (interleaved pairs)",
        (NEW_SERVER, NEW_DIRECT, NEW_OVER, REPLY_SERVER, REPLY_DIRECT, REPLY_OVER),
    ),
)
# (label, limit in ms on the median, how the target reads)
TARGETS: Final = {
    POLL_RAW: (2.0, "median <= 2"),
    POLL_SDK: (2.0, "median <= 2"),
    LATER: (150.0, "median <= 150"),
    NEW_OVER: (15.0, "median <= 15"),
    REPLY_OVER: (15.0, "median <= 15"),
}

_SITECUSTOMIZE: Final = textwrap.dedent(
    f"""\
    import atexit, cProfile, os

    _out = os.environ.get("{PROFILE_VAR}")
    if _out:
        _profiler = cProfile.Profile()
        _profiler.enable()

        def _dump():
            _profiler.disable()
            _profiler.dump_stats(os.path.join(_out, f"server-{{os.getpid()}}.prof"))

        atexit.register(_dump)
    """
)

Samples = dict[str, list[float]]
T = TypeVar("T")


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def _timed(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    start = time.perf_counter()
    with anyio.fail_after(CALL_TIMEOUT_S):
        result = await call()
    return result, _ms(start)


def _start_args(codex_env: CodexEnv, *, wait: bool) -> dict[str, Any]:
    args: dict[str, Any] = {
        "prompt": PROMPT,
        "approvalPolicy": "never",
        "sandbox": "workspace-write",
        "cwd": str(codex_env.workspace.resolve()),
    }
    if wait:
        args["advanced"] = {"waitForResult": WAIT_MS}
    return args


def _thread_params(codex_env: CodexEnv) -> dict[str, object]:
    """What our server sends on `thread/start` for `_start_args`."""
    return {
        "cwd": str(codex_env.workspace.resolve()),
        "approvalPolicy": "never",
        "sandbox": "workspace-write",
    }


# --- the direct app-server side (synchronous; run in a worker thread) -----------------------------


@dataclass
class DirectTurn:
    """One turn driven directly: its thread and how long the parts took (ms)."""

    thread_id: str
    accepted_ms: float
    """From sending the first request to the `turn/start` response."""
    completed_ms: float
    """From sending the first request to receiving `turn/completed`."""


def _direct_turn(client: AppServerClient, codex_env: CodexEnv, thread_id: str | None) -> DirectTurn:
    """A turn on `thread_id`, or on a new thread (then thread/start is inside the timing)."""
    start = time.perf_counter()
    if thread_id is None:
        thread_id = client.start_thread(_thread_params(codex_env), timeout=CALL_TIMEOUT_S)
    turn_id = client.start_turn(thread_id, PROMPT, timeout=CALL_TIMEOUT_S)
    accepted = _ms(start)
    turn = client.wait_turn_completed(turn_id, timeout=CALL_TIMEOUT_S)
    completed = _ms(start)
    if turn.get("status") != "completed":
        raise RuntimeError(f"direct turn ended {turn.get('status')!r}: {turn.get('error')!r}")
    return DirectTurn(thread_id, accepted, completed)


async def direct_turn(client: AppServerClient, codex_env: CodexEnv, thread_id: str | None) -> DirectTurn:
    """`_direct_turn` off the event loop (its waits have their own timeouts)."""
    return await anyio.to_thread.run_sync(lambda: _direct_turn(client, codex_env, thread_id))


# --- the server side ------------------------------------------------------------------------------


async def run_to_idle(mcp: McpServerUnderTest, session_id: str) -> None:
    """Poll until the session ends; it must end idle."""
    poll, _ = await mcp.run_to_end(session_id)
    if poll["status"] != "idle":
        raise RuntimeError(f"session {session_id} ended {poll['status']}: {poll.get('result')!r}")


def _check_turn(out: dict[str, Any]) -> dict[str, Any]:
    if out["status"] != "idle" or out["execution"].get("reason") != "completed":
        raise RuntimeError(f"turn through the server did not complete: {out['execution']!r}")
    return out


async def measure_polls(mcp: McpServerUnderTest, session_id: str, polls: int, samples: Samples) -> None:
    """Section 1: ping, tools/list and two kinds of poll, interleaved, on an idle session."""
    arguments = {"action": "poll", "sessionId": session_id}
    raw_request = types.CallToolRequest(
        params=types.CallToolRequestParams(name="codex_check", arguments=arguments)
    )
    session = mcp.session
    await mcp.call("codex_check", arguments)  # warm: the client compiles the output validator once

    async def raw_poll() -> types.CallToolResult:
        return await session.send_request(raw_request, types.CallToolResult)

    async def sdk_poll() -> types.CallToolResult:
        return await session.call_tool("codex_check", arguments)

    async def ping() -> object:
        return await session.send_ping()

    async def list_tools() -> object:
        return await session.list_tools()

    cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (PING, ping),
        (LIST, list_tools),
        (POLL_RAW, raw_poll),
        (POLL_SDK, sdk_poll),
    ]
    for index in range(polls):
        # Rotate the order so no case always follows the same one.
        shift = index % len(cases)
        for label, call in cases[shift:] + cases[:shift]:
            result, elapsed = await _timed(call)
            if isinstance(result, types.CallToolResult) and result.is_error:
                raise RuntimeError(f"poll failed: {result.content!r}")
            samples[label].append(elapsed)


async def measure_starts(
    mcp: McpServerUnderTest, client: AppServerClient, codex_env: CodexEnv, later: int, samples: Samples
) -> str:
    """Section 2: the first session (spawn), then `later` more against the direct baseline."""
    started, elapsed = await _timed(lambda: mcp.call("codex", _start_args(codex_env, wait=False)))
    samples[FIRST].append(elapsed)
    await run_to_idle(mcp, started["sessionId"])
    session_id = started["sessionId"]
    for index in range(later):
        server_ms = direct_ms = 0.0
        for side in ("server", "direct") if index % 2 == 0 else ("direct", "server"):
            if side == "server":
                started, server_ms = await _timed(
                    lambda: mcp.call("codex", _start_args(codex_env, wait=False))
                )
                session_id = started["sessionId"]
                await run_to_idle(mcp, session_id)
            else:
                direct_ms = (await direct_turn(client, codex_env, None)).accepted_ms
        samples[LATER].append(server_ms)
        samples[LATER_DIRECT].append(direct_ms)
        samples[LATER_OVER].append(server_ms - direct_ms)
    return session_id


async def measure_turns(
    mcp: McpServerUnderTest, client: AppServerClient, codex_env: CodexEnv, turns: int, samples: Samples
) -> None:
    """Section 3: whole turns through the server and direct, interleaved pair by pair."""
    for index in range(turns):
        order = ("server", "direct") if index % 2 == 0 else ("direct", "server")
        session_id = thread_id = ""
        new_server = new_direct = reply_server = reply_direct = 0.0
        for side in order:
            if side == "server":
                out, new_server = await _timed(lambda: mcp.call("codex", _start_args(codex_env, wait=True)))
                session_id = _check_turn(out)["sessionId"]
            else:
                turn = await direct_turn(client, codex_env, None)
                thread_id, new_direct = turn.thread_id, turn.completed_ms
        reply = {"sessionId": session_id, "prompt": PROMPT, "waitForResult": WAIT_MS}
        for side in order:
            if side == "server":
                out, reply_server = await _timed(partial(mcp.call, "codex_reply", reply))
                _check_turn(out)
            else:
                reply_direct = (await direct_turn(client, codex_env, thread_id)).completed_ms
        samples[NEW_SERVER].append(new_server)
        samples[NEW_DIRECT].append(new_direct)
        samples[NEW_OVER].append(new_server - new_direct)
        samples[REPLY_SERVER].append(reply_server)
        samples[REPLY_DIRECT].append(reply_direct)
        samples[REPLY_OVER].append(reply_server - reply_direct)


async def one_run(codex_env: CodexEnv, args: argparse.Namespace, samples: Samples) -> None:
    """A fresh server and a fresh direct connection; every section once."""
    # As a user runs it: the test suite's output-schema self-check stays off.
    extra_env = {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0"}
    if args.profile is not None:
        extra_env |= {"PYTHONPATH": str(args.profile / "site"), PROFILE_VAR: str(args.profile)}
    family: ProcessSnapshot = {}
    client = AppServerClient(codex_env.app_server_argv(), env=codex_env.env(), cwd=codex_env.workspace)
    try:
        await anyio.to_thread.run_sync(client.start)
        await anyio.to_thread.run_sync(client.initialize)
        await direct_turn(client, codex_env, None)  # warm the direct child
        async with running_server(codex_env, extra_env) as mcp:
            try:
                await mcp.session.list_tools()  # what a client does first; primes output validation
                log("  session starts")
                session_id = await measure_starts(mcp, client, codex_env, args.later, samples)
                log("  polls")
                await measure_polls(mcp, session_id, args.polls, samples)
                log("  turns")
                await measure_turns(mcp, client, codex_env, args.turns, samples)
            finally:
                family = descendants(os.getpid())  # the server and its Codex child, swept below
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(client.close)
        kill_survivors(family)


async def bench(root: Path, args: argparse.Namespace) -> Samples:
    """Every run against one mock model, each in its own CODEX_HOME under `root`."""
    samples: Samples = defaultdict(list)
    with MockModelServer() as mock:
        for run in range(args.runs):
            log(f"run {run + 1}/{args.runs}")
            codex_env = create_codex_env(
                root / f"run{run}", mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}"
            )
            with anyio.fail_after(RUN_TIMEOUT_S):
                await one_run(codex_env, args, samples)
        refused = [r for r in mock.requests if r.method == "CONNECT"]
        if refused:
            log(f"warning: Codex tried to reach the network {len(refused)} times (refused)")
    return samples


# --- output ---------------------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def print_tables(samples: Samples) -> None:
    """One table per section: n, min, median, p95 and the target verdict."""
    header = (
        f"{'':<52} {'n':>5} {'min ms':>8} {'median ms':>10} {'p95 ms':>8}  {'target ms':<14} {'':<4}".rstrip()
    )
    for title, labels in TABLES:
        print(title)
        print(header)
        for label in labels:
            values = samples.get(label, [])
            if not values:
                print(f"{label:<52} {0:>5} {'-':>8} {'-':>10} {'-':>8}")
                continue
            median = statistics.median(values)
            target, verdict = "", ""
            if label in TARGETS:
                limit, target = TARGETS[label]
                verdict = "PASS" if median <= limit else "MISS"
            print(
                f"{label:<52} {len(values):>5} {min(values):>8.2f} {median:>10.2f} {_p95(values):>8.2f}"
                f"  {target:<14} {verdict:<4}".rstrip()
            )
        print()


def print_profile(directory: Path, limit: int = 30) -> None:
    """The server's hottest functions (own time, then cumulative) on stderr."""
    dumps = sorted(directory.glob("server-*.prof"))
    if not dumps:
        log(f"no profile written to {directory} (did the server exit cleanly?)")
        return
    stats = pstats.Stats(*(str(path) for path in dumps), stream=sys.stderr)
    stats.strip_dirs()
    log(f"server profile over {len(dumps)} server(s): top {limit} by own time")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(limit)
    log(f"top {limit} by cumulative time")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(limit)


def main() -> int:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="fresh servers (default 3)")
    parser.add_argument("--polls", type=int, default=200, help="polls (and pings, lists) per run")
    parser.add_argument("--later", type=int, default=20, help="later sessions per run")
    parser.add_argument("--turns", type=int, default=10, help="server/direct turn pairs per run")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the server into DIR")
    args = parser.parse_args()
    if min(args.runs, args.polls, args.later, args.turns) < 1:
        parser.error("--runs, --polls, --later and --turns must be at least 1")
    if args.profile is not None:
        args.profile = args.profile.resolve()
        (args.profile / "site").mkdir(parents=True, exist_ok=True)
        (args.profile / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        for old in args.profile.glob("server-*.prof"):
            old.unlink()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="codex-mcp-bench-") as root:
        samples = anyio.run(bench, Path(root), args)
    log(f"done in {time.perf_counter() - started:.0f}s")
    if args.profile is not None:
        print("(profiled run: the server ran under cProfile, so its figures are inflated)\n")
    print_tables(samples)
    if args.profile is not None:
        print_profile(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
