"""Start-up as clients see it: spawn -> the first answers, idle and under load, beside a bare SDK server.

    .venv/bin/python bench/startup.py [--runs N] [--load 4] [--baseline-src DIR]

For each server and protocol era the client's first requests are written at spawn, as clients do
(legacy: initialize, notifications/initialized, tools/list, resources/list; 2026-07-28:
server/discover, tools/list, resources/list), and the time to each answer is taken. Rows:

- codex-mcp against a bare MCP SDK server (`bench/bare_mcp_server.py`), interleaved, idle and with
  `--load` busy processes running (Codex gives an optional server ~1 s; Claude Code falls back to
  the old protocol after ~1.2-3 s);
- the first `codex` call of a fresh server (spawn, handshake, session, Codex child, a whole turn),
  against the same with `--baseline-src` (e.g. a checkout of an older commit: `git worktree add
  /tmp/old <commit>`, then `--baseline-src /tmp/old/src`) when given.

The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from codegen.early_probe import legacy_requests, modern_requests  # noqa: E402
from tests.e2e.client import server_env  # noqa: E402
from tests.harness.codex_env import CodexEnv, create_codex_env  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402

_ANSWER_TIMEOUT_S: Final = 60.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _answers_ms(
    argv: list[str], env: dict[str, str], cwd: Path, requests: list[dict[str, Any]]
) -> list[float]:
    """Milliseconds from spawn to each answer, for `requests` written at once."""
    wanted = [request["id"] for request in requests if "id" in request]
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    process.stdin.flush()
    times: dict[object, float] = {}
    deadline = started + _ANSWER_TIMEOUT_S
    while len(times) < len(wanted) and time.perf_counter() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        message = json.loads(line)
        if message.get("id") in wanted:
            times[message["id"]] = (time.perf_counter() - started) * 1000
    process.stdin.close()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return [times.get(request_id, float("nan")) for request_id in wanted]


@contextmanager
def _load(count: int) -> Generator[None]:
    """`count` processes spinning on the CPU while the block runs."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


def _handshake_rows(codex_env: CodexEnv, runs: int, load: int) -> list[tuple[str, str, str, str]]:
    ours = [sys.executable, "-m", "codex_mcp"]
    bare = [sys.executable, str(REPO / "bench" / "bare_mcp_server.py")]
    env = server_env(codex_env, {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0"})
    rows: list[tuple[str, str, str, str]] = []
    eras = {"legacy": legacy_requests("2025-06-18"), "2026-07-28": modern_requests("2026-07-28")}
    for loaded in (False, True):
        for era, requests in eras.items():
            names = [r["method"] for r in requests if "id" in r]
            mine: list[list[float]] = []
            base: list[list[float]] = []
            with _load(load) if loaded else nullcontext():
                for index in range(runs):
                    order = (("ours", ours), ("bare", bare))
                    for which, argv in order if index % 2 == 0 else order[::-1]:
                        times = _answers_ms(argv, env, codex_env.workspace, requests)
                        (mine if which == "ours" else base).append(times)
            condition = f"load {load}" if loaded else "idle"
            for position, name in enumerate(names):
                ours_ms = [t[position] for t in mine]
                bare_ms = [t[position] for t in base]
                ratio = statistics.median(ours_ms) / statistics.median(bare_ms)
                rows.append(
                    (
                        f"spawn -> {name} answered ({era}, {condition})",
                        _fmt(ours_ms),
                        _fmt(bare_ms),
                        f"{ratio:.2f}",
                    )
                )
            log(f"handshake {era} {condition}: done")
    return rows


def _first_call_ms(codex_env: CodexEnv, src: Path | None) -> float:
    env = server_env(codex_env, {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0"})
    env["CODEX_MCP_STATE_DIR"] = tempfile.mkdtemp(prefix="state-", dir=codex_env.root)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    initialize = legacy_requests("2025-06-18")[:2]
    call = {
        "jsonrpc": "2.0",
        "id": "call",
        "method": "tools/call",
        "params": {
            "name": "codex",
            "arguments": {
                "prompt": "scenario:plain hi",
                "approvalPolicy": "never",
                "sandbox": "read-only",
                "advanced": {"waitForResult": 30000},
            },
        },
    }
    return _answers_ms([sys.executable, "-m", "codex_mcp"], env, codex_env.workspace, [*initialize, call])[-1]


def _first_call_rows(
    codex_env: CodexEnv, runs: int, baseline: Path | None
) -> list[tuple[str, str, str, str]]:
    mine: list[float] = []
    base: list[float] = []
    for index in range(runs):
        order: list[Path | None] = [None, baseline] if index % 2 == 0 else [baseline, None]
        for src in order:
            if src is None:
                mine.append(_first_call_ms(codex_env, None))
            else:
                base.append(_first_call_ms(codex_env, src))
    log("first codex call: done")
    if not base:
        return [("spawn -> first codex call answered (a whole turn)", _fmt(mine), "-", "-")]
    ratio = statistics.median(mine) / statistics.median(base)
    return [("spawn -> first codex call answered (a whole turn)", _fmt(mine), _fmt(base), f"{ratio:.2f}")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--load", type=int, default=4)
    parser.add_argument("--baseline-src", type=Path, default=None)
    args = parser.parse_args()
    with MockModelServer() as mock, tempfile.TemporaryDirectory() as root:
        codex_env = create_codex_env(Path(root), mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}")
        rows = _handshake_rows(codex_env, args.runs, args.load)
        rows += _first_call_rows(codex_env, max(3, args.runs // 2), args.baseline_src)
    baseline = "baseline" if args.baseline_src is None else f"baseline ({args.baseline_src})"
    print(f"| figure | codex-mcp | bare SDK server / {baseline} | ratio |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{os.cpu_count()} CPUs; load = {args.load} spinning processes; {args.runs} runs per figure.")


if __name__ == "__main__":
    main()
