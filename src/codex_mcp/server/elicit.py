"""Approvals and questions asked as MCP elicitations (`advanced.approvals: "elicit"`).

A pending request becomes a form that offers exactly the decisions the request allows; the answer
goes back through the same `respond_permission`/`respond_user_input` a polling caller uses, so the
events show it the same way. Two eras:

- legacy (`initialize`): `elicitation/create` sent from inside the waiting call;
- 2026-07-28 (no server->client requests): the call returns an input-required result whose
  `requestState` we sign; the client calls the same tool again with the answers and that state,
  and the retry continues the same session (never starts one).

accept -> the chosen decision; decline -> decline; cancel or no answer -> the request stays in
`actions` and its auto-decline timer runs. Each request is asked once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import shlex
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, cast

import anyio
import mcp_types as types

from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.session import PendingRequest, Session
from codex_mcp.wire.methods import (
    ITEM_COMMAND_EXECUTION_REQUEST_APPROVAL,
    ITEM_FILE_CHANGE_REQUEST_APPROVAL,
    ITEM_PERMISSIONS_REQUEST_APPROVAL,
    MCP_SERVER_ELICITATION_REQUEST,
)
from codex_mcp.wire.server_requests import INTERACTIVE

logger = logging.getLogger(__name__)

# The protocol revisions without server->client requests (the retry path).
MODERN_ERA: Final = "2026-07-28"
_KEY_FILE: Final = "elicitation.key"
_STATE_VERSION: Final = 1
_DECISION_FIELD: Final = "decision"
_LABELS: Final = {
    "accept": "Accept (this time)",
    "acceptForSession": "Accept for the rest of this session",
    "decline": "Decline (the turn goes on)",
    "cancel": "Decline and stop the turn",
}


@dataclass(frozen=True)
class Choice:
    """One decision the form offers, as `respond_permission` takes it."""

    decision: str
    label: str
    execpolicy_amendment: list[str] | None = None
    network_policy_amendment: dict[str, Any] | None = None


@dataclass(frozen=True)
class Form:
    """An elicitation form for one pending request."""

    message: str
    schema: dict[str, Any]
    # The decision values the form offers (approvals); empty for questions.
    choices: dict[str, Choice] = field(default_factory=lambda: {})


@dataclass(frozen=True)
class PermissionAnswer:
    choice: Choice


@dataclass(frozen=True)
class UserInputAnswer:
    answers: dict[str, Any]


Answer = PermissionAnswer | UserInputAnswer


def supported(request: PendingRequest) -> bool:
    """Whether `request` can be asked as a form: approvals of commands, file changes, permissions
    and MCP tool calls, and questions none of which is secret (forms must not ask for secrets)."""
    if request.action_type == "user_input":
        asked = questions(request)
        return bool(asked) and not any(q.get("isSecret") for q in asked)
    if request.method == MCP_SERVER_ELICITATION_REQUEST:
        return request.kind == "mcpToolCall"
    return request.method in INTERACTIVE


def build_form(session: Session, request: PendingRequest, *, titled: bool = True) -> Form:
    """The form asking about `request` (see `supported`). Choices carry their labels as a titled
    enum (`oneOf` of `const`/`title`, 2025-11-25 on); `titled=False` spells them `enum` plus
    `enumNames`, as clients of older revisions (Codex speaks 2025-06-18) read them."""
    if request.action_type == "user_input":
        return _question_form(session, request, titled=titled)
    choices = decision_choices(request)
    decision = {"type": "string", "title": "Decision", **_enum(choices, titled), "default": "decline"}
    schema = {"type": "object", "properties": {_DECISION_FIELD: decision}, "required": [_DECISION_FIELD]}
    return Form(_approval_message(session, request), schema, choices)


def _enum(labels: dict[str, Choice] | dict[str, str], titled: bool) -> dict[str, Any]:
    """A string choice among `labels` (value -> label or Choice), titled or as enum/enumNames."""
    named = {value: label if isinstance(label, str) else label.label for value, label in labels.items()}
    if titled:
        return {"oneOf": [{"const": value, "title": label} for value, label in named.items()]}
    return {"enum": list(named), "enumNames": list(named.values())}


# The first protocol revision with titled enums (`oneOf` of const/title) in elicitation forms.
TITLED_ENUMS_FROM: Final = "2025-11-25"


def decision_choices(request: PendingRequest) -> dict[str, Choice]:
    """The decisions `request` allows, keyed by the form value that picks each: Codex's
    `availableDecisions` when it sent them (amendments labelled by what they allow), else what the
    request kind takes. Declining is always among them, as `respond_permission` allows."""
    params = request.params
    choices: dict[str, Choice] = {}
    raw = params.get("availableDecisions")
    entries: list[object] = list(cast(list[object], raw)) if isinstance(raw, list) else []
    if not entries:
        for name in INTERACTIVE[request.method].decisions:
            if name == "acceptWithExecpolicyAmendment":
                entries.append({name: {"execpolicy_amendment": params.get("proposedExecpolicyAmendment")}})
            elif name == "applyNetworkPolicyAmendment":
                proposed = params.get("proposedNetworkPolicyAmendments")
                for amendment in cast(list[object], proposed) if isinstance(proposed, list) else []:
                    entries.append({name: {"network_policy_amendment": amendment}})
            else:
                entries.append(name)
    for entry in entries:
        choice = _choice(entry)
        if choice is None:
            continue
        value = choice.decision
        if value in choices:  # several network amendments: one value per host
            value = f"{value}:{len(choices)}"
        choices[value] = choice
    if not any(c.decision == "decline" for c in choices.values()):
        choices["decline"] = Choice("decline", _LABELS["decline"])
    return choices


def _choice(entry: object) -> Choice | None:
    if isinstance(entry, str):
        return Choice(entry, _LABELS.get(entry, entry))
    if not isinstance(entry, dict) or len(cast(dict[str, Any], entry)) != 1:
        return None
    ((name, body),) = cast(dict[str, Any], entry).items()
    inner = cast(dict[str, Any], body) if isinstance(body, dict) else {}
    if name == "acceptWithExecpolicyAmendment":
        prefix = inner.get("execpolicy_amendment")
        if not isinstance(prefix, list) or not prefix:
            return None
        words = [str(word) for word in cast(list[object], prefix)]
        label = f"Accept, and from now on allow commands starting with: {shlex.join(words)}"
        return Choice(name, label, execpolicy_amendment=words)
    if name == "applyNetworkPolicyAmendment":
        amendment = inner.get("network_policy_amendment")
        if not isinstance(amendment, dict):
            return None
        rule = cast(dict[str, Any], amendment)
        label = f"Apply network rule: {rule.get('action', '?')} {rule.get('host', '?')}"
        return Choice(name, label, network_policy_amendment=rule)
    return None


def _approval_message(session: Session, request: PendingRequest) -> str:
    params = request.params
    lines: list[str] = []
    if request.method == ITEM_COMMAND_EXECUTION_REQUEST_APPROVAL:
        lines.append(f"Codex wants to run: {params.get('command') or '(command not given)'}")
        if params.get("cwd"):
            lines.append(f"in {params['cwd']}")
    elif request.method == ITEM_FILE_CHANGE_REQUEST_APPROVAL:
        lines.append("Codex wants to change files.")
        if params.get("grantRoot"):
            lines.append(f"It asks for write access to {params['grantRoot']}")
    elif request.method == ITEM_PERMISSIONS_REQUEST_APPROVAL:
        lines.append(f"Codex asks for permissions: {json.dumps(params.get('permissions'), sort_keys=True)}")
    else:
        lines.append(str(params.get("message") or "Codex asks to call an MCP tool."))
    if params.get("reason"):
        lines.append(f"Reason: {params['reason']}")
    lines.append(f"(codex-mcp session {session.session_id}, request {request.request_id})")
    return "\n".join(lines)


def questions(request: PendingRequest) -> list[dict[str, Any]]:
    """The questions of a user-input request that carry an id (the ones that can be answered)."""
    raw = request.params.get("questions")
    if not isinstance(raw, list):
        return []
    return [cast(dict[str, Any], q) for q in cast(list[object], raw) if isinstance(q, dict) and "id" in q]


def _question_form(session: Session, request: PendingRequest, *, titled: bool) -> Form:
    properties: dict[str, Any] = {}
    for question in questions(request):
        prop: dict[str, Any] = {
            "type": "string",
            "title": str(question.get("header") or question["id"]),
            "description": str(question.get("question") or ""),
        }
        raw_options = question.get("options")
        options = [
            cast(dict[str, Any], o) for o in cast(list[object], raw_options or []) if isinstance(o, dict)
        ]
        if options and not question.get("isOther"):
            prop.update(_enum({str(o["label"]): _option_title(o) for o in options if o.get("label")}, titled))
        elif options:
            prop["description"] += " Options: " + "; ".join(_option_title(o) for o in options)
        properties[str(question["id"])] = prop
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    message = f"Codex asks (codex-mcp session {session.session_id}, request {request.request_id})"
    return Form(message, schema)


def _option_title(option: dict[str, Any]) -> str:
    label, description = str(option.get("label") or ""), str(option.get("description") or "")
    return f"{label}: {description}" if description else label


def translate(
    form: Form, request: PendingRequest, action: str, content: dict[str, Any] | None
) -> Answer | None:
    """The answer an elicitation result gives `request`: accept -> the chosen decision (or the
    answers), decline -> decline (no answers); cancel, or an accept the form does not allow -> None,
    the request stays pending."""
    if action == "decline":
        if request.action_type == "user_input":
            return UserInputAnswer({})
        return PermissionAnswer(Choice("decline", _LABELS["decline"]))
    if action != "accept":
        return None
    content = content or {}
    if request.action_type == "user_input":
        answers: dict[str, Any] = {}
        for key in form.schema["properties"]:
            value = content.get(key)
            if value is None:
                return None
            values = cast(list[object], value) if isinstance(value, list) else [value]
            answers[key] = {"answers": [str(v) for v in values]}
        return UserInputAnswer(answers)
    chosen = content.get(_DECISION_FIELD)
    choice = form.choices.get(chosen) if isinstance(chosen, str) else None
    return PermissionAnswer(choice) if choice is not None else None


class Answering(Protocol):
    """What answers a pending request: the session manager."""

    async def respond_permission(
        self,
        session_id: str,
        request_id: str,
        *,
        decision: str,
        execpolicy_amendment: list[str] | None,
        network_policy_amendment: dict[str, Any] | None,
        deny_message: str | None,
    ) -> Session: ...

    async def respond_user_input(
        self, session_id: str, request_id: str, answers: dict[str, Any]
    ) -> Session: ...


async def apply(manager: Answering, session: Session, request: PendingRequest, answer: Answer) -> bool:
    """Answer `request` as the polling tools would; False when it was no longer pending (answered
    elsewhere, or its timer declined it meanwhile)."""
    try:
        if isinstance(answer, UserInputAnswer):
            await manager.respond_user_input(session.session_id, request.request_id, answer.answers)
        else:
            choice = answer.choice
            await manager.respond_permission(
                session.session_id,
                request.request_id,
                decision=choice.decision,
                execpolicy_amendment=choice.execpolicy_amendment,
                network_policy_amendment=choice.network_policy_amendment,
                deny_message=None,
            )
    except CodexMcpError as exc:
        if exc.code != "REQUEST_NOT_FOUND":
            raise
        return False
    return True


def _new_requests(session: Session) -> list[PendingRequest]:
    """The pending requests of an "elicit" session not asked yet, marked asked."""
    if session.settings.approvals != "elicit" or session.read_only:
        return []
    fresh = [r for r in session.pending.values() if not r.elicited and supported(r)]
    for request in fresh:
        request.elicited = True
    return fresh


def client_takes_forms(capabilities: types.ClientCapabilities | None) -> bool:
    """Whether the client declared form elicitation (an empty `elicitation` means form)."""
    if capabilities is None or capabilities.elicitation is None:
        return False
    elicitation = capabilities.elicitation
    return elicitation.form is not None or elicitation.url is None


class FormSender(Protocol):
    """The legacy era's `ServerSession.elicit_form`."""

    async def __call__(self, message: str, schema: dict[str, Any]) -> types.ElicitResult: ...


