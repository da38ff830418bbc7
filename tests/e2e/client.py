"""A real MCP client talking to our server over stdio, with the server driving the real Codex.

`McpServerUnderTest.call` goes through the MCP SDK's `call_tool`, which validates every successful
result's structuredContent against the output schema we advertise, so each call in the e2e suite
checks the contract as a side effect.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TextIO, cast

import anyio
import mcp_types as types
from mcp.client.session import ClientSession, ElicitationFnT
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.dispatcher import ProgressFnT

from tests.harness.codex_env import CodexEnv

# A turn against the mock takes well under a second; this bounds a stuck one.
TURN_TIMEOUT_S = 60.0


# What an e2e `codex` call asks for unless it says otherwise: no approvals, and a sandbox in which
# the scenarios that run commands can write the workspace.
CODEX_DEFAULTS: Final[Mapping[str, str]] = {"approvalPolicy": "never", "sandbox": "workspace-write"}


def codex_args(
    prompt: str, *, wait_ms: int | None = None, advanced: Mapping[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """The arguments of a `codex` tool call, the one place e2e tests build them.

    `fields` are further tool fields by their names in the schema (`approvalPolicy="untrusted"`,
    `sandbox="read-only"`, `profile=...`), over `CODEX_DEFAULTS`. `advanced` is sent when either it
    or `wait_ms` (its `waitForResult`) is given.
    """
    arguments: dict[str, Any] = {"prompt": prompt, **CODEX_DEFAULTS, **fields}
    extra: dict[str, Any] = {} if wait_ms is None else {"waitForResult": wait_ms}
    extra.update(advanced or {})
    if extra:
        arguments["advanced"] = extra
    return arguments


@dataclass(frozen=True)
class ToolError:
    """The parts of an `isError` result."""

    code: str
    message: str
    field: str | None
    text: str


@dataclass
class McpServerUnderTest:
    """One running codex-mcp server and its client session."""

    session: ClientSession

    async def raw_call(
        self, tool: str, arguments: dict[str, Any], progress_callback: ProgressFnT | None = None
    ) -> types.CallToolResult:
        """call_tool as the SDK does it (structured output validated on success)."""
        return await self.session.call_tool(tool, arguments, progress_callback=progress_callback)

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A successful call's structuredContent (asserting text content carries the same JSON)."""
        result = await self.raw_call(tool, arguments)
        assert not result.is_error, result.content
        structured = _structured(result)
        text = result.content[0]
        assert isinstance(text, types.TextContent)
        assert json.loads(text.text) == structured
        return structured

    async def error(self, tool: str, arguments: dict[str, Any]) -> ToolError:
        """A failed call's error parts (asserting the text and structured forms agree)."""
        result = await self.raw_call(tool, arguments)
        assert result.is_error
        error: dict[str, Any] = _structured(result)["error"]
        text = result.content[0]
        assert isinstance(text, types.TextContent)
        assert text.text == f"Error [{error['code']}]: {error['message']}"
        return ToolError(error["code"], error["message"], error.get("field"), text.text)

    async def poll_until(
        self,
        session_id: str,
        done: Callable[[dict[str, Any]], bool],
        *,
        timeout_s: float = TURN_TIMEOUT_S,
        max_events: int = 50,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Long-poll until `done(poll)`; returns the last poll and every event seen."""
        seen: list[dict[str, Any]] = []
        with anyio.fail_after(timeout_s):
            while True:
                poll = await self.call(
                    "codex_check",
                    {
                        "action": "poll",
                        "sessionId": session_id,
                        "maxEvents": max_events,
                        "responseMode": "full",
                        "pollOptions": {"waitMs": 2000},
                    },
                )
                seen += poll["events"]
                if done(poll):
                    return poll, seen

    async def run_to_end(self, session_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Poll until the session is idle, error or cancelled."""
        return await self.poll_until(session_id, lambda p: p["status"] in ("idle", "error", "cancelled"))


def _structured(result: types.CallToolResult) -> dict[str, Any]:
    structured = result.structured_content
    assert isinstance(structured, dict)
    return cast(dict[str, Any], structured)


def server_env(codex_env: CodexEnv, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of our server: Codex's isolated one, plus where the pinned Codex is, plus
    `extra` (a None value unsets the variable: the server's default then holds)."""
    env = codex_env.env()
    env["CODEX_MCP_PATH"] = str(codex_env.binary)
    env["CODEX_MCP_LOG_LEVEL"] = "INFO"
    env["CODEX_MCP_VALIDATE_OUTPUT"] = "1"
    env["CODEX_MCP_STATE_DIR"] = str(codex_env.root / "state")
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@asynccontextmanager
async def running_server(
    codex_env: CodexEnv,
    extra_env: Mapping[str, str | None] | None = None,
    *,
    errlog: TextIO = sys.stderr,
    elicitation_callback: ElicitationFnT | None = None,
    modern: bool = False,
) -> AsyncGenerator[McpServerUnderTest]:
    """Start `python -m codex_mcp` as a real stdio MCP server (its stderr to `errlog`) and
    initialise a client session: legacy `initialize`, or (`modern`) the 2026-07-28 `server/discover`.
    With `elicitation_callback` the client declares (form and URL) elicitation."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codex_mcp"],
        env=server_env(codex_env, extra_env),
        cwd=str(codex_env.workspace),
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write, elicitation_callback=elicitation_callback) as session,
    ):
        with anyio.fail_after(30):
            if modern:
                await session.discover()
            else:
                await session.initialize()
        yield McpServerUnderTest(session)
