"""The WebSocket channel and `connect_app_server` against an in-process wsproto server on a unix socket
or loopback port: the upgrade, framing both ways, pings, both close handshakes and every refusal."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from anyio.abc import ByteStream, Listener, SocketAttribute
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from codex_mcp.backends.app_server import connect_app_server
from codex_mcp.backends.channel import ChannelClosedError
from codex_mcp.backends.websocket import open_websocket
from codex_mcp.errors import AppServerClosedError, CodexMcpError
from codex_mcp.wire.app_server import Notification, ServerRequest, UnknownMessage

TEST_TIMEOUT_S = 10.0
TOKEN = "tok-9f8e7d6c5b4a"

E = TypeVar("E", bound=Event)
Serve = Callable[[ByteStream], Awaitable[None]]


@asynccontextmanager
async def _unix_server(path: Path, serve: Serve) -> AsyncGenerator[str]:
    """Serve one connection on a unix socket at `path` with `serve`; yields its unix:// address."""
    listener = await anyio.create_unix_listener(path)
    async with _serving(listener, serve):
        yield f"unix://{path}"


@asynccontextmanager
async def _tcp_server(serve: Serve) -> AsyncGenerator[str]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    async with _serving(listener, serve):
        yield f"ws://127.0.0.1:{port}"


@asynccontextmanager
async def _serving(listener: Listener[ByteStream], serve: Serve) -> AsyncGenerator[None]:
    async def closing(stream: ByteStream) -> None:
        async with stream:
            await serve(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, closing)
        yield
        tg.cancel_scope.cancel()


