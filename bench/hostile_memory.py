"""Peak memory of the whole process tree under hostile input, this checkout beside an older one.

    .venv/bin/python bench/hostile_memory.py --baseline-src /tmp/old/src [--settle-s 40]

Each server (`python -m codex_mcp`, the real pinned Codex, the mock model) gets the same calls, one
at a time: a 1 GiB sparse file with a PNG header as `codex`'s `advanced.images` and as
`codex_reply`'s `images`, an 8 MiB prompt, and an 8 MiB config value. After each answer, a session
the call started is followed until its turn ends (at most `--settle-s`). The resident memory of
the server and all its descendants is sampled every 50 ms; the table shows each case's peak, the
answer, and the ratio. A baseline is a checkout of an older commit: `git worktree add /tmp/old
<commit>`, then `--baseline-src /tmp/old/src`.

The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final, cast

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.ingest import rss_mb  # noqa: E402
from codex_mcp.proc import proc_tree  # noqa: E402
from tests.e2e.client import server_env  # noqa: E402
from tests.harness.codex_env import CodexEnv, create_codex_env  # noqa: E402
from tests.harness.images import tiny_png  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402

_ANSWER_TIMEOUT_S: Final = 120.0
_SAMPLE_S: Final = 0.05
_START: Final = {"approvalPolicy": "never", "sandbox": "read-only"}
_BIG: Final = 8 * 2**20


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _tree_mb(root: int) -> float:
    """The resident memory of `root` and its live descendants, in MiB."""
    started = proc_tree.start_time(root)
    total = 0.0
    for pid in proc_tree.expand({} if started is None else {root: started}):
        try:
            total += rss_mb(pid)
        except (OSError, IndexError, ValueError):
            continue
    return total


class _Peak:
    """The peak resident memory of a process tree, sampled on a thread until stopped."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_mb(self.root))
            self._stop.wait(_SAMPLE_S)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class _Server:
    """One server process, spoken to line by line."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "codex_mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )
        self._next = 0
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        )
        self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        self._write({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params})
        assert self.process.stdout is not None
        deadline = time.monotonic() + _ANSWER_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the server closed stdout (exit {self.process.poll()})")
            message = json.loads(line)
            if message.get("id") == self._next:
                return message
        raise TimeoutError(method)

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("tools/call", {"name": tool, "arguments": arguments})
        result: dict[str, Any] = answer.get("result", {})
        return result.get("structuredContent") or {"error": answer.get("error")}

    def status(self, session_id: str) -> str:
        got = self.call("codex_session", {"action": "get", "sessionId": session_id})
        if "status" in got:
            return str(got["status"])
        nested = cast(dict[str, Any], got.get("session") or {})  # an older checkout nests get's fields
        return str(nested.get("status", "?"))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _answer(content: dict[str, Any]) -> str:
    error: Any = content.get("error")
    if isinstance(error, dict):
        parts = cast(dict[str, Any], error)
        return f"{parts.get('code')} {parts.get('field') or ''}".strip()
    return f"accepted ({content.get('status')})"


def _run(codex_env: CodexEnv, src: Path | None, image: Path, settle_s: float) -> list[tuple[str, str, float]]:
    env = server_env(codex_env, {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0"})
    env["CODEX_MCP_STATE_DIR"] = tempfile.mkdtemp(prefix="state-", dir=codex_env.root)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    server = _Server(env, codex_env.workspace)
    rows: list[tuple[str, str, float]] = []
    try:
        first = server.call(
            "codex", {"prompt": "scenario:plain hi", **_START, "advanced": {"waitForResult": 60_000}}
        )
        session_id = str(first["sessionId"])
        cases: list[tuple[str, str, dict[str, Any]]] = [
            (
                "codex advanced.images: 1 GiB PNG",
                "codex",
                {"prompt": "look", **_START, "advanced": {"images": [str(image)]}},
            ),
            (
                "codex_reply images: 1 GiB PNG",
                "codex_reply",
                {"sessionId": session_id, "prompt": "look", "images": [str(image)]},
            ),
            ("codex prompt: 8 MiB", "codex", {"prompt": "a" * _BIG, **_START}),
            (
                "codex advanced.config value: 8 MiB",
                "codex",
                {"prompt": "hi", **_START, "advanced": {"config": {"notify": "n" * _BIG}}},
            ),
        ]
        for label, tool, arguments in cases:
            with _Peak(server.process.pid) as peak:
                content = server.call(tool, arguments)
                started = str(content.get("sessionId") or "")
                deadline = time.monotonic() + settle_s
                while started and time.monotonic() < deadline and server.status(started) == "running":
                    time.sleep(0.5)
            rows.append((label, _answer(content), peak.peak))
            log(
                f"{'baseline' if src else 'this checkout'}: {label}: {_answer(content)}, "
                f"peak {peak.peak:.0f} MiB"
            )
    finally:
        server.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--settle-s", type=float, default=40.0)
    args = parser.parse_args()
    with MockModelServer() as mock, tempfile.TemporaryDirectory() as root:
        codex_env = create_codex_env(Path(root), mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}")
        image = codex_env.workspace / "huge.png"
        with image.open("wb") as file:
            file.write(tiny_png())
            file.truncate(2**30)
        mine = _run(codex_env, None, image, args.settle_s)
        base = _run(codex_env, args.baseline_src, image, args.settle_s) if args.baseline_src else None
    print("| input | this checkout: answer | peak tree MiB | baseline: answer | peak tree MiB | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for index, (label, answer, peak) in enumerate(mine):
        if base is None:
            print(f"| {label} | {answer} | {peak:.0f} | - | - | - |")
        else:
            _, old_answer, old_peak = base[index]
            print(
                f"| {label} | {answer} | {peak:.0f} | {old_answer} | {old_peak:.0f} | {peak / old_peak:.2f} |"
            )
    print(f"\n{os.cpu_count()} CPUs; peak = the server and all its descendants, sampled every 50 ms.")


if __name__ == "__main__":
    main()
