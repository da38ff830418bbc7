"""The MCP server: our tools as schemas/tools/ publishes them, each call checked against its schema."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from codex_mcp import __version__
from codex_mcp.errors import CodexMcpError
from codex_mcp.server import handlers, results
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.settings import CodexExecutable, Settings, resolve_codex
from codex_mcp.wire.tools import TOOL_NAMES, output_problems, parse_input, tool_definition

logger = logging.getLogger(__name__)

Handler = Callable[[Any, handlers.Call], Awaitable[dict[str, Any]]]
_TOOLS: Final[dict[str, Handler]] = {
    "codex_setup": handlers.codex_setup,
    "codex": handlers.codex,
    "codex_reply": handlers.codex_reply,
    "codex_session": handlers.codex_session,
    "codex_check": handlers.codex_check,
}


@dataclass
class AppState:
    """What the lifespan hands every request."""

    manager_or_error: SessionManager | CodexMcpError
    settings: Settings


@asynccontextmanager
async def _lifespan(server: Server[AppState]) -> AsyncGenerator[AppState]:
    settings = Settings.from_env()
    try:
        codex: CodexExecutable = resolve_codex()
    except CodexMcpError as exc:
        logger.error("%s", exc)
        yield AppState(exc, settings)
        return
    async with SessionManager.open(codex, settings) as manager:
        yield AppState(manager, settings)


async def _list_tools(
    ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool.model_validate(tool_definition(n)) for n in TOOL_NAMES])


async def _call_tool(
    ctx: ServerRequestContext[AppState], params: types.CallToolRequestParams
) -> types.CallToolResult:
    name = params.name
    try:
        if name not in _TOOLS:
            raise CodexMcpError(
                "INVALID_ARGUMENT", f"unknown tool {name!r}; tools: {', '.join(_TOOLS)}", field="name"
            )
        arguments = parse_input(name, dict(params.arguments or {}))
        state = ctx.lifespan_context
        call = handlers.Call(
            manager_or_error=state.manager_or_error,
            report_progress=_progress_reporter(ctx),
            heartbeat_s=state.settings.heartbeat_s,
        )
        handler = _TOOLS[name]
        output = await handler(arguments, call)
        if state.settings.validate_output:
            problems = output_problems(name, output)
            if problems:
                logger.error("%s output breaks its published schema: %s", name, problems)
                raise CodexMcpError("INTERNAL", f"{name} produced an invalid result ({problems[0][1]})")
        return results.success(output)
    except CodexMcpError as exc:
        return results.failure(exc)
    except Exception:  # the one boundary where any bug becomes a tool error, never a broken channel
        logger.exception("tool %s failed", name)
        return results.failure(CodexMcpError("INTERNAL", f"{name} failed unexpectedly; see the server log"))


def _progress_reporter(ctx: ServerRequestContext[AppState]) -> Callable[[float, str], Awaitable[None]]:
    async def report(elapsed_s: float, message: str) -> None:
        await ctx.session.report_progress(elapsed_s, None, message)

    return report


def build_server() -> Server[AppState]:
    """The MCP server object with its handlers."""
    return Server(
        "codex-mcp",
        version=__version__,
        lifespan=_lifespan,
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
    )


async def serve() -> None:
    """Serve MCP on stdin/stdout until the client disconnects."""
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