class Peer:
    """The server side of one WebSocket: wsproto over the accepted stream."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.pending: list[Event] = []

    async def next_event(self) -> Event:
        while not self.pending:
            try:
                data: bytes | None = await self.stream.receive()
            except anyio.EndOfStream:
                data = None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    async def expect(self, kind: type[E]) -> E:
        event = await self.next_event()
        assert isinstance(event, kind), event
        return event

    async def send(self, *events: Event) -> None:
        await self.stream.send(b"".join(self.ws.send(event) for event in events))

    async def accept(self) -> Request:
        request = await self.expect(Request)
        await self.send(AcceptConnection())
        return request

    async def reject(self, status: int, body: bytes) -> Request:
        request = await self.expect(Request)
        length = [(b"content-length", str(len(body)).encode())]
        await self.send(RejectConnection(status_code=status, headers=length, has_body=True), RejectData(body))
        return request


def _headers(request: Request) -> dict[str, str]:
    return {name.decode().lower(): value.decode() for name, value in request.extra_headers}


def _short_socket(tmp_path: Path) -> Path:
    return tmp_path / "s.sock"


# --- the channel ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_fragmented_message_arrives_whole_and_ours_goes_out_as_one_text_frame(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def serve(stream: ByteStream) -> None:
        peer = Peer(stream)
        seen["request"] = await peer.accept()
        await peer.send(TextMessage('{"method": "a', message_finished=False), TextMessage('/b"}'))
        seen["ours"] = (await peer.expect(TextMessage)).data
        seen["close"] = await peer.expect(CloseConnection)
        await peer.send(seen["close"].response())

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with (
            _unix_server(_short_socket(tmp_path), serve) as url,
            open_websocket(url, token=TOKEN) as channel,
        ):
            first = await anext(aiter(channel.messages))
            await channel.send(b'{"id": 1}\n')
            assert channel.pid == os.getpid()

    assert json.loads(first) == {"method": "a/b"}
    assert seen["ours"] == '{"id": 1}'
    headers = _headers(seen["request"])
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert "origin" not in headers
    assert seen["close"].code == 1000


@pytest.mark.anyio
async def test_a_ping_is_answered_with_a_pong_carrying_its_payload(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def serve(stream: ByteStream) -> None:
        peer = Peer(stream)
        await peer.accept()
        await peer.send(Ping(b"are you there"))
        seen["pong"] = await peer.expect(Pong)
        await peer.send(TextMessage("{}"))
        await peer.expect(CloseConnection)

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with (
            _unix_server(_short_socket(tmp_path), serve) as url,
            open_websocket(url) as channel,
        ):
            assert await anext(aiter(channel.messages)) == b"{}"

    assert seen["pong"].payload == b"are you there"


@pytest.mark.anyio
async def test_a_close_from_the_peer_ends_the_messages_with_its_code_and_sends_fail(tmp_path: Path) -> None:
    async def serve(stream: ByteStream) -> None:
        peer = Peer(stream)
        await peer.accept()
        await peer.send(TextMessage("{}"), CloseConnection(code=1001, reason="going away"))
        await peer.expect(CloseConnection)

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with (
            _unix_server(_short_socket(tmp_path), serve) as url,
            open_websocket(url) as channel,
        ):
            received = [message async for message in channel.messages]
            reason = await channel.end_reason()
            with pytest.raises(ChannelClosedError):
                await channel.send(b"{}")

    assert received == [b"{}"]
    assert reason == "closed the connection (code 1001: going away)"


@pytest.mark.anyio
async def test_a_connection_dropped_without_a_close_frame_says_so(tmp_path: Path) -> None:
    async def serve(stream: ByteStream) -> None:
        await Peer(stream).accept()

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with (
            _unix_server(_short_socket(tmp_path), serve) as url,
            open_websocket(url) as channel,
        ):
            assert [message async for message in channel.messages] == []
            assert await channel.end_reason() == "dropped the connection"


@pytest.mark.anyio
async def test_a_socket_path_too_long_for_an_address_works_through_codexs_symlink(tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    link = long_dir / "svc.sock"
    link.symlink_to(_short_socket(tmp_path))

    async def serve(stream: ByteStream) -> None:
        peer = Peer(stream)
        await peer.accept()
        await peer.send(TextMessage("{}"))
        await peer.expect(CloseConnection)

    assert len(str(link)) > 108
    with anyio.fail_after(TEST_TIMEOUT_S):
        async with _unix_server(_short_socket(tmp_path), serve), open_websocket(f"unix://{link}") as channel:
            assert await anext(aiter(channel.messages)) == b"{}"


# --- refusals ------------------------------------------------------------------------------------


async def _refusal(
    url: str, *, token: str | None = TOKEN, timeout_s: float = TEST_TIMEOUT_S
) -> CodexMcpError:
    with pytest.raises(CodexMcpError) as caught:
        async with open_websocket(url, token=token, timeout_s=timeout_s):
            pass
    assert caught.value.code == "APP_SERVER_START_FAILED"
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caught.value.message
    return caught.value


@pytest.mark.anyio
async def test_a_wrong_token_is_a_401_error_that_names_the_token_but_never_quotes_it(tmp_path: Path) -> None:
    async def serve(stream: ByteStream) -> None:
        await Peer(stream).reject(401, b"invalid websocket bearer token")

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with _unix_server(_short_socket(tmp_path), serve) as url:
            error = await _refusal(url)

    assert "HTTP 401: invalid websocket bearer token; check the token" in error.message


@pytest.mark.anyio
async def test_a_403_points_at_an_origin_header_added_in_between() -> None:
    async def serve(stream: ByteStream) -> None:
        await Peer(stream).reject(403, b"")

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with _tcp_server(serve) as url:
            error = await _refusal(url)

    assert error.message.startswith(f"codex app-server at {url}: HTTP 403; ")
    assert "Origin" in error.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", "HTTP 200: ok; this does not look like"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "after 21 bytes that are not a WebSocket upgrade answer"),
        (b"\x00\x01garbage\r\n\r\n", "not a WebSocket upgrade answer: "),
        (b"", "the connection closed during the WebSocket upgrade"),
    ],
)
async def test_an_answer_that_is_not_an_upgrade_is_a_clear_error(
    tmp_path: Path, answer: bytes, expected: str
) -> None:
    async def serve(stream: ByteStream) -> None:
        await stream.receive()
        if answer:
            await stream.send(answer)

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with _unix_server(_short_socket(tmp_path), serve) as url:
            error = await _refusal(url)

    assert expected in error.message


@pytest.mark.anyio
async def test_a_listener_that_never_answers_the_upgrade_fails_within_the_bound(tmp_path: Path) -> None:
    async def serve(stream: ByteStream) -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with _unix_server(_short_socket(tmp_path), serve) as url:
            started = anyio.current_time()
            error = await _refusal(url, timeout_s=0.3)
            elapsed = anyio.current_time() - started

    assert "no WebSocket connection within 0.3s" in error.message
    assert elapsed < 2


@pytest.mark.anyio
async def test_nothing_listening_is_a_clear_error_for_a_socket_and_a_port(tmp_path: Path) -> None:
    free = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = free.extra(SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    await free.aclose()

    with anyio.fail_after(TEST_TIMEOUT_S):
        missing = await _refusal(f"unix://{tmp_path}/none.sock")
        refused = await _refusal(f"ws://127.0.0.1:{port}")
        bad = await _refusal("wss://example.com:443")

    assert "no such socket (is the app-server running?)" in missing.message
    assert "connection refused (is the app-server running?)" in refused.message
    assert "no TLS listener" in bad.message


# --- the JSON-RPC connection over it -------------------------------------------------------------


class _Handler:
    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.unknown: list[UnknownMessage] = []
        self.closed: list[str] = []

    async def on_notification(self, message: Notification) -> None:
        self.notifications.append(message)

    async def on_server_request(self, message: ServerRequest) -> None:
        raise AssertionError(message)

    async def on_unknown(self, message: UnknownMessage) -> None:
        self.unknown.append(message)

    async def on_closed(self, reason: str, stderr_tail: str) -> None:
        self.closed.append(reason)


async def _answer_initialize(peer: Peer) -> dict[str, Any]:
    request = json.loads((await peer.expect(TextMessage)).data)
    result = {"userAgent": "fake/1", "codexHome": "/h", "platformFamily": "unix", "platformOs": "linux"}
    await peer.send(TextMessage(json.dumps({"id": request["id"], "result": result})))
    assert json.loads((await peer.expect(TextMessage)).data)["method"] == "initialized"
    return request


@pytest.mark.anyio
async def test_connect_app_server_handshakes_and_a_service_that_goes_away_fails_requests_and_reports_it(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}
    handler = _Handler()

    async def serve(stream: ByteStream) -> None:
        peer = Peer(stream)
        await peer.accept()
        seen["initialize"] = await _answer_initialize(peer)
        await peer.send(TextMessage(json.dumps({"method": "fake/hello", "params": {}})))
        seen["pending"] = json.loads((await peer.expect(TextMessage)).data)
        await peer.send(CloseConnection(code=1001, reason="shutting down"))
        await peer.expect(CloseConnection)

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with (
            _unix_server(_short_socket(tmp_path), serve) as url,
            connect_app_server(url, handler=handler, client_version="9.9") as connection,
        ):
            with pytest.raises(AppServerClosedError) as caught:
                await connection.request("thread/list", {}, timeout_s=TEST_TIMEOUT_S)
            await connection.wait_closed()

    assert seen["initialize"]["params"]["clientInfo"]["version"] == "9.9"
    assert seen["pending"]["method"] == "thread/list"
    assert [m.method for m in handler.unknown] == ["fake/hello"]
    assert "closed the connection (code 1001: shutting down)" in str(caught.value)
    assert handler.closed == ["closed the connection (code 1001: shutting down)"]
    assert connection.label == f"at {url} (pid {os.getpid()})"


@pytest.mark.anyio
async def test_a_listener_that_upgrades_but_never_answers_initialize_is_a_start_failure(
    tmp_path: Path,
) -> None:
    async def serve(stream: ByteStream) -> None:
        peer = Peer(stream)
        await peer.accept()
        await peer.expect(TextMessage)
        await peer.expect(CloseConnection)

    with anyio.fail_after(TEST_TIMEOUT_S):
        async with _unix_server(_short_socket(tmp_path), serve) as url:
            with pytest.raises(CodexMcpError) as caught:
                async with connect_app_server(
                    url, token=TOKEN, handler=_Handler(), client_version="1", startup_timeout_s=0.3
                ):
                    pass

    assert caught.value.code == "APP_SERVER_START_FAILED"
    assert caught.value.message.startswith("codex app-server at unix://")
    assert "did not start: timed out after 0.3s" in caught.value.message
    assert TOKEN not in str(caught.value)
