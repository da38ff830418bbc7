"""Codex itself as the MCP client: ``codex exec --json`` of npm ``@openai/codex`` with our server configured.

The outer Codex is an isolated :class:`~tests.harness.codex_env.CodexEnv` (its own ``CODEX_HOME`` and
``HOME``) whose ``config.toml`` points its model at the Responses mock and adds
``[mcp_servers.codex-mcp]`` running ``python -m codex_mcp`` from this checkout. Codex gives the server
only a whitelist of its own environment (HOME, PATH, …) plus the entry's ``env``, so the entry carries
the server's whole environment: the inner Codex binary, its isolated ``CODEX_HOME``/``HOME``, the state
directory. The outer and inner Codex can share one mock: its scenario is chosen per request from the
latest user message (``scenario:plan`` outside, whatever the plan's prompts say inside).

``codex exec`` runs with approval policy ``never`` whatever the config says, so
``default_tools_approval_mode = "approve"`` is needed for our tools that are not read-only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, cast

from tests.harness.codex_env import CODEX_MCP_ARGV, CodexEnv, create_codex_env
from tests.harness.mock_model import MockModelServer, RecordedRequest, json_object
from tests.harness.scenarios import PLAN_NAMESPACE

SERVER_NAME: Final = "codex-mcp"
# Above every waitForResult the tests use (30 s), as the docs tell users.
TOOL_TIMEOUT_S: Final = 60


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def server_entry_toml(
    server_env: Mapping[str, str],
    *,
    required: bool,
    approve: bool = True,
    tool_timeout_sec: int = TOOL_TIMEOUT_S,
    argv: Sequence[str] = CODEX_MCP_ARGV,
) -> str:
    """The ``[mcp_servers.codex-mcp]`` table that runs our server (by default from this checkout)."""
    lines = [
        f"[mcp_servers.{SERVER_NAME}]",
        f"command = {_toml(argv[0])}",
        f"args = [{', '.join(_toml(a) for a in argv[1:])}]",
        f"tool_timeout_sec = {tool_timeout_sec}",
    ]
    if approve:
        lines.append('default_tools_approval_mode = "approve"')
    if required:
        lines.append("required = true")
    lines.append(f"[mcp_servers.{SERVER_NAME}.env]")
    lines += [f"{_toml(k)} = {_toml(v)}" for k, v in sorted(server_env.items())]
    return "\n".join(lines)


def create_client_env(
    root: Path,
    mock: MockModelServer,
    codex: Path,
    server_env: Mapping[str, str],
    *,
    required: bool,
    approve: bool = True,
    tool_timeout_sec: int = TOOL_TIMEOUT_S,
    server_argv: Sequence[str] = CODEX_MCP_ARGV,
    top_level: str = "",
) -> CodexEnv:
    """An isolated outer Codex (binary ``codex``) that has our server under ``[mcp_servers]``."""
    return create_codex_env(
        root,
        mock.base_url,
        proxy_url=f"http://127.0.0.1:{mock.port}",
        binary=codex,
        config_extra=server_entry_toml(
            server_env,
            required=required,
            approve=approve,
            tool_timeout_sec=tool_timeout_sec,
            argv=server_argv,
        ),
        config_top_level=top_level,
    )


def offered_tools(request: RecordedRequest) -> list[str]:
    """The function names the request offers in our namespace (empty when our tools are missing)."""
    for tool in map(json_object, cast(list[object], request.json.get("tools") or [])):
        if tool.get("type") == "namespace" and tool.get("name") == PLAN_NAMESPACE:
            return [str(json_object(f).get("name")) for f in cast(list[object], tool.get("tools") or [])]
    return []


def plan_requests(mock: MockModelServer) -> list[RecordedRequest]:
    """The outer Codex's requests (scenario ``plan``), in order."""
    return [r for r in mock.responses_requests() if r.scenario == "plan"]


def tool_outputs(request: RecordedRequest) -> list[str]:
    """The ``function_call_output`` texts in a request: what the model saw of each call."""
    texts: list[str] = []
    for item in request.input_items:
        if item.get("type") == "function_call_output":
            output = item.get("output")
            texts.append(output if isinstance(output, str) else json.dumps(output))
    return texts


def exec_events(stdout: str) -> list[dict[str, object]]:
    """The JSONL events of ``codex exec --json``."""
    events: list[dict[str, object]] = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                events.append(json_object(json.loads(line)))
            except ValueError:
                continue
    return events
