"""Sessions on the shared Codex service next to the same sessions on a stdio child, in one run.

    .venv/bin/python bench/service.py [--runs N] [--later N] [--turns N]

Each run makes a fresh CODEX_HOME and state directory and starts two codex-mcp servers over stdio
(real MCP clients, `tests/e2e/client.py`): one with `CODEX_MCP_APP_SERVER=child` (the app-server is
a child of the server) and one with `CODEX_MCP_APP_SERVER=shared` (the app-server is the service in
the state directory, reached over its unix socket). Every figure is taken from both, interleaved call
by call (the order alternates), so machine noise hits both alike:

- the first session of a fresh server (the child spawn; the service start by its keeper);
- later sessions: `codex` return time without waitForResult;
- whole turns: a new session with waitForResult, and a follow-up `codex_reply` with waitForResult.

The ratio column is shared / child of the medians. The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final, TypeVar

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/service.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402

from codex_mcp.proc import proc_tree  # noqa: E402
from codex_mcp.service.layout import SERVICE_VARIABLE, service_key  # noqa: E402
from tests.e2e.client import McpServerUnderTest, running_server  # noqa: E402
from tests.harness.codex_env import CodexEnv, create_codex_env  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402

PROMPT: Final = "scenario:plain hi"
WAIT_MS: Final = 30_000
CALL_TIMEOUT_S: Final = 60.0
RUN_TIMEOUT_S: Final = 600.0
SIDES: Final = ("child", "shared")
FIRST: Final = "codex, 1st session of a fresh server"
LATER: Final = "codex, later session (return, no wait)"
NEW: Final = "new session turn (codex waitForResult)"
REPLY: Final = "follow-up turn (codex_reply waitForResult)"
ROWS: Final = (FIRST, LATER, NEW, REPLY)

Samples = dict[tuple[str, str], list[float]]
T = TypeVar("T")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def _timed(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    start = time.perf_counter()
    with anyio.fail_after(CALL_TIMEOUT_S):
        result = await call()
    return result, (time.perf_counter() - start) * 1000


def _args(codex_env: CodexEnv, *, wait: bool) -> dict[str, Any]:
    args: dict[str, Any] = {
        "prompt": PROMPT,
        "approvalPolicy": "never",
        "sandbox": "workspace-write",
        "cwd": str(codex_env.workspace.resolve()),
    }
    if wait:
        args["advanced"] = {"waitForResult": WAIT_MS}
    return args


def _order(index: int) -> tuple[str, ...]:
    return SIDES if index % 2 == 0 else SIDES[::-1]


async def _idle(mcp: McpServerUnderTest, session_id: str) -> None:
    poll, _ = await mcp.run_to_end(session_id)
    if poll["status"] != "idle":
        raise RuntimeError(f"session {session_id} ended {poll['status']}: {poll.get('result')!r}")


async def one_run(
    codex_env: CodexEnv, state: Path, run: int, args: argparse.Namespace, samples: Samples
) -> None:
    common = {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0"}
    servers: dict[str, McpServerUnderTest] = {}
    async with AsyncExitStack() as stack:
        for side in SIDES:
            env = common | {"CODEX_MCP_APP_SERVER": side, "CODEX_MCP_STATE_DIR": str(state / side)}
            servers[side] = await stack.enter_async_context(running_server(codex_env, env))
        for side in _order(run):
            started, elapsed = await _timed(
                lambda side=side: servers[side].call("codex", _args(codex_env, wait=False))
            )
            samples[(FIRST, side)].append(elapsed)
            await _idle(servers[side], started["sessionId"])
        for index in range(args.later):
            for side in _order(index):
                started, elapsed = await _timed(
                    lambda side=side: servers[side].call("codex", _args(codex_env, wait=False))
                )
                samples[(LATER, side)].append(elapsed)
                await _idle(servers[side], started["sessionId"])
        for index in range(args.turns):
            for side in _order(index):
                mcp = servers[side]
                out, elapsed = await _timed(lambda mcp=mcp: mcp.call("codex", _args(codex_env, wait=True)))
                samples[(NEW, side)].append(elapsed)
                reply = {"sessionId": out["sessionId"], "prompt": PROMPT, "waitForResult": WAIT_MS}
                _, elapsed = await _timed(lambda mcp=mcp, reply=reply: mcp.call("codex_reply", reply))
                samples[(REPLY, side)].append(elapsed)


async def bench(root: Path, args: argparse.Namespace) -> Samples:
    samples: Samples = defaultdict(list)
    with MockModelServer() as mock:
        for run in range(args.runs):
            log(f"run {run + 1}/{args.runs}")
            codex_env = create_codex_env(
                root / f"run{run}", mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}"
            )
            try:
                with anyio.fail_after(RUN_TIMEOUT_S):
                    await one_run(codex_env, root / f"state{run}", run, args, samples)
            finally:
                # The service outlives its servers by design: this run's is stopped here.
                key = service_key(codex_env.binary, str(codex_env.codex_home), ())
                proc_tree.signal_all(proc_tree.tagged(f"{SERVICE_VARIABLE}={key}".encode()), signal.SIGTERM)
    return samples


def print_table(samples: Samples) -> None:
    print("| figure | child (median ms) | shared (median ms) | ratio shared/child | n |")
    print("| --- | --- | --- | --- | --- |")
    for row in ROWS:
        child, shared = samples.get((row, "child"), []), samples.get((row, "shared"), [])
        if not child or not shared:
            continue
        c, s = statistics.median(child), statistics.median(shared)
        print(f"| {row} | {c:.1f} | {s:.1f} | {s / c:.2f} | {len(child)} |")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="fresh server pairs (default 3)")
    parser.add_argument("--later", type=int, default=10, help="later sessions per side per run")
    parser.add_argument("--turns", type=int, default=8, help="new-session + follow-up pairs per side per run")
    args = parser.parse_args()
    if min(args.runs, args.later, args.turns) < 1:
        parser.error("--runs, --later and --turns must be at least 1")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="codex-mcp-bench-service-") as root:
        samples = anyio.run(bench, Path(root), args)
    log(f"done in {time.perf_counter() - started:.0f}s")
    print_table(samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
