"""How fast the server is gone after a client's first stop signal, idle and with a turn running.

    .venv/bin/python bench/stop.py [--runs N]

Clients stop a server with a signal and follow it quickly (Claude Code: SIGINT, SIGTERM after
100 ms, SIGKILL after 500 ms; Codex: SIGTERM, SIGKILL after 120-260 ms). Issue 11's bounds: exit 0
within 100 ms when idle, within 300 ms with turns running. Each run starts a server, makes it
busy or not, sends one signal and times its exit; the exit code must be 0. The table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.client import server_env  # noqa: E402
from tests.harness.codex_env import CodexEnv, create_codex_env  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402


def _request(process: subprocess.Popen[bytes], message: dict[str, Any]) -> dict[str, Any]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()
    while True:
        answer = json.loads(process.stdout.readline())
        if answer.get("id") == message.get("id"):
            return answer


def _one(codex_env: CodexEnv, signum: signal.Signals, busy: bool) -> tuple[float, int, float]:
    """(ms from the signal to the exit, the exit code, ms the server says its stop took)."""
    env = server_env(codex_env, {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0"})
    env["CODEX_MCP_STATE_DIR"] = tempfile.mkdtemp(prefix="state-", dir=codex_env.root)
    process = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=codex_env.workspace,
    )
    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "0"}}
    _request(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    arguments: dict[str, Any] = {"action": "list"}
    tool = "codex_session"
    if busy:
        tool = "codex"
        arguments = {"prompt": "scenario:slow take long", "approvalPolicy": "never", "sandbox": "read-only"}
    _request(
        process,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}},
    )
    started = time.perf_counter()
    os.kill(process.pid, signum)
    code = process.wait(10)
    took = (time.perf_counter() - started) * 1000
    assert process.stdin is not None
    process.stdin.close()
    assert process.stderr is not None
    said = re.search(r"stopped in (\d+) ms", process.stderr.read().decode())
    return took, code, float(said.group(1)) if said else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print("| first signal | state | signal -> exit (median, max) | the stop (its log) | exit codes | bound |")
    print("| --- | --- | --- | --- | --- | --- |")
    with MockModelServer() as mock, tempfile.TemporaryDirectory() as root:
        codex_env = create_codex_env(Path(root), mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}")
        for signum in (signal.SIGINT, signal.SIGTERM):
            for busy in (False, True):
                runs = [_one(codex_env, signum, busy) for _ in range(args.runs)]
                times = [t for t, _, _ in runs]
                own = [o for _, _, o in runs]
                codes = sorted({c for _, c, _ in runs})
                bound = "300 ms" if busy else "100 ms"
                state = "a turn running" if busy else "idle"
                print(
                    f"| {signum.name} | {state} | {statistics.median(times):.0f} ms, {max(times):.0f} ms "
                    f"| {statistics.median(own):.0f} ms | {codes} | {bound} |"
                )
    print(f"\n{args.runs} runs each; {os.cpu_count()} CPUs.")


if __name__ == "__main__":
    main()
