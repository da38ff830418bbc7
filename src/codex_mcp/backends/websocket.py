"""A `Channel` over a WebSocket to a running `codex app-server`, on its unix socket or ws:// listener.

Codex speaks WebSocket on both (`--listen unix://PATH` upgrades over the socket too): one JSON-RPC
message per text frame, fragmented messages allowed. `open_websocket` connects, upgrades (a bearer
token when given, never an Origin header: Codex answers 403 to any), and runs a reader that
reassembles messages, answers pings and the peer's close. Leaving it does the close handshake,
bounded: the app-server and its turns go on without us.

The token goes into the upgrade request only: no log line or error quotes it.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Final, cast

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from codex_mcp.backends.channel import ChannelClosedError
from codex_mcp.backends.process import MAX_LINE_BYTES, unwrap_single_error
from codex_mcp.errors import CodexMcpError
from codex_mcp.wire.endpoint import Endpoint, parse_endpoint, rejection_reason

logger = logging.getLogger(__name__)

# Connect plus upgrade: a local socket answers in milliseconds; a remote host through a tunnel may
# need a few round trips, and a wedged one must not hold a session start for long.
CONNECT_TIMEOUT_S: Final = 10.0
# Our close frame sent, how long to wait for the peer's before dropping the connection.
_CLOSE_HANDSHAKE_S: Final = 2.0
_READ_CHUNK_BYTES: Final = 64 * 1024
# Messages read but not yet consumed (as for a child's stdout lines).
_MESSAGE_QUEUE: Final = 16
# How much of a refused upgrade's body we read.
_REJECTION_BODY_BYTES: Final = 4096
# Codex's unix listener advertises the largest message it takes unfragmented; its ws:// listener
# says nothing, and 16 MiB is what the unix one says.
_FRAME_LIMIT_HEADER: Final = b"x-codex-websocket-max-unfragmented-message-bytes"
_DEFAULT_FRAME_LIMIT_BYTES: Final = 16 * 1024 * 1024
# Close code for our normal close (RFC 6455).
_NORMAL_CLOSURE: Final = 1000
# Pings per liveness period: a peer is given up only after several unanswered ones.
_PINGS_PER_PERIOD: Final = 3


class WebSocketChannel:
    """Text messages to and from one app-server over an upgraded byte stream; see `open_websocket`."""

    def __init__(
        self,
        stream: ByteStream,
        ws: WSConnection,
        endpoint: Endpoint,
        *,
        pid: int | None,
        frame_limit: int,
    ) -> None:
        self._stream = stream
        self._ws = ws
        self._endpoint = endpoint
        self._pid = pid
        # Characters per outbound frame: UTF-8 needs at most 4 bytes for one.
        self._frame_chars = max(1, frame_limit // 4)
        self._send_lock = anyio.Lock()
        self._inbound_send, self._inbound = anyio.create_memory_object_stream[bytes](_MESSAGE_QUEUE)
        self._parts: list[str] = []
        self._part_chars = 0
        self._reason: str | None = None
        self._ended = anyio.Event()
        self._heard_at = anyio.current_time()

    # --- Channel --------------------------------------------------------------------------------

    @property
    def messages(self) -> AsyncIterator[bytes]:
        """Inbound text messages as UTF-8, whole; ends when the connection does."""
        return self._inbound

    async def send(self, message: bytes) -> None:
        """Send `message` (its trailing newline dropped) as one text message."""
        text = message.rstrip(b"\n").decode("utf-8")
        chunks = [text[i : i + self._frame_chars] for i in range(0, len(text), self._frame_chars)] or [""]
        async with self._send_lock:
            if self._reason is not None or self._ws.state is not ConnectionState.OPEN:
                raise ChannelClosedError(self._reason or "the connection is closing")
            for index, chunk in enumerate(chunks):
                last = index == len(chunks) - 1
                await self._write(self._ws.send(TextMessage(data=chunk, message_finished=last)))

    async def end_reason(self) -> str:
        """How the connection ended."""
        await self._ended.wait()
        return self._reason or "closed the connection"

    @property
    def label(self) -> str:
        """ "at unix:///path (pid N)" or "at ws://host:port"."""
        known = f" (pid {self._pid})" if self._pid is not None else ""
        return f"at {self._endpoint.url}{known}"

    @property
    def pid(self) -> int | None:
        """The peer's pid from the unix socket's credentials; None over TCP."""
        return self._pid

    def stderr_tail(self) -> str:
        """Nothing: the app-server's stderr is not ours to read."""
        return ""

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
        liveness_s: float | None = None,
    ) -> AsyncGenerator[WebSocketChannel]:
        """Connect and upgrade to the app-server at `url` (`unix://PATH` or `ws://IP:PORT`), both
        within `timeout_s`; on exit close our end (bounded).

        With `liveness_s`, the peer is pinged and the connection ends (as if dropped) once nothing
        has come from it for that long: a host that froze or whose network went away without a
        close is then noticed within the bound, not never.

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED: a bad address, nothing listening, the upgrade
                refused or not done in time.
        """
        try:
            endpoint = parse_endpoint(url)
        except ValueError as exc:
            raise CodexMcpError("APP_SERVER_START_FAILED", str(exc)) from None
        async with AsyncExitStack() as stack:
            try:
                with anyio.fail_after(timeout_s):
                    stream, pid = await _connect(endpoint)
                    stack.push_async_callback(_aclose_bounded, stream)
                    ws, frame_limit = await _upgrade(stream, endpoint, token)
            except TimeoutError:
                raise _failed(endpoint, f"no WebSocket connection within {timeout_s}s") from None
            channel = cls(stream, ws, endpoint, pid=pid, frame_limit=frame_limit)
            with unwrap_single_error():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(channel._read)
                    if liveness_s is not None:
                        tg.start_soon(channel._keep_alive, liveness_s)
                    try:
                        yield channel
                    finally:
                        with anyio.CancelScope(shield=True):
                            await channel._close()
                        tg.cancel_scope.cancel()

    # --- reader ---------------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while self._reason is None:
                for event in self._ws.events():
                    await self._on_event(event)
                if self._reason is not None:
                    break
                chunk = await _receive(self._stream)
                self._heard_at = anyio.current_time()
                self._ws.receive_data(chunk)
        except (RemoteProtocolError, LocalProtocolError) as exc:
            self._end(f"broke the WebSocket protocol: {exc}")
        finally:
            self._end("closed the connection")
            self._inbound_send.close()

    async def _on_event(self, event: Event) -> None:
        match event:
            case TextMessage():
                await self._text(event)
            case BytesMessage():
                logger.warning("app-server %s sent a binary message; dropped", self.label)
            case Ping():
                with suppress(ChannelClosedError, LocalProtocolError):
                    async with self._send_lock:
                        await self._write(self._ws.send(event.response()))
            case CloseConnection():
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    with suppress(ChannelClosedError, LocalProtocolError):
                        async with self._send_lock:
                            await self._write(self._ws.send(event.response()))
                said = f": {event.reason}" if event.reason else ""
                self._end(
                    "dropped the connection"
                    if event.code == 1006
                    else f"closed the connection (code {event.code}{said})"
                )
            case _:
                pass

    async def _text(self, event: TextMessage) -> None:
        self._parts.append(event.data)
        self._part_chars += len(event.data)
        if not event.message_finished:
            if self._part_chars > MAX_LINE_BYTES:
                # Still read to the end of the message, keeping nothing, as for an over-long line.
                self._parts = [""]
            return
        data = "".join(self._parts)
        size, self._parts, self._part_chars = self._part_chars, [], 0
        if size > MAX_LINE_BYTES:
            logger.warning("app-server %s: dropped a message of %d characters", self.label, size)
            return
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            # Closed: we are leaving, and only the peer's close frame matters now.
            await self._inbound_send.send(data.encode("utf-8"))

    async def _keep_alive(self, liveness_s: float) -> None:
        """Ping every part of `liveness_s`; end the connection when the peer stays silent for all of it."""
        period = liveness_s / _PINGS_PER_PERIOD
        while self._reason is None:
            await anyio.sleep(period)
            silent = anyio.current_time() - self._heard_at
            if silent >= liveness_s:
                self._end(f"did not answer for {liveness_s:g}s")
                logger.warning("app-server %s did not answer for %.1fs; dropping it", self.label, silent)
                await _aclose_bounded(self._stream)  # wakes the reader, which then ends
                return
            # Bounded: a frozen peer's full socket buffer must not stop the silence check.
            with anyio.move_on_after(period), suppress(ChannelClosedError, LocalProtocolError):
                async with self._send_lock:
                    await self._write(self._ws.send(Ping(payload=b"codex-mcp")))

    def _end(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
        self._ended.set()

    # --- writing and closing --------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        try:
            await self._stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._end("dropped the connection")
            raise ChannelClosedError(self._reason or "dropped the connection") from exc

    async def _close(self) -> None:
        """Our close frame, the peer's answer (bounded), then the stream; never raises."""
        self._inbound.close()
        with anyio.move_on_after(_CLOSE_HANDSHAKE_S):
            if self._ws.state is ConnectionState.OPEN:
                with suppress(ChannelClosedError, LocalProtocolError):
                    async with self._send_lock:
                        await self._write(self._ws.send(CloseConnection(code=_NORMAL_CLOSURE)))
            await self._ended.wait()
        await _aclose_bounded(self._stream)


# `async with open_websocket(url, token=...) as channel`.
open_websocket = WebSocketChannel.open


async def _connect(endpoint: Endpoint) -> tuple[ByteStream, int | None]:
    try:
        if endpoint.scheme == "ws":
            return await anyio.connect_tcp(endpoint.host, endpoint.port), None
        unix = await anyio.connect_unix(_socket_target(endpoint.path))
        return unix, _peer_pid(unix.extra(SocketAttribute.raw_socket))  # noqa: S610 - anyio, not Django
    except OSError as exc:
        raise _failed(endpoint, _connect_failure(exc)) from None


def _connect_failure(exc: OSError) -> str:
    # anyio's connect_tcp wraps what each address attempt raised.
    cause = exc.__cause__
    attempts: Sequence[BaseException | None] = (cause,)
    if isinstance(cause, BaseExceptionGroup):
        attempts = cast("BaseExceptionGroup[BaseException]", cause).exceptions
    errors = [exc, *(e for e in attempts if isinstance(e, OSError))]
    if any(isinstance(e, FileNotFoundError) for e in errors):
        return "no such socket (is the app-server running?)"
    if any(isinstance(e, ConnectionRefusedError) for e in errors):
        return "connection refused (is the app-server running?)"
    last = errors[-1]
    return f"cannot connect: {last.strerror or last}"


def _socket_target(path: str) -> str:
    # Codex makes PATH a symlink to a short socket under /tmp/codex-daemon-<uid>/; connecting the
    # target keeps a long PATH within a socket address's ~107 bytes.
    return os.path.realpath(path)


async def _upgrade(stream: ByteStream, endpoint: Endpoint, token: str | None) -> tuple[WSConnection, int]:
    ws = WSConnection(ConnectionType.CLIENT)
    headers = [(b"Authorization", b"Bearer " + token.encode())] if token else []
    await stream.send(ws.send(Request(host=endpoint.host_header, target="/", extra_headers=headers)))
    status: int | None = None
    body = b""
    received = 0
    while True:
        chunk = await _receive(stream)
        if chunk is None and status is None:
            said = f" after {received} bytes that are not a WebSocket upgrade answer" if received else ""
            raise _failed(endpoint, f"the connection closed during the WebSocket upgrade{said}")
        received += len(chunk or b"")
        try:
            ws.receive_data(chunk)
            for event in ws.events():
                match event:
                    case AcceptConnection():
                        return ws, _frame_limit(event.extra_headers)
                    case RejectConnection(status_code=code, has_body=has_body):
                        status = code
                        if not has_body:
                            raise _failed(endpoint, rejection_reason(code, b""))
                    case RejectData(data=data, body_finished=finished):
                        body = (body + data)[:_REJECTION_BODY_BYTES]
                        if finished or len(body) >= _REJECTION_BODY_BYTES:
                            raise _failed(endpoint, rejection_reason(status or 0, body))
                    case _:
                        pass
        except (RemoteProtocolError, LocalProtocolError, h11.ProtocolError) as exc:
            raise _failed(endpoint, f"not a WebSocket upgrade answer: {exc}") from None
        if chunk is None:
            raise _failed(endpoint, rejection_reason(status or 0, body))


def _frame_limit(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == _FRAME_LIMIT_HEADER:
            with suppress(ValueError):
                return max(1024, int(value))
    return _DEFAULT_FRAME_LIMIT_BYTES


def _peer_pid(sock: socket.socket) -> int | None:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, _uid, _gid = struct.unpack(
            "3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
        )
    except OSError:
        return None
    return pid if pid > 0 else None


def _failed(endpoint: Endpoint, why: str) -> CodexMcpError:
    return CodexMcpError("APP_SERVER_START_FAILED", f"codex app-server at {endpoint.url}: {why}")


async def _aclose_bounded(stream: ByteStream) -> None:
    with anyio.move_on_after(_CLOSE_HANDSHAKE_S, shield=True):
        await stream.aclose()


async def _receive(stream: ByteStream) -> bytes | None:
    try:
        return await stream.receive(_READ_CHUNK_BYTES)
    except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
        return None
