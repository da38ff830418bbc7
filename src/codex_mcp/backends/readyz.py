"""Is a running `codex app-server` there and answering? One bounded probe, no JSON-RPC session.

A ws:// listener answers plain HTTP `GET /readyz` with 200 (no token needed). Codex's unix listener
serves no HTTP (it closes a plain GET unanswered), so a unix socket is probed by a WebSocket upgrade
that is closed at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import anyio
import h11

from codex_mcp.backends.websocket import open_websocket
from codex_mcp.errors import CodexMcpError
from codex_mcp.wire.endpoint import Endpoint, parse_endpoint

# A healthy listener answers in milliseconds; a wedged one must not hold `doctor` or a placement.
READY_TIMEOUT_S: Final = 5.0
_MAX_RESPONSE_BYTES: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class Readiness:
    """The probe's verdict and, when not ready, why (no credential in it)."""

    ready: bool
    detail: str


async def probe_ready(url: str, *, token: str | None = None, timeout_s: float = READY_TIMEOUT_S) -> Readiness:
    """Probe the app-server at `url`; never raises for an unreachable or unhealthy one.

    `token` only matters for a unix socket started with --ws-auth (its probe is an upgrade).
    """
    try:
        endpoint = parse_endpoint(url)
    except ValueError as exc:
        return Readiness(False, str(exc))
    if endpoint.scheme == "unix":
        try:
            async with open_websocket(url, token=token, timeout_s=timeout_s):
                return Readiness(True, "the unix socket accepted a WebSocket upgrade")
        except CodexMcpError as exc:
            return Readiness(False, exc.message)
    try:
        with anyio.fail_after(timeout_s):
            status = await _get_readyz(endpoint)
    except TimeoutError:
        return Readiness(False, f"no answer from {endpoint.url}/readyz within {timeout_s}s")
    except OSError as exc:
        return Readiness(False, f"cannot connect to {endpoint.url}: {exc.strerror or exc}")
    except anyio.BrokenResourceError:
        return Readiness(False, f"{endpoint.url} dropped the connection before answering /readyz")
    except h11.ProtocolError as exc:
        return Readiness(False, f"{endpoint.url}/readyz did not answer HTTP: {exc}")
    if status == 200:
        return Readiness(True, "GET /readyz answered 200")
    return Readiness(False, f"GET /readyz answered HTTP {status}")


async def _get_readyz(endpoint: Endpoint) -> int:
    """The HTTP status of `GET /readyz`."""
    http = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="GET", target="/readyz", headers=[("Host", endpoint.host_header), ("Connection", "close")]
    )
    async with await anyio.connect_tcp(endpoint.host, endpoint.port) as stream:
        await stream.send(http.send(request) + http.send(h11.EndOfMessage()))
        received = 0
        while True:
            event = http.next_event()
            if isinstance(event, h11.Response):
                return event.status_code
            if isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("the connection closed before a response")
            if event is h11.NEED_DATA:
                try:
                    chunk = await stream.receive()
                except anyio.EndOfStream:
                    chunk = b""
                received += len(chunk)
                if received > _MAX_RESPONSE_BYTES:
                    raise h11.RemoteProtocolError("the response head is too long")
                http.receive_data(chunk)
