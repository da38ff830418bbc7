"""What an app-server connection runs over: one JSON-RPC message at a time, in both directions.

The JSON-RPC logic (request matching, dispatch, handshake, close) lives in `app_server`; a
`Channel` is only the framing underneath: the stdio lines of a child we spawned (`ChildChannel`),
or the text messages of a WebSocket to an app-server that runs without us (`websocket`).
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from typing import Final, Protocol

import anyio

from codex_mcp.backends.process import ChildProcess
from codex_mcp.errors import ChildClosedError, CodexProcessError

# After stdout ends, how long to wait for the exit status and the rest of stderr.
_EXIT_AFTER_EOF_GRACE_S: Final = 2.0


class ChannelClosedError(CodexProcessError):
    """A message could not be sent: the channel is closed; `reason` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Channel(Protocol):
    """A message-framed duplex link to one app-server; the opener owns its lifetime."""

    @property
    def messages(self) -> AsyncIterator[bytes]:
        """Inbound messages (one JSON value each), in order; ends when the peer is gone."""
        ...

    async def send(self, message: bytes) -> None:
        """Send one message (a trailing newline is allowed); sends never interleave.

        Raises:
            ChannelClosedError: the channel is closed.
        """
        ...

    async def end_reason(self) -> str:
        """Once `messages` has ended: how the peer went away (bounded wait), e.g. "exited with code 1"."""
        ...

    @property
    def label(self) -> str:
        """Which app-server this is, for logs ("pid 123", "ws://127.0.0.1:4500")."""
        ...

    @property
    def pid(self) -> int | None:
        """The app-server's process id, when known."""
        ...

    def stderr_tail(self) -> str:
        """The app-server's last stderr lines (unredacted), or "" when we cannot see its stderr."""
        ...


class ChildChannel:
    """The stdout lines and stdin of a `ChildProcess` as a `Channel`."""

    def __init__(self, child: ChildProcess) -> None:
        self._child = child

    @property
    def messages(self) -> AsyncIterator[bytes]:
        """Stdout lines."""
        return self._child.lines

    async def send(self, message: bytes) -> None:
        """Write to stdin."""
        try:
            await self._child.write(message)
        except ChildClosedError as exc:
            raise ChannelClosedError("its stdin is closed") from exc

    async def end_reason(self) -> str:
        """The exit status, waited for briefly after stdout ended."""
        with anyio.move_on_after(_EXIT_AFTER_EOF_GRACE_S):
            await self._child.wait_exit()
        return describe_exit(self._child.returncode)

    @property
    def label(self) -> str:
        """ "pid N"."""
        return f"pid {self._child.pid}"

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self._child.pid

    def stderr_tail(self) -> str:
        """The child's stderr tail."""
        return self._child.stderr_tail()


def describe_exit(returncode: int | None) -> str:
    """How a child ended, from its exit status (None: still running, only stdout closed)."""
    if returncode is None:
        return "closed its stdout"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"
