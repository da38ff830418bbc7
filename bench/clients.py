"""How the real clients connect to our server: N runs of each, fully offline, one table.

    .venv/bin/python bench/clients.py [--runs N]

The clients are the pinned npm ones (`tests/clients/package-lock.json`, installed on first use by
`tests/harness/npm_clients.py`); the runs alternate between them, each in throwaway homes.

- **Claude Code** (`claude -p`, scripted Messages model, its default MCP settings): our server runs
  behind `tests/harness/stdio_recorder.py`, which logs every message. A connect *fell back* when our server
  got a legacy `initialize` after `server/discover`, or Claude Code's debug log tells of a re-probe or
  a non-modern era. Figures: connects without fallback, spawn -> first `tools/list` answered (from the
  recorder, which adds one Python start-up before the spawn), Claude Code's own connect time (its debug
  log), and whether the model's `codex_setup` call came back.
- **Codex as the client** (`codex exec` of npm 0.171, scripted Responses model, our entry with the
  default optional start-up grace: no `required`): whether the model's first request offered our
  tools, and whether its `codex_setup` call came back.

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.client import server_env  # noqa: E402
from tests.harness.claude_code import run_claude  # noqa: E402
from tests.harness.codex_client import create_client_env, offered_tools, plan_requests, tool_outputs  # noqa: E402
from tests.harness.codex_env import CODEX_MCP_ARGV, create_codex_env, run_exec  # noqa: E402
from tests.harness.messages_model import TOOL_SEARCH, MessagesModelServer  # noqa: E402
from tests.harness.mock_model import MockModelServer  # noqa: E402
from tests.harness.npm_clients import NpmClients, install_npm_clients  # noqa: E402
from tests.harness.plans import call, plan_prompt  # noqa: E402
from tests.harness.stdio_recorder import recorded, recorder_argv  # noqa: E402

PLAN: Final = (call("codex_setup"),)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ClaudeConnect:
    """One Claude Code run."""

    fell_back: bool
    methods: list[str]
    tools_list_ms: float | None
    connect_ms: int | None
    call_answered: bool
    seconds: float


@dataclass(frozen=True)
class CodexConnect:
    """One Codex-as-client run."""

    offered_first_turn: bool
    call_answered: bool
    seconds: float


def _first_tools_list_ms(entries: list[dict[str, object]]) -> float | None:
    """Spawn -> the answer to the first `tools/list` our server got."""
    ids = [e.get("id") for e in entries if e.get("dir") == "in" and e.get("method") == "tools/list"]
    if not ids:
        return None
    for entry in entries:
        if entry.get("dir") == "out" and entry.get("id") == ids[0] and "method" not in entry:
            t = entry.get("t")
            return float(t) * 1000 if isinstance(t, int | float) else None
    return None


def claude_once(clients: NpmClients, root: Path) -> ClaudeConnect:
    """One `claude -p` whose model calls `codex_setup` once."""
    with MessagesModelServer() as messages, MockModelServer() as responses:
        inner = create_codex_env(
            root / "inner", responses.base_url, proxy_url=f"http://127.0.0.1:{responses.port}"
        )
        record = root / "methods.jsonl"
        run = run_claude(
            clients.claude,
            messages,
            plan_prompt(PLAN, "Call the tools of this plan in order."),
            root=root / "claude",
            server_env=server_env(inner),
            cwd=inner.workspace,
            server_argv=recorder_argv(record, CODEX_MCP_ARGV),
        )
        planned = messages.planned_requests()
    entries = recorded(record)
    methods = [str(e["method"]) for e in entries if e.get("dir") == "in" and "method" in e]
    legacy_after_discover = (
        "server/discover" in methods and "initialize" in methods[methods.index("server/discover") :]
    )
    answered = False
    if planned:
        uses = [u for u in planned[-1].tool_uses() if u.name != TOOL_SEARCH]
        answered = bool(uses) and uses[0].result is not None and not uses[0].is_error
    return ClaudeConnect(
        fell_back=legacy_after_discover or run.fell_back(),
        methods=methods,
        tools_list_ms=_first_tools_list_ms(entries),
        connect_ms=run.connect_ms(),
        call_answered=answered,
        seconds=run.seconds,
    )


def codex_once(clients: NpmClients, root: Path) -> CodexConnect:
    """One `codex exec` whose model calls `codex_setup` once, our entry left optional."""
    with MockModelServer() as mock:
        inner = create_codex_env(root / "inner", mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}")
        outer = create_client_env(root / "outer", mock, clients.codex, server_env(inner), required=False)
        started = time.monotonic()
        done = run_exec(outer, plan_prompt(PLAN, "scenario:plan Call the tools of this plan in order."))
        seconds = time.monotonic() - started
        requests = plan_requests(mock)
    offered = bool(requests) and bool(offered_tools(requests[0]))
    outputs = tool_outputs(requests[-1]) if requests else []
    answered = done.returncode == 0 and bool(outputs) and '"codex":{"found":true' in outputs[0]
    return CodexConnect(offered_first_turn=offered, call_answered=answered, seconds=seconds)


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {max(values):.0f}"


def print_table(claude: list[ClaudeConnect], codex: list[CodexConnect], load: str) -> None:
    """The table: counts out of N, then latencies as median / max."""
    n_claude, n_codex = len(claude), len(codex)
    rows = [
        (
            "Claude Code: connects without protocol fallback",
            f"{sum(not c.fell_back for c in claude)}/{n_claude}",
        ),
        (
            "Claude Code: connects with fallback (legacy initialize or re-probe)",
            f"{sum(c.fell_back for c in claude)}/{n_claude}",
        ),
        (
            "Claude Code: spawn -> first tools/list answered, ms (median / max)",
            _stats([c.tools_list_ms for c in claude if c.tools_list_ms is not None]),
        ),
        (
            "Claude Code: its own connect time, ms (median / max)",
            _stats([float(c.connect_ms) for c in claude if c.connect_ms is not None]),
        ),
        (
            "Claude Code: the model's codex_setup call answered",
            f"{sum(c.call_answered for c in claude)}/{n_claude}",
        ),
        ("Claude Code: whole `claude -p` run, ms (median / max)", _stats([c.seconds * 1000 for c in claude])),
        (
            "Codex client (default grace): our tools offered on the first turn",
            f"{sum(c.offered_first_turn for c in codex)}/{n_codex}",
        ),
        (
            "Codex client (default grace): the model's codex_setup call answered",
            f"{sum(c.call_answered for c in codex)}/{n_codex}",
        ),
        (
            "Codex client: whole `codex exec` run, ms (median / max)",
            _stats([c.seconds * 1000 for c in codex]),
        ),
    ]
    rows.append(("machine load average (1 min) before / after the runs", load))
    width = max(len(label) for label, _ in rows)
    print(f"| {'figure':<{width}} | value |")
    print(f"| {'-' * width} | --- |")
    for label, value in rows:
        print(f"| {label:<{width}} | {value} |")
    methods = sorted({" ".join(c.methods[:4]) for c in claude})
    print()
    print("Claude Code's first methods, as our server got them:")
    for sequence in methods:
        print(f"  {sequence}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="connects of each client (default 20)")
    args = parser.parse_args()
    log("installing the npm clients (cached per lock file)")
    clients = install_npm_clients()
    load_before = os.getloadavg()[0]
    claude: list[ClaudeConnect] = []
    codex: list[CodexConnect] = []
    with tempfile.TemporaryDirectory(prefix="codex-mcp-clients-") as temp:
        root = Path(temp)
        for i in range(args.runs):
            claude.append(claude_once(clients, root / f"claude-{i}"))
            codex.append(codex_once(clients, root / f"codex-{i}"))
            log(
                f"run {i + 1}/{args.runs}: claude fallback={claude[-1].fell_back} "
                f"tools/list={claude[-1].tools_list_ms} ms; codex offered={codex[-1].offered_first_turn}"
            )
    print_table(claude, codex, f"{load_before:.1f} / {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
