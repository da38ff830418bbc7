"""MCP Tasks (`io.modelcontextprotocol/tasks`, SEP-2663, protocol 2026-07-28), hand-rolled on the
SDK's lowlevel Server until the SDK has its own: everything about it lives in this module.

- `install` advertises the extension and registers `tasks/get`, `tasks/update` and `tasks/cancel`;
  it wraps `tools/call` so that a `codex`/`codex_reply` call whose request declared the extension
  (in `_meta` clientCapabilities) and whose turn still runs answers with a task handle instead.
  Every other call, and every client that does not declare the extension, gets what it got before.
- A task is one Codex turn. Its id is `<sessionId>:<turnId>:<createdMs>:<tool>`: everything a later
  `tasks/get` needs is in the id and in the session, which the state directory keeps, so an id
  stays valid across a restart of the server (the next server adopts the session).
- Status: `working` while the turn runs; `input_required` while it waits on approvals or questions
  (the session's `actions`, each an `elicitation/create` form keyed by its requestId, answered by
  `tasks/update` through the same manager calls as `codex_check respond_*`); `completed` once the
  turn ended, with the CallToolResult of the call as if it had waited for the turn: the tool's own
  output (clients check a task's result against the tool's outputSchema: the Inspector does),
  carrying the turn's `result` exactly as `codex_check` poll shows it; `cancelled` when the turn
  was interrupted (`tasks/cancel` interrupts it) or the session cancelled; `failed` when the
  session has run a later turn since (only the last turn's result is kept).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, cast

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from codex_mcp.errors import CodexMcpError, redact
from codex_mcp.server import results
from codex_mcp.server.elicit import questions
from codex_mcp.server.startup import Startup
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.polling import turn_output
from codex_mcp.sessions.session import TERMINAL, PendingRequest, Session
from codex_mcp.wire.tasks import (
    DetailedTask,
    InputRequest,
    InputResponse,
    ParamsError,
    TaskError,
    TaskHandle,
    TasksCancelParams,
    TasksGetParams,
    TaskStatus,
    TasksUpdateParams,
    parse_params,
    task_json,
)
from codex_mcp.wire.tools import CodexOutput, CodexReplyOutput, output_json, output_problems

logger = logging.getLogger(__name__)

EXTENSION: Final = "io.modelcontextprotocol/tasks"
TASKS_GET: Final = "tasks/get"
TASKS_UPDATE: Final = "tasks/update"
TASKS_CANCEL: Final = "tasks/cancel"
# The tools whose call may become a task: those that start a Codex turn.
TASK_TOOLS: Final = frozenset({"codex", "codex_reply"})
POLL_INTERVAL_MS: Final = 1500
# JSON-RPC codes (the spec: an unknown or expired task is -32602).
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# The decisions a form offers when Codex lists none (file changes); amendment decisions need the
# amendment, so they are offered only when Codex proposed one.
_DEFAULT_DECISIONS: Final = ("accept", "acceptForSession", "decline", "cancel")
_SHOWN_ID: Final = 80


class _State(Protocol):
    """What tasks need of the lifespan state (`app.AppState`)."""

    manager_or_error: SessionManager | CodexMcpError
    startup: Startup


def install(server: Server[Any]) -> None:
    """Advertise the extension, register its methods and let `codex`/`codex_reply` answer with a
    task. Call after the Server has its `tools/call` handler."""
    server.extensions[EXTENSION] = {}
    entry = server.get_request_handler("tools/call")
    if entry is None:
        raise RuntimeError("install tasks after the server has its tools/call handler")
    inner = entry.handler

    async def call_tool(ctx: ServerRequestContext[Any], params: Any) -> Any:
        result = await inner(ctx, params)
        tool = getattr(params, "name", None)
        if tool not in TASK_TOOLS or not declares_tasks(ctx):
            return result
        try:
            return await _as_task(ctx, str(tool), result)
        except Exception:  # the call itself succeeded: a task that cannot be made is its plain answer
            logger.exception("could not answer %s with a task; answering plainly", tool)
            return result

    server.add_request_handler("tools/call", entry.params_type, call_tool)
    server.add_request_handler(TASKS_GET, types.RequestParams, tasks_get)
    server.add_request_handler(TASKS_UPDATE, types.RequestParams, tasks_update)
    server.add_request_handler(TASKS_CANCEL, types.RequestParams, tasks_cancel)


def declares_tasks(ctx: ServerRequestContext[Any]) -> bool:
    """The request declared the extension (2026-07-28 `_meta` clientCapabilities.extensions)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS or not ctx.meta:
        return False
    capabilities = cast(Mapping[str, Any], ctx.meta).get(types.CLIENT_CAPABILITIES_META_KEY)
    if not isinstance(capabilities, Mapping):
        return False
    extensions = cast(Mapping[str, Any], capabilities).get("extensions")
    return isinstance(extensions, Mapping) and EXTENSION in extensions


