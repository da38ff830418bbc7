"""A JSON-RPC connection to one `codex app-server`: a child we spawn, or one that runs without us.

`open_app_server` spawns the child, `connect_app_server` reaches a running one over its unix socket
or ws:// listener; either runs the reader task and does the `initialize` handshake before it
yields, so a connection is never half started. The framing underneath is a `Channel`.

Our requests are matched to Codex's responses through a table of one-slot streams; everything else
Codex sends goes, in arrival order, to an `AppServerHandler`. When the app-server goes away every
pending request fails at once with `AppServerClosedError`.

The reader awaits the handler, so a handler must not wait on this connection's own requests (that
would wait on itself): start a task for such work instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any, Final, Protocol, TypeVar, cast

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from pydantic import BaseModel, ValidationError

from codex_mcp.backends.channel import Channel, ChannelClosedError, ChildChannel
from codex_mcp.backends.process import open_child, unwrap_single_error
from codex_mcp.backends.websocket import CONNECT_TIMEOUT_S, open_websocket
from codex_mcp.errors import (
    AppServerClosedError,
    AppServerRequestError,
    CodexMcpError,
    redact,
    tail_for_error,
)
from codex_mcp.wire.app_server import (
    Notification,
    RequestId,
    Response,
    ServerRequest,
    UnknownMessage,
    encode_error,
    encode_notification,
    encode_request,
    encode_response,
    parse_line,
    parse_result,
)
from codex_mcp.wire.calls import ClientCall, R
from codex_mcp.wire.methods import INITIALIZE, INITIALIZED

logger = logging.getLogger(__name__)

# Spawn plus `initialize`; Codex answers in well under a second, but a cold start reads its config,
# and a slow disk or antivirus can take several seconds.
STARTUP_TIMEOUT_S: Final = 30.0
_CLIENT_NAME: Final = "codex-mcp"
# JSON-RPC "method not found": our answer to a server request we do not know.
METHOD_NOT_FOUND: Final = -32601
_INTERNAL_ERROR: Final = -32603
# How much of the stderr tail goes into an error message.
# A broken child can write unknown lines without end: the log shows the first ones, then a count
# now and then.
_UNKNOWN_WARNINGS: Final = 20
_UNKNOWN_SUMMARY_EVERY: Final = 10_000


class AppServerHandler(Protocol):
    """Receives what Codex sends besides responses, in arrival order, from the reader task.

    Exceptions are logged and do not stop the reader. `on_closed` runs once, when the child goes
    away on its own after the handshake (exit, or a socket the service closed); not when the
    owner closes the connection.
    """

    async def on_notification(self, message: Notification) -> None:
        """A notification."""
        ...

    async def on_server_request(self, message: ServerRequest) -> None:
        """A request Codex waits on: answer it with `respond` or `respond_error`, now or later."""
        ...

    async def on_unknown(self, message: UnknownMessage) -> None:
        """A line that is not a known message (an unknown server request is already answered)."""
        ...

    async def on_closed(self, reason: str, stderr_tail: str) -> None:
        """The app-server exited or closed its end; `reason` says how."""
        ...


class Bystander:
    """The handler of a connection that only asks (a health check, the keeper's idle check): what
    Codex sends on it besides answers is not its business."""

    async def on_notification(self, message: Notification) -> None:
        return None

    async def on_server_request(self, message: ServerRequest) -> None:
        return None  # requests go to the connections that resumed the thread

    async def on_unknown(self, message: UnknownMessage) -> None:
        return None

    async def on_closed(self, reason: str, stderr_tail: str) -> None:
        return None


_Outcome = Response | AppServerClosedError | AppServerRequestError
_M = TypeVar("_M", Notification, ServerRequest, UnknownMessage)


class AppServerConnection:
    """Requests, answers and notifications to one `codex app-server`; see `open_app_server`."""

    def __init__(self, channel: Channel, handler: AppServerHandler) -> None:
        self._channel = channel
        self._handler = handler
        self._next_id = 1
        self._pending: dict[RequestId, MemoryObjectSendStream[_Outcome]] = {}
        self._closed_event = anyio.Event()
        self._exit_reason: str | None = None
        self._started = False
        self._unknown_lines = 0
        self.initialize_result: Any = None
        """Codex's answer to `initialize` (userAgent, codexHome, platform)."""

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None,
        cwd: str | os.PathLike[str] | None,
        handler: AppServerHandler,
        client_version: str,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> AsyncGenerator[AppServerConnection]:
        """Spawn, handshake, yield; on exit close the connection and stop the child.

        None env/cwd inherit ours.

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED, with the redacted stderr tail.
        """
        async with AsyncExitStack() as stack:
            try:
                child = await stack.enter_async_context(open_child(argv, env=env, cwd=cwd))
            except OSError as exc:
                raise CodexMcpError(
                    "APP_SERVER_START_FAILED", redact(f"could not start codex app-server: {exc}")
                ) from exc
            async with cls._serve(
                ChildChannel(child), handler, client_version, startup_timeout_s
            ) as connection:
                yield connection

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        handler: AppServerHandler,
        client_version: str,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        liveness_s: float | None = None,
    ) -> AsyncGenerator[AppServerConnection]:
        """Connect to a running app-server at `url` (`unix://PATH` or `ws://IP:PORT`), handshake,
        yield; on exit close our connection only: the app-server and its turns go on.

        `token` is sent as `Authorization: Bearer` and appears in no log or error. With
        `liveness_s` the connection closes once the app-server has been silent (pings unanswered)
        that long.

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED: a bad address, nothing listening, the upgrade
                refused (401, 403, not a WebSocket) or not done within `connect_timeout_s`, or no
                answer to `initialize`.
        """
        async with (
            open_websocket(url, token=token, timeout_s=connect_timeout_s, liveness_s=liveness_s) as channel,
            cls._serve(channel, handler, client_version, startup_timeout_s) as connection,
        ):
            yield connection

    @classmethod
    @asynccontextmanager
    async def _serve(
        cls, channel: Channel, handler: AppServerHandler, client_version: str, startup_timeout_s: float
    ) -> AsyncGenerator[AppServerConnection]:
        connection = cls(channel, handler)
        with unwrap_single_error():
            async with anyio.create_task_group() as tg:
                tg.start_soon(connection._read)
                try:
                    await connection._handshake(client_version, startup_timeout_s)
                    yield connection
                finally:
                    connection._close("closed by codex-mcp")
                    tg.cancel_scope.cancel()

    # --- state --------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether one of our requests waits for its answer."""
        return bool(self._pending)

    @property
    def closed(self) -> bool:
        """True once the child is gone or the connection was closed."""
        return self._exit_reason is not None

    @property
    def exit_reason(self) -> str | None:
        """Why the connection closed (e.g. "exited with code 1"), or None while open."""
        return self._exit_reason

    @property
    def pid(self) -> int | None:
        """The app-server's process id: always known for a child, for a unix socket from the
        peer's credentials, unknown over ws://."""
        return self._channel.pid

    @property
    def label(self) -> str:
        """Which app-server, for logs: "pid 123" for a child, else its address."""
        return self._channel.label

    def stderr_tail(self) -> str:
        """The last lines the app-server wrote to stderr (unredacted); "" when it is not our child."""
        return self._channel.stderr_tail()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self._closed_event.wait()

    # --- outbound -----------------------------------------------------------------------------

    async def request(
        self, method: str, params: dict[str, Any] | BaseModel | None, *, timeout_s: float
    ) -> Any:
        """Send a request and wait for its result.

        Returns the generated response model of `method`, or the raw JSON value when the pinned
        protocol does not know `method` or the result does not match it.

        Raises:
            AppServerRequestError: Codex answered with an error.
            AppServerClosedError: the app-server is gone.
            CodexMcpError: TIMEOUT, no answer within `timeout_s`.
        """
        if self._exit_reason is not None:
            raise self._closed_error()
        request_id = self._next_id
        self._next_id += 1
        send, receive = anyio.create_memory_object_stream[_Outcome](1)
        # Registered before writing: the response can arrive before the write returns.
        self._pending[request_id] = send
        try:
            with receive, anyio.fail_after(timeout_s):
                await self._write(encode_request(request_id, method, params))
                outcome = await receive.receive()
        except TimeoutError:
            raise CodexMcpError("TIMEOUT", f"{method} timed out after {timeout_s}s") from None
        finally:
            self._pending.pop(request_id, None)
            send.close()
        if isinstance(outcome, Exception):
            raise outcome
        if outcome.error is not None:
            error = outcome.error
            raise AppServerRequestError(error.code, error.message, error.data)
        return _typed_result(method, outcome.result)

    async def call(self, call: ClientCall[R], *, timeout_s: float) -> R:
        """`request` for one of our typed calls: its result as the call's response model.

        Raises:
            AppServerRequestError, AppServerClosedError, CodexMcpError (TIMEOUT) as `request`;
            CodexMcpError PROTOCOL_PARSE_ERROR when the result is not what the pinned protocol says.
        """
        result = await self.request(call.method, call.params, timeout_s=timeout_s)
        if not isinstance(result, call.response):
            raise CodexMcpError(
                "PROTOCOL_PARSE_ERROR",
                f"Codex answered {call.method} with a result the pinned protocol does not describe",
            )
        return result

    async def respond(self, request_id: RequestId, result: dict[str, Any] | BaseModel) -> None:
        """Answer a server request."""
        await self._write(encode_response(request_id, result))

    async def respond_error(self, request_id: RequestId, code: int, message: str) -> None:
        """Answer a server request with a JSON-RPC error."""
        await self._write(encode_error(request_id, code, message))

    async def notify(self, method: str, params: dict[str, Any] | BaseModel | None = None) -> None:
        """Send a notification."""
        await self._write(encode_notification(method, params))

    async def _write(self, line: bytes) -> None:
        if self._exit_reason is not None:
            raise self._closed_error()
        try:
            await self._channel.send(line)
        except ChannelClosedError as exc:
            raise AppServerClosedError(exc.reason, self.stderr_tail()) from exc

    # --- lifecycle ----------------------------------------------------------------------------

    async def _handshake(self, client_version: str, timeout_s: float) -> None:
        params = {
            "clientInfo": {"name": _CLIENT_NAME, "title": _CLIENT_NAME, "version": client_version},
            "capabilities": {"experimentalApi": True},
        }
        try:
            with anyio.fail_after(timeout_s):
                self.initialize_result = await self.request(INITIALIZE, params, timeout_s=timeout_s)
                await self.notify(INITIALIZED)
        except (TimeoutError, CodexMcpError, AppServerClosedError, AppServerRequestError) as exc:
            why = (
                f"timed out after {timeout_s}s" if isinstance(exc, TimeoutError | CodexMcpError) else str(exc)
            )
            child = isinstance(self._channel, ChildChannel)
            subject = "codex app-server" if child else f"codex app-server {self.label}"
            message = f"{subject} did not start: {why}"
            tail = self.stderr_tail()
            if tail.strip() and not isinstance(exc, AppServerClosedError):
                message += f"; stderr: {tail_for_error(tail)}"
            raise CodexMcpError("APP_SERVER_START_FAILED", redact(message)) from exc
        self._started = True
        logger.debug(
            "app-server %s ready: %s", self.label, getattr(self.initialize_result, "user_agent", "?")
        )

    def _close(self, reason: str) -> None:
        """Mark closed (first reason wins) and fail every pending request."""
        if self._exit_reason is not None:
            return
        self._exit_reason = reason
        error_tail = self.stderr_tail()
        for send in list(self._pending.values()):
            # A waiter already answered, or gone, needs nothing.
            with suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(AppServerClosedError(reason, error_tail))
        self._closed_event.set()

    def _closed_error(self) -> AppServerClosedError:
        return AppServerClosedError(self._exit_reason or "closed", self.stderr_tail())

    # --- inbound ------------------------------------------------------------------------------

    async def _read(self) -> None:
        async for line in self._channel.messages:
            try:
                await self._dispatch(parse_line(line))
            except Exception:
                # A bug here must not stop the reader: pending requests would wait for nothing.
                logger.exception("failed to dispatch a line from codex app-server: %.300r", line)
        reason = await self._channel.end_reason()
        if self._exit_reason is not None:
            return
        logger.warning("codex app-server %s %s", self.label, reason)
        self._close(reason)
        if self._started:
            try:
                await self._handler.on_closed(reason, self.stderr_tail())
            except Exception:
                logger.exception("app-server handler failed in on_closed")

    async def _dispatch(self, message: Notification | ServerRequest | Response | UnknownMessage) -> None:
        match message:
            case Response():
                self._deliver(message.id, message)
            case Notification():
                await self._call_handler(self._handler.on_notification, message, message.method)
            case ServerRequest():
                await self._call_handler(self._handler.on_server_request, message, message.method)
            case UnknownMessage():
                await self._unknown(message)

    def _deliver(self, request_id: RequestId, outcome: _Outcome) -> None:
        # Our ids are ints; a broken child may answer with any JSON value, even an unhashable one,
        # and `true` or `1.0` would otherwise match id 1.
        ours = isinstance(request_id, int) and not isinstance(request_id, bool)
        send = self._pending.get(request_id) if ours else None
        if send is None:
            logger.warning("app-server answered unknown or abandoned request id %r; dropped", request_id)
            return
        try:
            send.send_nowait(outcome)
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.warning("app-server answered request id %r twice; dropped", request_id)

    async def _unknown(self, message: UnknownMessage) -> None:
        raw_value: Any = message.raw
        raw: dict[str, Any] = cast(dict[str, Any], raw_value) if isinstance(raw_value, dict) else {}
        self._unknown_lines += 1
        count = self._unknown_lines
        log = logging.WARNING if count <= _UNKNOWN_WARNINGS else logging.DEBUG
        logger.log(
            log, "app-server sent %s (method %s): %.300s", message.reason, message.method, message.line
        )
        if count == _UNKNOWN_WARNINGS or (count > _UNKNOWN_WARNINGS and count % _UNKNOWN_SUMMARY_EVERY == 0):
            logger.warning(
                "app-server %s has sent %d unknown lines; more are logged at DEBUG", self.label, count
            )
        request_id = raw.get("id")
        if isinstance(request_id, str | int) and message.method is not None:
            # A server request we cannot handle: answer so Codex never waits on it.
            try:
                await self.respond_error(request_id, METHOD_NOT_FOUND, "method not supported by codex-mcp")
            except AppServerClosedError:
                logger.debug("could not refuse %s: the app-server is gone", message.method)
        elif isinstance(request_id, str | int) and ("result" in raw or "error" in raw):
            # A response whose error object is malformed: fail the request instead of letting it hang.
            error: Any = raw.get("error")
            code = error.get("code") if isinstance(error, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            failure = AppServerRequestError(
                code if isinstance(code, int) else _INTERNAL_ERROR, message.reason, raw
            )
            self._deliver(request_id, failure)
        await self._call_handler(self._handler.on_unknown, message, message.method or "unknown message")

    async def _call_handler(self, callback: Callable[[_M], Awaitable[None]], message: _M, what: str) -> None:
        try:
            await callback(message)
        except Exception:
            logger.exception("app-server handler failed on %s", what)


# The public names for a connection: `async with open_app_server(argv, ...) as connection` spawns
# a child; `async with connect_app_server(url, ...) as connection` reaches a running app-server.
open_app_server = AppServerConnection.open
connect_app_server = AppServerConnection.connect


def _typed_result(method: str, result: Any) -> Any:
    try:
        return parse_result(method, result)
    except KeyError:
        return result
    except ValidationError as exc:
        # A newer Codex may add values the pinned schema lacks; the raw result still serves.
        logger.warning("result of %s does not match the pinned schema: %s", method, exc.errors()[:1])
        return result
