"""The MCP server: our tools as schemas/tools/ publishes them, each call checked against its schema."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from codex_mcp import __version__
from codex_mcp.backend_mode import ModeChoice, choose_mode
from codex_mcp.errors import CodexMcpError
from codex_mcp.resources.catalog import ResourceCatalog
from codex_mcp.resources.server_info import ServerFacts
from codex_mcp.server import handlers, results
from codex_mcp.server.stdin import CheckedLines, ThreadedStdin
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.settings import CodexExecutable, Settings, resolve_codex
from codex_mcp.state.store import StateStore
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

_MAX_SHOWN_NAME: Final = 64


@dataclass(frozen=True)
class Startup:
    """What the server found before serving: its settings, the Codex to run (or why none), the
    backend, and its locked state directory (None: sessions are kept in memory only)."""

    settings: Settings
    codex: CodexExecutable | CodexMcpError
    mode: ModeChoice | None
    store: StateStore | None = None


def prepare_startup(env: dict[str, str]) -> Startup:
    """Read the environment, find Codex, and lock the state directory (which stops whatever a
    killed previous server left running there).

    Raises:
        CodexMcpError: a setting is wrong (both CODEX_MCP_PATH and CODEX_MCP_COMMAND, a bad path,
            a bad CODEX_MCP_MODE or duration, a state directory that is unusable or held by another
            live server): the server must not start. A Codex that is simply not installed is not
            raised: the server starts and `codex_setup` explains.
    """
    settings = Settings.from_env(env)
    try:
        codex = resolve_codex(env)
    except CodexMcpError as exc:
        if exc.code == "INVALID_ARGUMENT":
            raise
        logger.error("%s", exc.message)
        return Startup(settings, exc, None)
    mode = choose_mode(codex.path, env)
    logger.info("codex %s (%s), backend %s (%s)", codex.path, codex.source, mode.mode, mode.source)
    return Startup(settings, codex, mode, StateStore.open(settings.state_dir))


@dataclass
class AppState:
    """What the lifespan hands every request."""

    manager_or_error: SessionManager | CodexMcpError
    startup: Startup


def _lifespan_for(startup: Startup) -> Callable[[Server[AppState]], AbstractAsyncContextManager[AppState]]:
    @asynccontextmanager
    async def lifespan(server: Server[AppState]) -> AsyncGenerator[AppState]:
        if isinstance(startup.codex, CodexMcpError):
            yield AppState(startup.codex, startup)
            return
        assert startup.mode is not None  # prepare_startup chooses a mode whenever it found Codex
        async with SessionManager.open(
            startup.codex, startup.settings, startup.mode.mode, startup.store
        ) as manager:
            yield AppState(manager, startup)

    return lifespan


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
            # The name is echoed shortened: it may be huge (a fuzzer's, a confused client's).
            shown = repr(name if len(name) <= _MAX_SHOWN_NAME else name[:_MAX_SHOWN_NAME] + "...")
            raise CodexMcpError(
                "INVALID_ARGUMENT", f"unknown tool {shown}; tools: {', '.join(_TOOLS)}", field="name"
            )
        arguments = parse_input(name, dict(params.arguments or {}))
        state = ctx.lifespan_context
        mode = state.startup.mode
        call = handlers.Call(
            manager_or_error=state.manager_or_error,
            report_progress=_progress_reporter(ctx),
            heartbeat_s=state.startup.settings.heartbeat_s,
            backend_mode=mode.mode if mode else "unknown",
            backend_source=mode.source if mode else "no Codex found",
        )
        handler = _TOOLS[name]
        output = await handler(arguments, call)
        if state.startup.settings.validate_output:
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


def build_server(startup: Startup) -> Server[AppState]:
    """The MCP server object with its handlers."""
    catalog = ResourceCatalog(ServerFacts(startup.settings, startup.codex, startup.mode))

    async def list_resources(
        ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return catalog.list_result()

    async def read_resource(
        ctx: ServerRequestContext[AppState], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await catalog.read_result(params.uri, ctx.lifespan_context.manager_or_error)

    return Server(
        "codex-mcp",
        version=__version__,
        lifespan=_lifespan_for(startup),
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


async def serve(startup: Startup) -> None:
    """Serve MCP on stdin/stdout until the client disconnects (stdin EOF) or SIGTERM/SIGINT.

    Both end the same way: the lifespan gives running turns the drain time, then stops every Codex
    child, so nothing is left running after the server exits. A second signal stops at once.
    """
    server = build_server(startup)
    stdin = ThreadedStdin(sys.stdin.fileno()).start()
    # Lines the SDK cannot parse are answered through its own write stream, never handed to it.
    lines = CheckedLines(stdin)
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_stop_on_signals, stdin, task_group.cancel_scope)
            # The SDK's AsyncFile type is only iterated; CheckedLines iterates lines the same way.
            async with stdio_server(stdin=lines) as (read_stream, write_stream):  # pyright: ignore[reportArgumentType]
                lines.answer_through(write_stream.send)
                await server.run(read_stream, write_stream, server.create_initialization_options())
            task_group.cancel_scope.cancel()
    finally:
        if startup.store is not None:
            startup.store.close()


async def _stop_on_signals(stdin: ThreadedStdin, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        first = True
        async for received in signals:
            name = signal.Signals(received).name
            if first:
                logger.warning("%s: finishing as if the client had closed stdin", name)
                stdin.end()
                first = False
            else:
                logger.warning("%s again: stopping now", name)
                scope.cancel()
                return
