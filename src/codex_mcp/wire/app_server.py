"""Parse and encode `codex app-server` JSON-RPC lines.

Every inbound line becomes a typed message. A line that is not JSON, names a method the pinned
protocol does not know, or fails validation becomes `UnknownMessage`, which keeps the raw text and
says why: a reader never raises on what Codex sends.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from codex_mcp._generated import registry
from codex_mcp._generated.app_server import JSONRPCErrorError
from codex_mcp.wire._validation import adapter, decode_line, first_error

logger = logging.getLogger(__name__)

RequestId = str | int
PINNED_CODEX_VERSION: str = registry.PINNED_CODEX_VERSION
# Streaming deltas of a turn's item, as the schema defines them (see the registry).
DELTA_NOTIFICATIONS: frozenset[str] = registry.DELTA_NOTIFICATIONS
# Routing: the thread or turn a message names, read only where its schema declares the id.
notification_thread_id = registry.notification_thread_id
notification_turn_id = registry.notification_turn_id
request_thread_id = registry.request_thread_id


def _raw_params(raw: dict[str, Any]) -> dict[str, Any]:
    params: object = raw.get("params")
    return cast(dict[str, Any], params) if isinstance(params, dict) else {}


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification from Codex, its params validated into the generated model; routing (the
    thread and turn it names, where its schema declares them) and the params as sent, for events."""

    method: str
    params: Any
    raw: dict[str, Any]

    @property
    def raw_params(self) -> dict[str, Any]:
        """The params as Codex sent them (what `full` mode shows)."""
        return _raw_params(self.raw)

    @property
    def thread_id(self) -> str | None:
        """The thread it names, read only where its schema declares a thread id."""
        return notification_thread_id(self.method, self.raw_params)

    @property
    def turn_id(self) -> str | None:
        """The turn it names, read only where its schema declares a turn id."""
        return notification_turn_id(self.method, self.raw_params)


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """A request from Codex that expects our answer."""

    id: RequestId
    method: str
    params: Any
    raw: dict[str, Any]

    @property
    def raw_params(self) -> dict[str, Any]:
        """The params as Codex sent them."""
        return _raw_params(self.raw)

    @property
    def thread_id(self) -> str | None:
        """The thread it names, read only where its schema declares a thread id."""
        return request_thread_id(self.method, self.raw_params)


@dataclass(frozen=True, slots=True)
class Response:
    """Codex's answer to one of our requests; `result` is validated later, by the method it answers."""

    id: RequestId
    result: Any
    error: JSONRPCErrorError | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A line we could not type: kept whole, with the reason."""

    line: str
    reason: str
    raw: Any = None
    method: str | None = None


InboundMessage = Notification | ServerRequest | Response | UnknownMessage


def _validate(target: Any, value: Any) -> Any:
    if target is None:
        return None
    return adapter(target).validate_python(value)


def parse_line(line: str | bytes) -> InboundMessage:
    """Type one line Codex wrote on stdout."""
    text, message, parsed, problem = decode_line(line)
    if message is None:
        return UnknownMessage(text, problem, parsed)
    method = message.get("method")
    has_id = "id" in message
    if has_id and (type(message["id"]) not in (str, int)):
        return UnknownMessage(text, "its id is neither a string nor an integer", message, method)
    try:
        if isinstance(method, str) and has_id:
            models = registry.SERVER_REQUESTS.get(method)
            if models is None:
                return UnknownMessage(text, "unknown server request method", message, method)
            return ServerRequest(message["id"], method, _validate(models[0], message.get("params")), message)
        if isinstance(method, str):
            if method not in registry.SERVER_NOTIFICATIONS:
                return UnknownMessage(text, "unknown notification method", message, method)
            params = _validate(registry.SERVER_NOTIFICATIONS[method], message.get("params"))
            return Notification(method, params, message)
        if has_id and ("result" in message or "error" in message):
            error = message.get("error")
            parsed_error = JSONRPCErrorError.model_validate(error) if error is not None else None
            return Response(message["id"], message.get("result"), parsed_error, message)
    except ValidationError as exc:
        return UnknownMessage(text, f"does not match the pinned schema: {first_error(exc)}", message, method)
    return UnknownMessage(text, "neither request, notification nor response", message)


def parse_result(method: str, result: Any) -> Any:
    """Validate the result of our request `method` into its generated response model."""
    return _validate(registry.CLIENT_REQUESTS[method][1], result)


def _dump(params: BaseModel | dict[str, Any] | None) -> Any:
    if isinstance(params, BaseModel):
        # Our requests' params are built unvalidated (wire/calls.py): their parts may be plain JSON
        # where the model has a submodel, which is what is meant.
        return params.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False)
    return params


def encode_request(request_id: RequestId, method: str, params: BaseModel | dict[str, Any] | None) -> bytes:
    """One request line; only fields that were set are sent, so model defaults never leak out."""
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        message["params"] = _dump(params)
    return _line(message)


def encode_notification(method: str, params: BaseModel | dict[str, Any] | None = None) -> bytes:
    """One notification line."""
    message: dict[str, Any] = {"method": method}
    if params is not None:
        message["params"] = _dump(params)
    return _line(message)


def encode_response(request_id: RequestId, result: BaseModel | dict[str, Any]) -> bytes:
    """Our answer to a server request."""
    return _line({"id": request_id, "result": _dump(result)})


def encode_error(request_id: RequestId, code: int, message: str) -> bytes:
    """A JSON-RPC error answer to a server request."""
    return _line({"id": request_id, "error": {"code": code, "message": message}})


def _line(message: dict[str, Any]) -> bytes:
    # ASCII escapes: a lone surrogate (from a path or text that came through surrogateescape)
    # cannot be encoded as UTF-8, but survives as a `\udcxx` escape.
    return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"
