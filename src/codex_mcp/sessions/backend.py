"""The seam between sessions and what runs them: a `Backend` starts threads and turns in Codex.

The manager keeps sessions and commands; a backend turns them into Codex calls. Two exist:
`AppServerBackend` (JSON-RPC to pooled `codex app-server` children) and `ExecBackend` (one
`codex exec --json` child per turn). Which one runs sessions is settled on first need
(`backend_mode.py`), and can change once: an app-server that will not start on a Codex without
one makes the app-server backend raise `NoAppServerError`, and `BackendSwitch` moves to exec.

What a backend hears from Codex goes back to the manager through `BackendEvents`, whatever the
backend, so polls look the same in both modes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from codex_mcp.backend_mode import BackendMode, ModeChoice, ModeResolver
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.wire.app_server import Notification, RequestId, ServerRequest


@dataclass
class TurnRequest:
    """What a new turn carries (first turn or reply)."""

    prompt: str
    images: list[str] = field(default_factory=lambda: [])
    effort: str | None = None
    summary: str | None = None
    personality: str | None = None
    output_schema: dict[str, Any] | None = None
    collaboration_mode: str | None = None
    model: str | None = None
    approval_policy: str | None = None
    sandbox: str | None = None
    cwd: str | None = None


@dataclass(frozen=True)
class SteerRequest:
    """Input for a running turn (`codex_reply` with `steer: true`)."""

    prompt: str
    images: list[str]
    # Codex's `clientUserMessageId`: the `clientId` of the userMessage item the input shows up as.
    client_message_id: str


@dataclass(frozen=True)
class StartedThread:
    """A thread a backend started: its id, and the model Codex chose when the caller named none."""

    thread_id: str
    model: str | None = None
    # The connection key the thread lives on, when not the backend's own (a remote host's).
    key: str | None = None


@dataclass(frozen=True)
class Reattached:
    """A thread picked up again: its last turn as Codex sent it (None: Codex gave none), and
    whether that turn still runs (its further events then come as they happen)."""

    turn: dict[str, Any] | None
    running: bool


class NoAppServerError(Exception):
    """Starting `codex app-server` showed this Codex has none: sessions move to exec."""


class Responder(Protocol):
    """Where the answer to a request from Codex goes (the connection it came on)."""

    async def respond(self, request_id: RequestId, result: Any) -> None:
        """Answer the request `request_id` with `result`."""
        ...

    async def respond_error(self, request_id: RequestId, code: int, message: str) -> None:
        """Refuse the request `request_id`."""
        ...


class BackendEvents(Protocol):
    """What a backend hands back to the manager."""

    def on_notification(self, message: Notification) -> None:
        """A notification from Codex, for the session whose thread it names."""
        ...

    async def on_server_request(self, responder: Responder, message: ServerRequest) -> None:
        """A request from Codex, to be answered through `responder`."""
        ...

    def on_closed(self, key: str, reason: str, stderr_tail: str) -> None:
        """The Codex process of `key` exited: its running turns are over."""
        ...

    def on_event(self, session: Session, method: str, params: dict[str, Any]) -> None:
        """An event of `session`'s turn (exec events arrive mapped to notification form)."""
        ...

    def name_thread(self, session: Session, thread_id: str) -> None:
        """`session`'s thread has its real id now (exec learns it from the first turn)."""
        ...


