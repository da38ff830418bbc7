"""Run the real Claude Code (``claude -p``) offline, with our server as its only MCP server.

The set-up is the one CLIENTS.md found to work unattended: an empty environment with its own
``HOME``, ``ANTHROPIC_BASE_URL`` at the scripted Messages model, a dummy key, non-essential traffic
off and ``HTTPS_PROXY`` at the same mock (which refuses every ``CONNECT``), then
``claude -p PROMPT --output-format stream-json --verbose --mcp-config FILE --strict-mcp-config
--allowedTools mcp__codex-mcp --permission-mode dontAsk --debug-file FILE``.

MCP tools stay deferred, as they are by default for users: the scripted model loads them with
Claude Code's ``ToolSearch`` (``select:<names>``) before calling them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, cast

from tests.harness.codex_env import CODEX_MCP_ARGV
from tests.harness.messages_model import DUMMY_KEY, MessagesModelServer
from tests.harness.procs import descendants, kill_process_group, kill_survivors

SERVER_NAME: Final = "codex-mcp"
TOOL_PREFIX: Final = f"mcp__{SERVER_NAME}__"
RUN_TIMEOUT_S: Final = 120.0
_CONNECTED: Final = re.compile(rf'MCP server "{SERVER_NAME}": Successfully connected .*? in (\d+)ms')
_ERA: Final = re.compile(rf'MCP server "{SERVER_NAME}": Connection established with capabilities: (\{{.*\}})')
# Lines Claude Code writes when its server/discover probe got no answer in time and it tried again.
_FALLBACK_MARKERS: Final = (
    "version negotiation probe timed out",
    "rejected initialize",
    "answered the server/discover probe after its bound",
    "re-probing server/discover",
)


def server_entry(server_env: Mapping[str, str], argv: Sequence[str] = CODEX_MCP_ARGV) -> dict[str, object]:
    """The ``mcpServers`` entry that runs our server (by default from this checkout's environment)."""
    return {"command": argv[0], "args": list(argv[1:]), "env": dict(server_env)}


def claude_env(
    home: Path, model: MessagesModelServer, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The whole environment of ``claude`` (nothing inherited but PATH)."""
    sink = f"http://127.0.0.1:{model.port}"
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ANTHROPIC_BASE_URL": model.base_url,
        "ANTHROPIC_API_KEY": DUMMY_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HTTPS_PROXY": sink,
        "HTTP_PROXY": sink,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class ClaudeRun:
    """What one ``claude -p`` run printed and logged."""

    returncode: int
    stdout: str
    stderr: str
    debug_log: str
    seconds: float
    events: list[dict[str, object]] = field(default_factory=list[dict[str, object]])

    @property
    def result(self) -> dict[str, object]:
        """The closing ``{"type": "result"}`` event (empty if there was none)."""
        found = [e for e in self.events if e.get("type") == "result"]
        return found[-1] if found else {}

    def connect_ms(self) -> int | None:
        """How long Claude Code took to connect to our server, from its debug log."""
        found = _CONNECTED.search(self.debug_log)
        return int(found.group(1)) if found else None

    def protocol_era(self) -> str | None:
        """The protocol era of the connection (``modern`` or ``legacy``), from its debug log."""
        found = _ERA.search(self.debug_log)
        if found is None:
            return None
        era = cast(dict[str, object], json.loads(found.group(1))).get("protocolEra")
        return era if isinstance(era, str) else None

    def fell_back(self) -> bool:
        """Whether the connect needed a second probe or a legacy ``initialize``."""
        return self.protocol_era() != "modern" or any(m in self.debug_log for m in _FALLBACK_MARKERS)


def _parse_stream_json(stdout: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for line in stdout.splitlines():
        if not line.strip().startswith("{"):
            continue
        try:
            parsed: object = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            events.append(cast(dict[str, object], parsed))
    return events


def run_claude(
    claude: Path,
    model: MessagesModelServer,
    prompt: str,
    *,
    root: Path,
    server_env: Mapping[str, str],
    cwd: Path,
    extra_env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    server_argv: Sequence[str] = CODEX_MCP_ARGV,
    timeout: float = RUN_TIMEOUT_S,
) -> ClaudeRun:
    """Run ``claude -p prompt`` to completion with our server configured; kill it all on timeout."""
    home = root / "claude-home"
    home.mkdir(parents=True, exist_ok=True)
    config = root / "mcp.json"
    entry = server_entry(server_env, server_argv)
    config.write_text(json.dumps({"mcpServers": {SERVER_NAME: entry}}), encoding="utf-8")
    debug_file = root / "claude-debug.log"
    argv = [
        str(claude),
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--mcp-config",
        str(config),
        "--strict-mcp-config",
        "--allowedTools",
        f"mcp__{SERVER_NAME}",
        "--permission-mode",
        "dontAsk",
        "--debug-file",
        str(debug_file),
        *extra_args,
    ]
    started = time.monotonic()
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=claude_env(home, model, extra_env),
        cwd=cwd,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            family = descendants(proc.pid)
            kill_process_group(proc)
            kill_survivors(family)
            raise
        kill_process_group(proc)
    seconds = time.monotonic() - started
    debug_log = debug_file.read_text(encoding="utf-8", errors="replace") if debug_file.exists() else ""
    return ClaudeRun(proc.returncode, stdout, stderr, debug_log, seconds, _parse_stream_json(stdout))