class LegacyElicitor:
    """Asks with `elicitation/create` from inside the waiting call."""

    def __init__(
        self, manager: Answering, send: FormSender, protocol_version: str = TITLED_ENUMS_FROM
    ) -> None:
        self._manager = manager
        self._send = send
        self._titled = protocol_version >= TITLED_ENUMS_FROM

    async def offer(self, session: Session) -> None:
        for request in _new_requests(session):
            form = build_form(session, request, titled=self._titled)
            remaining = (datetime.fromisoformat(request.expires_at) - datetime.now(UTC)).total_seconds()
            result: types.ElicitResult | None = None
            with anyio.move_on_after(max(remaining, 0.0)):
                try:
                    result = await self._send(form.message, form.schema)
                except Exception as exc:  # the client refused or broke: the request stays for polling
                    logger.warning("elicitation of %s failed: %s", request.request_id, exc)
            if result is None or request.request_id not in session.pending:
                continue
            answer = translate(form, request, result.action, _content(result))
            if answer is not None:
                await apply(self._manager, session, request, answer)


def _content(result: types.ElicitResult) -> dict[str, Any] | None:
    content = result.content
    return dict(content) if content is not None else None


class InputRequired(Exception):  # noqa: N818 - a result to return, not an error
    """Raised out of a waiting call on a 2026-07-28 connection: return these requests to the client."""

    def __init__(self, session: Session, requests: list[PendingRequest]) -> None:
        super().__init__(f"{len(requests)} request(s) of {session.session_id} to ask")
        self.session = session
        self.requests = requests


