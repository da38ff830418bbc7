"""Where a running `codex app-server` listens, and how it refuses a WebSocket upgrade.

Codex listens on `unix://PATH` (WebSocket over a unix socket) or `ws://IP:PORT`; there is no TLS
listener, so `wss://` is not an address we can reach directly (an SSH tunnel or a proxy gives it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

# Longest body of a refused upgrade quoted in an error (Codex sends one short line).
_REJECTION_BODY_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed app-server address: a unix socket path, or a host and port."""

    scheme: Literal["unix", "ws"]
    path: str = ""
    host: str = ""
    port: int = 0

    @property
    def url(self) -> str:
        """The address as given, for messages and logs (it never carries a credential)."""
        return f"unix://{self.path}" if self.scheme == "unix" else f"ws://{_bracket(self.host)}:{self.port}"

    @property
    def host_header(self) -> str:
        """The `Host` of the upgrade request (a unix socket has none; Codex ignores it)."""
        return "localhost" if self.scheme == "unix" else f"{_bracket(self.host)}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """`unix:///abs/path` or `ws://host:port` (an optional `/` path only).

    Raises:
        ValueError: any other form, with what was wrong; the message repeats no userinfo.
    """
    parts = urlsplit(url)
    if parts.scheme == "unix":
        # `unix:///abs` splits into an empty netloc and the path.
        path = parts.netloc + parts.path
        if not path.startswith("/"):
            raise ValueError("a unix:// app-server address needs an absolute socket path (unix:///path)")
        return Endpoint("unix", path=path)
    if parts.scheme == "ws":
        if parts.username is not None or parts.password is not None:
            raise ValueError("a ws:// app-server address must not carry credentials; use a token file")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("a ws:// app-server address is ws://HOST:PORT, without a path or query")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"a ws:// app-server address has a bad port: {exc}") from None
        if not parts.hostname or port is None:
            raise ValueError("a ws:// app-server address needs a host and a port (ws://HOST:PORT)")
        return Endpoint("ws", host=parts.hostname, port=port)
    if parts.scheme == "wss":
        raise ValueError(
            "codex app-server has no TLS listener: reach a remote one over an SSH tunnel (ws://127.0.0.1:PORT)"
        )
    raise ValueError("an app-server address starts with unix:// or ws://")


def rejection_reason(status: int, body: bytes) -> str:
    """Why an app-server (or something in front of it) refused our upgrade with HTTP `status`."""
    text = body.decode("utf-8", "replace").strip()[:_REJECTION_BODY_CHARS]
    said = f": {text}" if text else ""
    if status == 401:
        return f"HTTP 401{said}; check the token (a listener started with --ws-auth needs the right one)"
    if status == 403:
        return (
            f"HTTP 403{said}; Codex refuses an upgrade that carries an Origin header, so a proxy in "
            "between may be adding one"
        )
    return f"HTTP {status}{said}; this does not look like a codex app-server WebSocket listener"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
