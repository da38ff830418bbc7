"""Requests Codex sends us: answered at once, or held as `actions[]` until answered or expired."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel

from codex_mcp.errors import AppServerClosedError, CodexMcpError
from codex_mcp.sessions import approvals
from codex_mcp.sessions.backend import Responder
from codex_mcp.sessions.events import now_iso
from codex_mcp.sessions.session import PendingRequest, Session
from codex_mcp.wire.app_server import ServerRequest
from codex_mcp.wire.methods import MCP_SERVER_ELICITATION_REQUEST

# Bound on answering Codex when we decline on the caller's behalf (timeout, cancel).
ANSWER_TIMEOUT_S: Final = 5.0


class CodexRequests:
    """Holds, expires and answers the requests of every session; runs its timers in `task_group`."""

    def __init__(self, task_group: TaskGroup) -> None:
        self._tg = task_group

    async def receive(self, responder: Responder, session: Session | None, message: ServerRequest) -> None:
        """Answer `message` now, or record it as a pending action of `session`."""
        params = dict(message.raw_params)
        interactive = approvals.INTERACTIVE.get(message.method)
        if interactive is None:
            result, error = approvals.immediate_answer(message.method)
            if result is not None:
                await responder.respond(message.id, result)
            else:
                await responder.respond_error(message.id, approvals.UNSUPPORTED_CODE, error or "unsupported")
            if session is not None:
                session.buffer.append("progress", {"method": message.method, "answered": result is not None})
            return
        if session is None or session.status in ("cancelled", "error"):
            await responder.respond(message.id, approvals.declined_response(message.method))
            return
        replayed = _replay_of(session, message)
        if replayed is not None:
            await self._resume_waiting(responder, session, replayed)
            return
        is_mcp = message.method == MCP_SERVER_ELICITATION_REQUEST
        kind = approvals.mcp_kind(params) if is_mcp else interactive.kind
        timeout_s = session.settings.approval_timeout_s
        request = PendingRequest(
            request_id=f"req_{uuid.uuid4().hex[:8]}",
            codex_id=message.id,
            method=message.method,
            action_type=interactive.action_type,
            kind=kind,
            params=params,
            created_at=now_iso(),
            expires_at=(datetime.now(UTC) + timedelta(seconds=timeout_s)).isoformat(timespec="milliseconds"),
            available_decisions=approvals.offered_decisions(params),
        )
        session.pending[request.request_id] = request
        session.refresh_status()
        session.touch()
        session.last_method = message.method
        session.buffer.append(
            "approval_request",
            {"method": message.method, "requestId": request.request_id, "kind": kind, **params},
        )
        self._tg.start_soon(self._expire, responder, session, request)

    async def _resume_waiting(self, responder: Responder, session: Session, request: PendingRequest) -> None:
        """A request an earlier server showed, which Codex asks again on our connection (it resumed
        the thread): the same action, answered here; declined at once if it expired meanwhile."""
        remaining = (datetime.fromisoformat(request.expires_at) - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            self.resolve(session, request, decision="decline", timeout=True)
            with anyio.move_on_after(ANSWER_TIMEOUT_S):
                await responder.respond(request.codex_id, approvals.declined_response(request.method))
            session.buffer.notify()
            return
        self._tg.start_soon(self._expire, responder, session, request, remaining)

    async def _expire(
        self, responder: Responder, session: Session, request: PendingRequest, after_s: float | None = None
    ) -> None:
        with anyio.CancelScope() as scope:
            request.timeout_scope = scope
            await anyio.sleep(session.settings.approval_timeout_s if after_s is None else after_s)
            if request.request_id not in session.pending:
                return
            self.resolve(session, request, decision="decline", timeout=True)
            with anyio.move_on_after(ANSWER_TIMEOUT_S):
                await responder.respond(request.codex_id, approvals.declined_response(request.method))

    @staticmethod
    def pending(session: Session, request_id: str) -> PendingRequest:
        """A pending request of `session`, or REQUEST_NOT_FOUND."""
        request = session.pending.get(request_id)
        if request is None:
            raise CodexMcpError(
                "REQUEST_NOT_FOUND", f"no pending request {request_id!r} in this session", field="requestId"
            )
        return request

    @staticmethod
    def resolve(
        session: Session,
        request: PendingRequest,
        *,
        decision: str,
        timeout: bool = False,
        deny_message: str | None = None,
    ) -> None:
        """Take `request` out of the session's actions and record how it ended."""
        session.pending.pop(request.request_id, None)
        if request.timeout_scope is not None and not timeout:
            request.timeout_scope.cancel()
        data: dict[str, Any] = {
            "method": request.method,
            "requestId": request.request_id,
            "kind": request.kind,
            "decision": decision,
        }
        if timeout:
            data["timeout"] = True
        if deny_message:
            data["denyMessage"] = deny_message
        session.buffer.append("approval_result", data)
        session.refresh_status()
        session.touch()

    async def decline_all(self, responder: Responder | None, session: Session) -> None:
        """Cancel every pending request of `session`, telling Codex when it is still there."""
        for request in list(session.pending.values()):
            self.resolve(session, request, decision="cancel")
            if responder is not None:
                with anyio.move_on_after(ANSWER_TIMEOUT_S):
                    await responder.respond(request.codex_id, approvals.declined_response(request.method))

    async def respond_permission(
        self,
        responder: Responder | None,
        session: Session,
        request_id: str,
        *,
        decision: str,
        execpolicy_amendment: list[str] | None,
        network_policy_amendment: dict[str, Any] | None,
        deny_message: str | None,
    ) -> None:
        """Answer an approval with `decision`, once checked against what the request offers."""
        request = self.pending(session, request_id)
        if request.action_type != "approval":
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"{request_id} asks questions; answer it with respond_user_input",
                field="action",
            )
        result = approvals.permission_response(
            request.method,
            request.params,
            request.available_decisions,
            decision=decision,
            execpolicy_amendment=execpolicy_amendment,
            network_policy_amendment=network_policy_amendment,
        )
        await self._answer(responder, session, request, result, decision=decision, deny_message=deny_message)

    async def respond_user_input(
        self,
        responder: Responder | None,
        session: Session,
        request_id: str,
        answers: dict[str, Any],
    ) -> None:
        """Answer a question request."""
        request = self.pending(session, request_id)
        if request.action_type != "user_input":
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"{request_id} is an approval; answer it with respond_permission",
                field="action",
            )
        result = approvals.user_input_response(answers)
        await self._answer(responder, session, request, result, decision="answered")

    async def _answer(
        self,
        responder: Responder | None,
        session: Session,
        request: PendingRequest,
        result: BaseModel,
        *,
        decision: str,
        deny_message: str | None = None,
    ) -> None:
        if responder is None:
            raise CodexMcpError("SESSION_NOT_RUNNING", "the Codex process of this session has exited")
        try:
            await responder.respond(request.codex_id, result)
        except AppServerClosedError as exc:
            raise CodexMcpError("INTERNAL", f"could not deliver the answer: {exc}") from exc
        self.resolve(session, request, decision=decision, deny_message=deny_message)
        session.buffer.notify()


def _replay_of(session: Session, message: ServerRequest) -> PendingRequest | None:
    """The pending request of `session` that `message` asks again (same Codex id and method)."""
    for request in session.pending.values():
        if request.codex_id == message.id and request.method == message.method:
            return request
    return None
