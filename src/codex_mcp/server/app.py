"""The MCP server: our tools as schemas/tools/ publishes them, each call checked against its schema."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, cast

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from codex_mcp import __version__
from codex_mcp.errors import CodexMcpError
from codex_mcp.resources.catalog import ResourceCatalog
from codex_mcp.resources.server_info import ServerFacts
from codex_mcp.server import elicit, handlers, results, tasks
from codex_mcp.server.early import EarlyAnswers
from codex_mcp.server.startup import Startup
from codex_mcp.server.stdin import ThreadedStdin
from codex_mcp.server.stdout import WireOut
from codex_mcp.server.transport import stdio_transport
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.wire.tools import (
    TOOL_NAMES,
    ToolOutputModel,
    output_json,
    output_model,
    output_problems,
    parse_input,
    tool_definition,
)

logger = logging.getLogger(__name__)

# A handler returns its tool's generated output model; the result is that model's JSON.
Handler = Callable[[Any, handlers.Call], Awaitable[ToolOutputModel]]
_TOOLS: Final[dict[str, Handler]] = {
    "codex_setup": handlers.codex_setup,
    "codex": handlers.codex,
    "codex_reply": handlers.codex_reply,
    "codex_session": handlers.codex_session,
    "codex_check": handlers.codex_check,
}

_MAX_SHOWN_NAME: Final = 64


@dataclass
class Running:
    """What a stop signal must reach: the session manager, while the lifespan has it open."""

    manager: SessionManager | None = None


@dataclass
class AppState:
    """What the lifespan hands every request."""

    manager_or_error: SessionManager | CodexMcpError
    startup: Startup
    # Signs the `requestState` of 2026-07-28 input-required results (key in the state directory).
    signer: elicit.StateSigner


def _lifespan_for(
    startup: Startup, running: Running
) -> Callable[[Server[AppState]], AbstractAsyncContextManager[AppState]]:
    @asynccontextmanager
    async def lifespan(server: Server[AppState]) -> AsyncGenerator[AppState]:
        signer = elicit.StateSigner.in_dir(startup.settings.state_dir)
        if isinstance(startup.codex, CodexMcpError):
            yield AppState(startup.codex, startup, signer)
            return
        assert startup.mode is not None  # prepare_startup chooses a mode whenever it found Codex
        async with SessionManager.open(
            startup.codex, startup.settings, startup.mode, startup.store
        ) as manager:
            running.manager = manager
            try:
                yield AppState(manager, startup, signer)
            finally:
                running.manager = None

    return lifespan


async def _list_tools(
    ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool.model_validate(tool_definition(n)) for n in TOOL_NAMES])


# The tools whose waiting calls may ask the client (and whose 2026-07-28 retries we take).
_ELICITING: Final = ("codex", "codex_reply", "codex_check")


async def _call_tool(
    ctx: ServerRequestContext[AppState], params: types.CallToolRequestParams
) -> types.CallToolResult | types.InputRequiredResult:
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
        call = handlers.Call(
            manager_or_error=state.manager_or_error,
            report_progress=_progress_reporter(ctx),
            heartbeat_s=state.startup.settings.heartbeat_s,
            backend=state.startup.mode,
            hosts=state.startup.settings.hosts,
            default_approvals=state.startup.settings.approvals,
            elicitor=_elicitor(ctx),
        )
        handler = _TOOLS[name]
        try:
            if params.request_state is not None or params.input_responses is not None:
                output = await _retry(ctx, params, arguments, call)
            else:
                output = await handler(arguments, call)
        except elicit.InputRequired as asking:
            return elicit.input_required(state.signer, name, asking)
        if not isinstance(output, output_model(name)):
            raise TypeError(f"{name} returned {type(output).__name__}, not {output_model(name).__name__}")
        payload = output_json(output)
        # The models check what they hold as it is built; this checks the whole result against the
        # published schema and its rules, for tests and for anyone who wants the second net.
        if state.startup.settings.validate_output:
            problems = output_problems(name, payload)
            if problems:
                logger.error("%s output breaks its published schema: %s", name, problems)
                raise CodexMcpError("INTERNAL", f"{name} produced an invalid result ({problems[0][1]})")
        return results.success(payload)
    except CodexMcpError as exc:
        return results.failure(exc)
    except Exception:  # the one boundary where any bug becomes a tool error, never a broken channel
        logger.exception("tool %s failed", name)
        return results.failure(CodexMcpError("INTERNAL", f"{name} failed unexpectedly; see the server log"))


def _elicitor(ctx: ServerRequestContext[AppState]) -> elicit.LegacyElicitor | elicit.ModernElicitor | None:
    """Who asks this call's client about approvals: none unless it declared form elicitation;
    `elicitation/create` on legacy connections, input-required results on 2026-07-28 ones."""
    manager = ctx.lifespan_context.manager_or_error
    if isinstance(manager, CodexMcpError) or not elicit.client_takes_forms(ctx.session.client_capabilities):
        return None
    if ctx.protocol_version >= elicit.MODERN_ERA:
        return elicit.ModernElicitor()
    session = ctx.session

    async def send(message: str, schema: dict[str, Any]) -> types.ElicitResult:
        return await session.elicit_form(message, cast(Any, schema), related_request_id=ctx.request_id)

    return elicit.LegacyElicitor(manager, send, ctx.protocol_version)


async def _retry(
    ctx: ServerRequestContext[AppState],
    params: types.CallToolRequestParams,
    arguments: Any,
    call: handlers.Call,
) -> ToolOutputModel:
    """A 2026-07-28 retry: the answers go to the session and requests our signed `requestState`
    names, then the call goes on where it stopped; a retry never starts a session or a turn."""
    name = params.name
    if name not in _ELICITING or params.request_state is None:
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            "inputResponses need the requestState this server returned with them"
            if name in _ELICITING
            else f"{name} takes no inputResponses or requestState",
            field="requestState",
        )
    state = ctx.lifespan_context.signer.open(params.request_state, name)
    named = getattr(arguments, "session_id", None)
    if named is not None and named != state.session_id:
        raise CodexMcpError(
            "INVALID_ARGUMENT", "requestState belongs to another session than sessionId", field="requestState"
        )
    manager = call.manager
    session = await manager.get(state.session_id)
    await elicit.apply_responses(manager, session, state, dict(params.input_responses or {}))
    if name == "codex_check":
        return await handlers.codex_check(arguments, call)
    return await handlers.resume_wait(arguments, session, call)


def _progress_reporter(ctx: ServerRequestContext[AppState]) -> Callable[[float, str], Awaitable[None]]:
    async def report(elapsed_s: float, message: str) -> None:
        await ctx.session.report_progress(elapsed_s, None, message)

    return report


def build_server(startup: Startup, running: Running | None = None) -> Server[AppState]:
    """The MCP server object with its handlers; `running` learns its session manager."""
    catalog = ResourceCatalog(ServerFacts(startup.settings, startup.codex, startup.mode))

    async def list_resources(
        ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return catalog.list_result()

    async def list_resource_templates(
        ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return catalog.templates_result()

    async def read_resource(
        ctx: ServerRequestContext[AppState], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await catalog.read_result(params.uri, ctx.lifespan_context.manager_or_error)

    server = Server(
        "codex-mcp",
        version=__version__,
        lifespan=_lifespan_for(startup, running or Running()),
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )
    tasks.install(server)  # MCP Tasks, for the clients that declare the extension
    return server


async def serve(startup: Startup, stdin: ThreadedStdin, wire: WireOut, early: EarlyAnswers) -> None:
    """Serve MCP on `stdin`/`wire` until the client disconnects (stdin EOF) or SIGTERM/SIGINT.

    On stdin EOF the lifespan gives running turns the drain time, then stops every Codex child. A
    signal is how clients stop a server, within 100-500 ms and with SIGKILL next: the first one ends
    running turns at once (recorded, replyable), stops every child and exits.
    """
    running = Running()
    server = build_server(startup, running)
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_stop_on_signals, startup, running)
            async with stdio_transport(stdin, wire, early) as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
            task_group.cancel_scope.cancel()
    finally:
        if startup.store is not None:
            startup.store.close()


async def _stop_on_signals(startup: Startup, running: Running) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for received in signals:
            name = signal.Signals(received).name
            started = time.monotonic()
            if running.manager is not None:
                running.manager.stop_now(f"the MCP client stopped codex-mcp ({name})")
            if startup.store is not None:
                startup.store.close()
            logger.warning("%s: stopped in %.0f ms", name, (time.monotonic() - started) * 1000)
            logging.shutdown()
            # Everything is saved and every child is gone; the client's SIGKILL may be 100 ms away,
            # and unwinding the SDK's tasks and the interpreter would take longer than that.
            os._exit(0)