class ModernElicitor:
    """Hands the questions back as an input-required result (raises `InputRequired`)."""

    async def offer(self, session: Session) -> None:
        fresh = _new_requests(session)
        if fresh:
            raise InputRequired(session, fresh)


@dataclass(frozen=True)
class RetryState:
    """What a signed `requestState` says: which tool call, session and requests it continues."""

    tool: str
    session_id: str
    request_ids: tuple[str, ...]


class StateSigner:
    """Signs and checks `requestState` with a secret kept in the state directory (0600), so a
    client can only echo what we issued: a forged or altered one is INVALID_ARGUMENT."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def in_dir(cls, state_dir: Path) -> StateSigner:
        """The signer of this state directory (its key made on first use); an in-memory key when
        the directory cannot hold one (states then do not survive a restart)."""
        path = state_dir / _KEY_FILE
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                key = bytes.fromhex(path.read_text().strip())
                if len(key) < 32:
                    raise ValueError("short key") from None
                return cls(key)
            key = secrets.token_bytes(32)
            with os.fdopen(fd, "w") as handle:
                handle.write(key.hex())
            return cls(key)
        except (OSError, ValueError) as exc:
            logger.warning("no elicitation key in %s (%s): request states last until restart", path, exc)
            return cls(secrets.token_bytes(32))

    def seal(self, state: RetryState) -> str:
        body = json.dumps(
            {
                "v": _STATE_VERSION,
                "tool": state.tool,
                "sessionId": state.session_id,
                "requestIds": list(state.request_ids),
                "iat": int(time.time()),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return f"{_b64(body)}.{_b64(mac)}"

    def open(self, token: str, tool: str) -> RetryState:
        """The state `token` carries, for a retry of `tool`; INVALID_ARGUMENT unless we signed it."""
        invalid = CodexMcpError(
            "INVALID_ARGUMENT",
            "requestState is not one this server issued (or was altered); call the tool anew",
            field="requestState",
        )
        try:
            body_part, mac_part = token.split(".")
            body, mac = _unb64(body_part), _unb64(mac_part)
        except ValueError:
            raise invalid from None
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise invalid
        data = cast(dict[str, Any], json.loads(body))
        if data.get("v") != _STATE_VERSION or data.get("tool") != tool:
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"requestState was issued for another call than {tool}",
                field="requestState",
            )
        return RetryState(tool, str(data["sessionId"]), tuple(str(r) for r in data["requestIds"]))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def input_required(signer: StateSigner, tool: str, raised: InputRequired) -> types.InputRequiredResult:
    """The 2026-07-28 result asking the client about `raised.requests`, keyed by request id."""
    requests: dict[str, types.InputRequest] = {}
    for request in raised.requests:
        form = build_form(raised.session, request)
        requests[request.request_id] = types.ElicitRequest(
            params=types.ElicitRequestFormParams(
                message=form.message,
                requested_schema=cast(Any, form.schema),
            )
        )
    state = RetryState(tool, raised.session.session_id, tuple(r.request_id for r in raised.requests))
    return types.InputRequiredResult(input_requests=requests, request_state=signer.seal(state))


async def apply_responses(
    manager: Answering, session: Session, state: RetryState, responses: dict[str, Any] | None
) -> None:
    """Answer the requests `state` asked about with the client's `responses` (keyed by request id);
    unknown keys, and requests no longer pending, are ignored."""
    for request_id, response in (responses or {}).items():
        if request_id not in state.request_ids:
            continue
        request = session.pending.get(request_id)
        if request is None:
            continue
        if isinstance(response, types.ElicitResult):
            action, content = response.action, _content(response)
        elif isinstance(response, dict):
            raw = cast(dict[str, Any], response)
            action = str(raw.get("action"))
            content = cast(dict[str, Any], raw["content"]) if isinstance(raw.get("content"), dict) else None
        else:
            continue
        answer = translate(build_form(session, request), request, action, content)
        if answer is not None:
            await apply(manager, session, request, answer)
