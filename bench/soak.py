"""A soak of the shared Codex service: many sessions, its memory bound, and recycling under load.

    .venv/bin/python bench/soak.py [--sessions N] [--concurrency N] [--max-rss-mb N]

One codex-mcp server over stdio (a real MCP client) with CODEX_MCP_APP_SERVER=shared and the given
memory bound runs N sessions in waves of `--concurrency`, with `--pause-s` between waves (a
grown service is recycled only when no turn runs: under load without a pause it waits), against the
real pinned Codex and the
scripted mock model. Each session does one of (in turn): a plain turn and a reply; a shell command
whose approval is accepted; a slow turn that is interrupted, then a reply; a turn, a fork and a reply
on the fork. Every session must end idle with the expected answer: a recycle that disturbed one
(a failed turn, a reply without its thread) fails the run.

Printed: sessions and operations done, failures, the service's RSS (sampled every 0.5 s: max and
last), the bound, how many recycles the keeper logged, and the wall time. Progress on stderr.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402

from codex_mcp.proc import proc_tree  # noqa: E402
from codex_mcp.service.layout import SERVICE_VARIABLE, ServiceLayout, service_key  # noqa: E402
from tests.e2e.client import McpServerUnderTest, running_server  # noqa: E402
from tests.harness.codex_env import CodexEnv, create_codex_env  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402
from tests.harness.scenarios import FINAL_AFTER_TOOL, PLAIN_TEXT  # noqa: E402

WAIT_MS: Final = 60_000
KINDS: Final = ("reply", "approval", "interrupt", "fork")


def log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def _codex_args(prompt: str, policy: str = "never", wait: bool = True) -> dict[str, Any]:
    args: dict[str, Any] = {"prompt": prompt, "approvalPolicy": policy, "sandbox": "workspace-write"}
    if wait:
        args["advanced"] = {"waitForResult": WAIT_MS}
    return args


def _expect(out: dict[str, Any], text: str, what: str) -> None:
    if out.get("status") != "idle" or out.get("result", {}).get("text") != text:
        raise RuntimeError(f"{what}: {out.get('status')} {out.get('result')!r}")


async def _reply(mcp: McpServerUnderTest, session_id: str) -> dict[str, Any]:
    return await mcp.call(
        "codex_reply", {"sessionId": session_id, "prompt": "scenario:plain again", "waitForResult": WAIT_MS}
    )


async def one_session(mcp: McpServerUnderTest, index: int) -> int:
    """One session's operations; how many calls it made."""
    kind = KINDS[index % len(KINDS)]
    if kind == "reply":
        out = await mcp.call("codex", _codex_args("scenario:plain hi"))
        _expect(out, PLAIN_TEXT, "turn")
        _expect(await _reply(mcp, out["sessionId"]), PLAIN_TEXT, "reply")
        return 2
    if kind == "approval":
        out = await mcp.call("codex", _codex_args("scenario:shell make it", policy="untrusted"))
        (action,) = out["actions"]
        await mcp.call(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": out["sessionId"],
                "requestId": action["requestId"],
                "decision": "accept",
            },
        )
        end, _ = await mcp.run_to_end(out["sessionId"])
        _expect(end, FINAL_AFTER_TOOL, "approved turn")
        return 3
    if kind == "interrupt":
        out = await mcp.call("codex", _codex_args("scenario:slow long", wait=False))
        while True:
            try:
                await mcp.call("codex_session", {"action": "interrupt", "sessionId": out["sessionId"]})
                break
            except AssertionError:  # the turn has not started yet: poll and retry
                await anyio.sleep(0.05)
        await mcp.run_to_end(out["sessionId"])
        _expect(await _reply(mcp, out["sessionId"]), PLAIN_TEXT, "reply after interrupt")
        return 3
    out = await mcp.call("codex", _codex_args("scenario:plain hi"))
    _expect(out, PLAIN_TEXT, "turn before fork")
    fork = await mcp.call("codex_session", {"action": "fork", "sessionId": out["sessionId"]})
    _expect(await _reply(mcp, fork["sessionId"]), PLAIN_TEXT, "reply on the fork")
    return 3


async def soak(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    with MockModelServer() as mock:
        codex_env: CodexEnv = create_codex_env(
            root / "run", mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}"
        )
        key = service_key(codex_env.binary, str(codex_env.codex_home), ())
        layout = ServiceLayout.under(root / "state", key)
        env = {
            "CODEX_MCP_APP_SERVER": "shared",
            "CODEX_MCP_APP_SERVER_MAX_RSS_MB": str(args.max_rss_mb),
            "CODEX_MCP_STATE_DIR": str(root / "state"),
            "CODEX_MCP_LOG_LEVEL": "WARNING",
            "CODEX_MCP_VALIDATE_OUTPUT": "0",
        }
        samples: list[float] = []
        done = {"sessions": 0, "calls": 0}
        failures: list[str] = []
        started = time.perf_counter()

        async def sample() -> None:
            while True:
                pid = layout.read_info().get("codexPid")
                rss = proc_tree.rss_bytes(pid) if isinstance(pid, int) else None
                if rss is not None:
                    samples.append(rss / 2**20)
                await anyio.sleep(0.5)

        try:
            async with running_server(codex_env, env) as mcp, anyio.create_task_group() as tg:
                tg.start_soon(sample)

                async def run(index: int) -> None:
                    try:
                        calls = await one_session(mcp, index)
                        done["calls"] += calls
                        done["sessions"] += 1
                    except Exception as exc:
                        failures.append(f"session {index}: {exc!r}"[:300])

                for wave in range(0, args.sessions, args.concurrency):
                    async with anyio.create_task_group() as sessions:
                        for index in range(wave, min(wave + args.concurrency, args.sessions)):
                            sessions.start_soon(run, index)
                    if wave % 100 < args.concurrency:
                        log(f"{done['sessions']} sessions, {len(failures)} failures, RSS {samples[-1:]}")
                    # A user's pause between bursts: the quiet moment a grown service is recycled in.
                    await anyio.sleep(args.pause_s)
                tg.cancel_scope.cancel()
        finally:
            log_text = layout.log.read_text(errors="replace") if layout.log.exists() else ""
            proc_tree.signal_all(proc_tree.tagged(f"{SERVICE_VARIABLE}={key}".encode()), signal.SIGTERM)
        return {
            "sessions": done["sessions"],
            "calls": done["calls"],
            "failures": failures,
            "rss": samples,
            "recycles": log_text.count("recycling codex pid"),
            "seconds": time.perf_counter() - started,
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-rss-mb", type=int, default=400)
    parser.add_argument("--pause-s", type=float, default=4.0, help="pause between waves of sessions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codex-mcp-soak-") as root:
        result = anyio.run(soak, Path(root), args)
    rss: list[float] = result["rss"]
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| sessions ended as expected | {result['sessions']} of {args.sessions} |")
    print(f"| tool calls | {result['calls']} |")
    print(f"| failures | {len(result['failures'])} |")
    peak, middle, last = max(rss, default=0), statistics.median(rss) if rss else 0, rss[-1] if rss else 0
    print(f"| service RSS, max / median / last | {peak:.0f} / {middle:.0f} / {last:.0f} MiB |")
    print(f"| memory bound | {args.max_rss_mb} MiB |")
    print(f"| recycles in the keeper's log | {result['recycles']} |")
    print(f"| wall time | {result['seconds']:.0f} s |")
    for failure in result["failures"][:10]:
        print(f"failure: {failure}", file=sys.stderr)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
