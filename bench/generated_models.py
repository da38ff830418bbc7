"""Import cost of `codex_mcp._generated` and validation rate of Codex lines, side by side.

    .venv/bin/python bench/generated_models.py [--runs N]

Every figure comes from the same run, next to a baseline (importing pydantic alone; `json.loads`
alone), so the ratios hold on a noisy shared machine even when the absolute numbers move.
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRANSCRIPTS = REPO / "tests" / "contract" / "transcripts" / "app_server"
GENERATED_MODULES = (
    "codex_mcp._generated.app_server",
    "codex_mcp._generated.exec_events",
    "codex_mcp._generated.tools",
    "codex_mcp._generated.tool_definitions",
    "codex_mcp._generated.registry",
)

_TIMER = "import time; t = time.perf_counter(); {imports}; print(time.perf_counter() - t)"


def _import_seconds(imports: str, *, cold: bool) -> float:
    """Seconds a fresh interpreter spends on `imports`; `cold` compiles every module from source."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as empty_cache:
        command = [sys.executable]
        if cold:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            command += ["-X", f"pycache_prefix={empty_cache}"]
        command += ["-c", _TIMER.format(imports=imports)]
        completed = subprocess.run(command, capture_output=True, text=True, env=env, check=True, cwd=REPO)
    return float(completed.stdout.strip())


def _stats(samples: list[float]) -> tuple[float, float]:
    return min(samples), statistics.median(samples)


def import_table(runs: int) -> list[tuple[str, float, float]]:
    """(what, min ms, median ms) rows for the import costs."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "codex_mcp")], check=True)
    everything = "; ".join(f"import {module}" for module in GENERATED_MODULES)
    cases = [
        ("import pydantic (baseline)", "import pydantic", False),
        ("import all of _generated, compiled .pyc", everything, False),
        ("import all of _generated, from source", everything, True),
        ("import mcp.server (for scale)", "import mcp.server", False),
    ]
    rows: list[tuple[str, float, float]] = []
    samples: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    for _ in range(runs):  # interleaved, so load changes hit every case alike
        for label, imports, cold in cases:
            samples[label].append(_import_seconds(imports, cold=cold))
    for label, _, _ in cases:
        low, mid = _stats(samples[label])
        rows.append((label, low * 1000, mid * 1000))
    return rows


def _notification_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        for record in path.read_text(encoding="utf-8").splitlines():
            message = json.loads(record)
            if message["dir"] == "in" and "method" in message["msg"] and "id" not in message["msg"]:
                lines.append(json.dumps(message["msg"]))
    return lines


def _rate(function: Callable[[str], object], lines: list[str], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for line in lines:
            function(line)
        done += len(lines)
    return done / (time.perf_counter() - start)


def validation_table(seconds: float) -> list[tuple[str, float]]:
    """(what, lines per second) rows for parsing recorded notification lines."""
    from codex_mcp.wire.app_server import Notification, parse_line  # noqa: PLC0415

    lines = _notification_lines()
    for line in lines:  # warm the validator caches, and prove every line types
        assert isinstance(parse_line(line), Notification), line
    deltas = [line for line in lines if '"item/agentMessage/delta"' in line]
    completed = [line for line in lines if '"item/completed"' in line]
    return [
        (f"json.loads only, {len(lines)} recorded notifications", _rate(json.loads, lines, seconds)),
        ("parse_line (json + generated model), same lines", _rate(parse_line, lines, seconds)),
        (f"parse_line, item/agentMessage/delta only ({len(deltas)})", _rate(parse_line, deltas, seconds)),
        (f"parse_line, item/completed only ({len(completed)})", _rate(parse_line, completed, seconds)),
    ]


def main() -> int:
    """Print both tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11, help="fresh interpreters per import case")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per validation case")
    args = parser.parse_args()
    rows = import_table(args.runs)
    baseline = rows[0][1]
    print(f"{'import cost (fresh interpreter)':<48} {'min ms':>8} {'median ms':>10} {'x pydantic':>11}")
    for label, low, mid in rows:
        print(f"{label:<48} {low:>8.0f} {mid:>10.0f} {low / baseline:>11.2f}")
    print()
    rates = validation_table(args.seconds)
    print(f"{'validation rate':<56} {'lines/s':>10} {'x json':>7}")
    for label, rate in rates:
        print(f"{label:<56} {rate:>10.0f} {rate / rates[0][1]:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