class Backend(Protocol):
    """Runs sessions' threads and turns in Codex."""

    @property
    def name(self) -> BackendMode:
        """What a session running here records as its backend."""
        ...

    @property
    def key(self) -> str:
        """The connection key of sessions this backend starts (turns of one key fail together)."""
        ...

    def outlives_us(self, key: str) -> bool:
        """Whether running turns of connection `key` go on after this server exits (a shared
        service or a remote host runs them)."""
        ...

    def close(self) -> None:
        """Let go of what this backend holds for the server (run at the manager's end)."""
        ...

    async def reattach(self, session: Session) -> Reattached:
        """Pick up the turn `session` ran when an earlier server left it (turns that outlive us
        only): its thread resumed here, and its last turn as Codex has it now."""
        ...

    async def forget(self, session: Session) -> None:
        """`session` is forgotten: let Codex unload its thread (bounded, never raises)."""
        ...

    def maintain(self, busy_keys: set[str]) -> None:
        """Periodic upkeep, told which connection keys have turns running (e.g. recycle a Codex
        process grown past its memory bound that runs none)."""
        ...

    async def warm_up(self) -> None:
        """Start now what the next session will need (a Codex process), so it does not wait for it."""
        ...

    async def start_thread(self, settings: ThreadSettings) -> StartedThread:
        """Start a thread with `settings` (the recursion guard is the backend's to add)."""
        ...

    async def prepare(self, session: Session, warnings: list[str]) -> None:
        """Make `session`'s thread ready for its next turn (resume it where it is not loaded);
        `warnings` gets what the turn will miss."""
        ...

    async def start_turn(self, session: Session, turn: TurnRequest, warnings: list[str]) -> None:
        """Send the turn `session.begin_turn` began; `warnings` gets what this backend cannot apply.

        Returns once Codex accepted it; on a refusal the session is left in error.
        """
        ...

    async def steer(self, session: Session, turn_id: str, steer: SteerRequest) -> None:
        """Add `steer`'s input to the running turn `turn_id` of `session`, which goes on.

        SESSION_NOT_RUNNING when that turn is no longer the one running (Codex refused it: nothing
        was added), EXEC_NOT_SUPPORTED where turns cannot be steered.
        """
        ...

    async def interrupt(self, session: Session) -> None:
        """Stop the running turn; SESSION_NOT_RUNNING when there is none to stop."""
        ...

    async def stop_quietly(self, session: Session, turn_id: str | None, why: str) -> None:
        """Best-effort stop of a turn we ended ourselves: bounded, never raises."""
        ...

    async def fork(self, session: Session) -> str:
        """Fork `session`'s thread; the new thread's id (EXEC_NOT_SUPPORTED where it cannot)."""
        ...

    async def clean_background_terminals(self, session: Session) -> None:
        """Stop the background terminals of `session`'s thread (EXEC_NOT_SUPPORTED where it cannot)."""
        ...

    def responder(self, session: Session) -> Responder | None:
        """Where answers to `session`'s pending requests go; None when its Codex is gone."""
        ...

    def kill_now(self) -> None:
        """Kill every Codex process at once (the client's SIGKILL is near)."""
        ...


class BackendSwitch:
    """Which backend sessions run on: settled by the mode resolver, and exec from a fallback on."""

    def __init__(
        self,
        mode: ModeResolver,
        app_server: Callable[[], Backend],
        exec_backend: Callable[[], Backend],
    ) -> None:
        self._mode = mode
        self._make = {"app-server": app_server, "exec": exec_backend}
        self._built: dict[str, Backend] = {}
        known = mode.current
        self._on: BackendMode = "exec" if known is not None and known.mode == "exec" else "app-server"

    @classmethod
    def only(cls, backend: Backend) -> BackendSwitch:
        """A switch that always gives `backend` (a test's fake, or a forced mode)."""
        return cls(ModeResolver.fixed(ModeChoice(backend.name, "given")), lambda: backend, lambda: backend)

    @property
    def mode(self) -> ModeResolver:
        """The resolver that settles the mode."""
        return self._mode

    def _get(self, mode: BackendMode) -> Backend:
        backend = self._built.get(mode)
        if backend is None:
            backend = self._built[mode] = self._make[mode]()
        return backend

    @property
    def assumed(self) -> Backend:
        """The backend sessions run on, as far as is known without probing Codex."""
        return self._get(self._on)

    async def current(self) -> Backend:
        """The backend sessions run on (probing Codex the first time)."""
        choice = await self._mode.resolve()
        if choice.mode == "exec":
            self._on = "exec"
        return self._get(self._on)

    def fall_back(self) -> Backend:
        """Run on exec from now on: an app-server would not start on this Codex."""
        self._on = "exec"
        return self._get("exec")

    def close(self) -> None:
        """Let go of what every backend used so far holds."""
        for backend in self._built.values():
            backend.close()

    def kill_now(self) -> None:
        """Kill every Codex process of every backend used so far."""
        for backend in self._built.values():
            backend.kill_now()
