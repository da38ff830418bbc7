"""The recursion guard's cost: a session's first turn with a codex-mcp entry in CODEX_HOME/config.toml
against the same turn without one, in the same run.

    .venv/bin/python bench/nesting.py [--runs N]

Each run starts one fresh codex-mcp server (a real MCP client over stdio) per configuration, in
interleaved order, on the real pinned Codex and the scripted mock model, and times:

- the first `codex` call with waitForResult, from call to result (it spawns the Codex child);
- a later `codex` call on the same server (a new thread on the running child: the thread is what
  starts its MCP servers).

Configurations: no entry (the baseline); an entry that runs codex-mcp (`command = <python>`,
`args = ["-m", "codex_mcp"]`), optional and `required = true`, with the guard on (the default); and
the optional entry with nesting allowed (`CODEX_MCP_MAX_NESTING=1`), which shows what the guard
saves. The target: with the guard on, within 1.2x of the baseline. The table goes to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/nesting.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402

from tests.e2e.client import running_server  # noqa: E402
from tests.harness.codex_env import create_codex_env  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402

START: Final = {
    "prompt": "scenario:plain hi",
    "approvalPolicy": "never",
    "sandbox": "read-only",
    "advanced": {"waitForResult": 60_000},
}
BASELINE: Final = "no entry"
# name -> (config.toml tables, server environment)
CONFIGS: Final[dict[str, tuple[str, dict[str, str]]]] = {
    BASELINE: ("", {}),
    "entry, guard on": ("", {}),
    "required entry, guard on": ("required = true\n", {}),
    "entry, nesting allowed": ("", {"CODEX_MCP_MAX_NESTING": "1"}),
}
FIRST: Final = "first session's turn (spawns Codex)"
LATER: Final = "later session's turn (new thread)"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _entry(extra: str) -> str:
    return f'[mcp_servers.codex-mcp]\ncommand = "{sys.executable}"\nargs = ["-m", "codex_mcp"]\n{extra}'


async def _one_run(mock: MockModelServer, root: Path, name: str) -> tuple[float, float]:
    extra, env = CONFIGS[name]
    codex_env = create_codex_env(
        root,
        mock.base_url,
        proxy_url=f"http://127.0.0.1:{mock.port}",
        config_extra="" if name == BASELINE else _entry(extra),
    )
    quiet = {"CODEX_MCP_LOG_LEVEL": "WARNING", "CODEX_MCP_VALIDATE_OUTPUT": "0", **env}
    async with running_server(codex_env, quiet) as mcp:
        timings: list[float] = []
        for _ in range(2):
            started = time.perf_counter()
            out = await mcp.call("codex", START)
            timings.append((time.perf_counter() - started) * 1000)
            if out["status"] != "idle":
                raise RuntimeError(f"{name}: the turn ended {out['status']}: {out}")
    return timings[0], timings[1]


async def bench(root: Path, runs: int) -> dict[str, dict[str, list[float]]]:
    """Per configuration, per figure, the milliseconds of every run."""
    samples: dict[str, dict[str, list[float]]] = {name: {FIRST: [], LATER: []} for name in CONFIGS}
    names = list(CONFIGS)
    with MockModelServer() as mock:
        for run in range(runs):
            # Rotate the order, so a slow moment of the machine hits every configuration alike.
            for offset in range(len(names)):
                name = names[(run + offset) % len(names)]
                first, later = await _one_run(mock, root / f"run{run}-{offset}", name)
                samples[name][FIRST].append(first)
                samples[name][LATER].append(later)
            log(f"run {run + 1}/{runs} done")
    return samples


def rows(samples: dict[str, dict[str, list[float]]]) -> list[tuple[str, str, str, str]]:
    """(figure, median ms, baseline median ms, ratio) for every configuration but the baseline."""
    table: list[tuple[str, str, str, str]] = []
    for figure in (FIRST, LATER):
        base = statistics.median(samples[BASELINE][figure])
        for name in CONFIGS:
            if name == BASELINE:
                continue
            mine = statistics.median(samples[name][figure])
            table.append(
                (f"{figure}, {name}", f"{mine:,.0f} ms", f"{base:,.0f} ms ({BASELINE})", f"{mine / base:.2f}")
            )
    return table


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="servers started per configuration (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codex-mcp-nesting-") as temp:
        samples = await bench(Path(temp), args.runs)
    print("| figure | codex-mcp | baseline (same run) | ratio |")
    print("| --- | --- | --- | --- |")
    for row in rows(samples):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    anyio.run(main)