# --- task ids -------------------------------------------------------------------------------


def task_id_for(session_id: str, turn_id: str, created_ms: int, tool: str) -> str:
    """The task id of a turn started by `tool` (codex | codex_reply): what `parse_task_id` reads."""
    return f"{session_id}:{turn_id}:{created_ms}:{tool}"


def parse_task_id(task_id: str) -> tuple[str, str, int, str]:
    """(session id, turn id, created ms, tool) of a task id, or INVALID_PARAMS naming taskId."""
    parts = task_id.rsplit(":", 2)
    head, created, tool = parts if len(parts) == 3 else ("", "", "")
    session_id, _, turn_id = head.partition(":")
    valid = session_id and turn_id and created.isascii() and created.isdigit() and tool in TASK_TOOLS
    if not valid:
        raise _no_task(task_id)
    return session_id, turn_id, int(created), tool


def _no_task(task_id: str) -> MCPError:
    shown = task_id if len(task_id) <= _SHOWN_ID else task_id[:_SHOWN_ID] + "..."
    return MCPError(INVALID_PARAMS, f"taskId: no task {shown!r}", {"field": "taskId"})


def _iso(ms: int) -> str:
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        moment = datetime.fromtimestamp(0, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- tools/call -> a task handle ------------------------------------------------------------


async def _as_task(ctx: ServerRequestContext[Any], tool: str, result: Any) -> Any:
    """`result` (the tool's CallToolResult) as a task handle when its turn still runs; else as is."""
    if not isinstance(result, types.CallToolResult) or result.is_error:
        return result
    structured: dict[str, Any] = result.structured_content or {}
    session_id = structured.get("sessionId")
    if not isinstance(session_id, str) or structured.get("steered") is not None:
        return result  # a steer joins a turn an earlier call started: no task of its own
    state = cast(_State, ctx.lifespan_context)
    manager = state.manager_or_error
    if isinstance(manager, CodexMcpError):
        return result
    session = await manager.lookup(session_id)
    turn_id = session.active_turn_id
    if session.status in TERMINAL or session.read_only or turn_id is None:
        return result  # done already (or not ours to follow): the plain answer says everything
    # The spec: no handle before tasks/get on it would succeed, on this server or the next one.
    manager.save_now(session)
    created_ms = int(datetime.now(UTC).timestamp() * 1000)
    task_id = task_id_for(session_id, turn_id, created_ms, tool)
    status, message = _live_status(session)
    handle = TaskHandle(
        result_type="task",
        task_id=task_id,
        status=status,
        status_message=message,
        created_at=_iso(created_ms),
        last_updated_at=session.last_active_at,
        ttl_ms=_ttl_ms(state),
        poll_interval_ms=POLL_INTERVAL_MS,
    )
    logger.info("tools/call answered with task %s", task_id)
    return task_json(handle)


def _ttl_ms(state: _State) -> int:
    """How long a running session lives unattended: the task's lifetime hint."""
    return int(state.startup.settings.ttl.running_s * 1000)


def _live_status(session: Session) -> tuple[TaskStatus, str]:
    if session.pending:
        count = len(session.pending)
        return "input_required", f"waiting for {count} answer{'s' if count > 1 else ''}"
    progress = session.progress()
    last = f" ({progress.last_method})" if progress.last_method else ""
    return "working", f"{progress.phase}{last}"


# --- tasks/get ------------------------------------------------------------------------------


def _parse(model: Any, params: Mapping[str, Any] | None) -> Any:
    try:
        return parse_params(model, params)
    except ParamsError as problem:
        raise MCPError(INVALID_PARAMS, str(problem), {"field": problem.field}) from None


@dataclass(frozen=True)
class _Task:
    state: _State
    session: Session
    turn_id: str
    created_ms: int
    tool: str


async def _session_of(ctx: ServerRequestContext[Any], task_id: str) -> _Task:
    session_id, turn_id, created_ms, tool = parse_task_id(task_id)
    state = cast(_State, ctx.lifespan_context)
    manager = state.manager_or_error
    if isinstance(manager, CodexMcpError):
        raise MCPError(INTERNAL_ERROR, redact(manager.message), {"code": manager.code})
    try:
        session = await manager.lookup(session_id)
    except CodexMcpError as exc:
        if exc.code in ("SESSION_NOT_FOUND", "INVALID_ARGUMENT"):  # no session, or no session id
            raise _no_task(task_id) from None
        raise _rpc_error(exc) from None
    if turn_id != session.active_turn_id and turn_id not in session.ended_turn_ids:
        raise _no_task(task_id)
    return _Task(state, session, turn_id, created_ms, tool)


def _rpc_error(exc: CodexMcpError) -> MCPError:
    data: dict[str, Any] = {"code": exc.code}
    if exc.field is not None:
        data["field"] = exc.field
    code = INVALID_PARAMS if exc.code in ("INVALID_ARGUMENT", "REQUEST_NOT_FOUND") else INTERNAL_ERROR
    return MCPError(code, redact(exc.message), data)


async def tasks_get(ctx: ServerRequestContext[Any], params: types.RequestParams) -> dict[str, Any]:
    """The task's status; its input requests while it waits; its result once done."""
    args = cast(TasksGetParams, _parse(TasksGetParams, ctx.params))
    found = await _session_of(ctx, args.task_id)
    state, session, turn_id = found.state, found.session, found.turn_id
    task = DetailedTask(
        result_type="complete",
        task_id=args.task_id,
        status="working",
        created_at=_iso(found.created_ms),
        last_updated_at=session.last_active_at,
        ttl_ms=_ttl_ms(state),
    )
    ended = session.result if session.result and session.result.get("turnId") == turn_id else None
    if session.status == "cancelled":
        task.status, task.status_message = "cancelled", session.cancelled_reason or "session cancelled"
    elif turn_id == session.active_turn_id and session.status not in TERMINAL:
        task.status, task.status_message = _live_status(session)
        task.poll_interval_ms = POLL_INTERVAL_MS
        if session.pending:
            task.input_requests = {key: input_request(req) for key, req in session.pending.items()}
    elif ended is not None:
        task.last_updated_at = str(ended.get("completedAt") or session.last_active_at)
        turn_status = str(ended.get("status"))
        if turn_status in ("interrupted", "cancelled"):
            task.status, task.status_message = "cancelled", f"the turn was {turn_status}"
        else:
            task.status, task.status_message = "completed", f"the turn {turn_status}"
            task.result = await _final_result(state, session, found.tool)
    else:  # ended turns are remembered, results only of the last
        task.status, task.status_message = _superseded(task)
    return task_json(task)


def _superseded(task: DetailedTask) -> tuple[TaskStatus, str]:
    message = (
        "the session has run a later turn since this one; the server keeps the result of the last "
        "turn only: codex_check poll the session for its events"
    )
    task.error = TaskError(code=INTERNAL_ERROR, message=message)
    return "failed", message


async def _noop_heartbeat(elapsed_s: float) -> None:
    return None


async def _final_result(state: _State, session: Session, tool: str) -> dict[str, Any]:
    """The CallToolResult of the call that became the task, as if it had waited for the turn: the
    tool's own output (its outputSchema is what clients check the task's result against), with the
    turn's `result` as codex_check poll shows it."""
    try:
        if tool == "codex_reply":
            reply = await turn_output(session, None, [], _noop_heartbeat, 15.0, model=CodexReplyOutput)
            payload = output_json(reply)
        else:
            started = await turn_output(session, None, [], _noop_heartbeat, 15.0, model=CodexOutput)
            payload = output_json(started)
        if state.startup.settings.validate_output:
            problems = output_problems(tool, payload)
            if problems:
                logger.error("task result breaks %s's published schema: %s", tool, problems)
                raise CodexMcpError("INTERNAL", f"the task result is invalid ({problems[0][1]})")
        called = results.success(payload)
    except CodexMcpError as exc:
        called = results.failure(exc)
    return called.model_dump(by_alias=True, mode="json", exclude_none=True)


# --- input requests: the session's actions as elicitation forms -----------------------------


def _offered(request: PendingRequest) -> list[str]:
    decisions = list(request.available_decisions or _DEFAULT_DECISIONS)
    if not isinstance(request.params.get("proposedExecpolicyAmendment"), list):
        decisions = [d for d in decisions if d != "acceptWithExecpolicyAmendment"]
    return [d for d in decisions if d != "applyNetworkPolicyAmendment"]


def input_request(request: PendingRequest) -> InputRequest:
    """A pending approval or question as an `elicitation/create` form."""
    params = request.params
    if request.action_type == "user_input":
        properties: dict[str, Any] = {}
        for question in questions(request):
            prop: dict[str, Any] = {"type": "string"}
            if isinstance(question.get("header"), str):
                prop["title"] = question["header"]
            if isinstance(question.get("question"), str):
                prop["description"] = question["question"]
            options = question.get("options")
            if isinstance(options, list) and not question.get("isOther"):
                labels = [
                    str(cast(dict[str, Any], o).get("label"))
                    for o in cast(list[object], options)
                    if isinstance(o, dict)
                ]
                if labels:
                    prop["enum"] = labels
            properties[str(question["id"])] = prop
        schema: dict[str, Any] = {"type": "object", "properties": properties, "required": list(properties)}
        message = "Codex asks"
    else:
        schema = {
            "type": "object",
            "properties": {"decision": {"type": "string", "title": "Decision", "enum": _offered(request)}},
            "required": ["decision"],
        }
        command, reason = params.get("command"), params.get("reason")
        if request.kind == "command" and command:
            message = f"Codex wants to run: {command}"
            if isinstance(params.get("cwd"), str):
                message += f" (in {params['cwd']})"
        elif request.kind == "fileChange":
            message = "Codex wants to change files"
        else:
            message = f"Codex asks for approval ({request.kind})"
        if isinstance(reason, str) and reason:
            message += f": {reason}"
    return InputRequest(
        method="elicitation/create",
        params={"mode": "form", "message": message, "requestedSchema": schema},
    )


# --- tasks/update ---------------------------------------------------------------------------


async def tasks_update(ctx: ServerRequestContext[Any], params: types.RequestParams) -> dict[str, Any]:
    """Answer input requests. Unknown and already answered keys are ignored; `cancel` leaves the
    request pending (its approval timer goes on, and polling still sees it)."""
    args = cast(TasksUpdateParams, _parse(TasksUpdateParams, ctx.params))
    found = await _session_of(ctx, args.task_id)
    session, manager = found.session, found.state.manager_or_error
    assert not isinstance(manager, CodexMcpError)  # a session was found, so there is a manager
    for key, response in args.input_responses.items():
        request = session.pending.get(key)
        if request is None or response.action == "cancel":
            continue
        try:
            await _answer(manager, session, request, response, f"inputResponses.{key}")
        except CodexMcpError as exc:
            if exc.code == "REQUEST_NOT_FOUND":
                continue  # answered meanwhile (or expired): already-answered keys are ignored
            raise _rpc_error(exc) from None
    return {}


async def _answer(
    manager: SessionManager, session: Session, request: PendingRequest, response: InputResponse, where: str
) -> None:
    content = response.content or {}
    if request.action_type == "user_input":
        answers: dict[str, Any] = {}
        if response.action == "accept":
            for question in questions(request):
                qid = str(question["id"])
                value = content.get(qid)
                if value is None:
                    continue
                texts = (
                    [str(v) for v in cast(list[object], value)] if isinstance(value, list) else [str(value)]
                )
                answers[qid] = {"answers": texts}
        await manager.respond_user_input(session.session_id, request.request_id, answers)
        return
    decision = "decline" if response.action == "decline" else content.get("decision")
    if not isinstance(decision, str) or decision not in _offered(request):
        offered = ", ".join(_offered(request))
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            f"{where}.content.decision: one of {offered} is required to accept",
            field=f"{where}.content.decision",
        )
    amendment = request.params.get("proposedExecpolicyAmendment")
    await manager.respond_permission(
        session.session_id,
        request.request_id,
        decision=decision,
        execpolicy_amendment=[str(p) for p in cast(list[object], amendment)]
        if decision == "acceptWithExecpolicyAmendment" and isinstance(amendment, list)
        else None,
        network_policy_amendment=None,
        deny_message=None,
    )


# --- tasks/cancel ---------------------------------------------------------------------------


async def tasks_cancel(ctx: ServerRequestContext[Any], params: types.RequestParams) -> dict[str, Any]:
    """Interrupt the task's turn if it still runs (cooperative: it may still end completed)."""
    args = cast(TasksCancelParams, _parse(TasksCancelParams, ctx.params))
    found = await _session_of(ctx, args.task_id)
    session, turn_id, manager = found.session, found.turn_id, found.state.manager_or_error
    assert not isinstance(manager, CodexMcpError)  # a session was found, so there is a manager
    if turn_id == session.active_turn_id and session.status in ("running", "waiting_approval"):
        try:
            await manager.interrupt(session.session_id)
        except CodexMcpError as exc:
            if exc.code != "SESSION_NOT_RUNNING":  # it ended meanwhile: nothing left to cancel
                raise _rpc_error(exc) from None
    return {}
