"""A minimal synchronous driver for ``codex app-server`` (test tooling only).

Newline-delimited JSON over stdio without a ``"jsonrpc"`` field. A reader thread
parses stdout, another keeps stderr; every line in both directions is kept in
:attr:`AppServerClient.lines`. Server→client requests are answered by a
callback, or queued for the test to answer with :meth:`AppServerClient.respond`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, cast

from tests.harness.procs import descendants, kill_process_group, kill_survivors

log = logging.getLogger(__name__)

Json = dict[str, object]
Direction = Literal["out", "in", "stderr"]
ServerRequestHandler = Callable[[str, Json], object]
"""``(method, params) -> result``; raise :class:`JsonRpcError` to answer with an error."""

DEFAULT_TIMEOUT = 15.0


@dataclass(frozen=True)
class WireLine:
    """One line on the wire: ``out`` = we sent, ``in`` = Codex sent, ``stderr`` = log text."""

    direction: Direction
    msg: object
    at: float


class JsonRpcError(Exception):
    """An error response (received from, or to be sent to, Codex)."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class AppServerExitedError(RuntimeError):
    """The app-server closed stdout while we were waiting for something."""


@dataclass(frozen=True)
class ServerRequest:
    """A request Codex sent to us."""

    id: int | str
    method: str
    params: Json


def _as_json(value: object) -> Json:
    return dict(cast(Json, value)) if isinstance(value, dict) else {}


class AppServerClient:
    """Drive one ``codex app-server`` child process synchronously."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        request_handler: ServerRequestHandler | None = None,
    ) -> None:
        self._argv = list(argv)
        self._env = dict(env)
        self._cwd = cwd
        self.request_handler = request_handler
        self._cond = threading.Condition()
        self._lines: list[WireLine] = []
        self._responses: dict[int | str, Json] = {}
        self._notifications: list[Json] = []
        self._pending_server_requests: list[ServerRequest] = []
        self._eof = False
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> AppServerClient:
        """Spawn the app-server in its own session and start the reader threads."""
        self._proc = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._threads = [
            threading.Thread(
                target=self._read_stdout, args=(self._proc.stdout,), name="app-server-stdout", daemon=True
            ),
            threading.Thread(
                target=self._read_stderr, args=(self._proc.stderr,), name="app-server-stderr", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def close(self, timeout: float = 5.0) -> int | None:
        """Close stdin, wait up to ``timeout`` for exit, then kill the process group (idempotent)."""
        proc = self._proc
        if proc is None or self._closed:
            return None if proc is None else proc.returncode
        self._closed = True
        # Snapshot first: Codex runs tool commands in sessions of their own.
        family = descendants(proc.pid) if proc.poll() is None else {}
        if proc.stdin is not None and not proc.stdin.closed:
            with self._write_lock, contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("app-server did not exit within %ss after stdin closed; killing it", timeout)
        kill_process_group(proc, timeout=timeout)
        kill_survivors(family)
        for thread in self._threads:
            thread.join(timeout=timeout)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode

    def __enter__(self) -> AppServerClient:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The app-server process id."""
        if self._proc is None:
            raise RuntimeError("app-server not started")
        return self._proc.pid

    # --- reading ------------------------------------------------------------

    def _record(self, direction: Direction, msg: object) -> None:
        with self._cond:
            self._lines.append(WireLine(direction, msg, time.monotonic()))

    def _read_stdout(self, stream: IO[bytes]) -> None:
        try:
            for raw in stream:
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    msg: object = json.loads(text)
                except ValueError:
                    self._record("in", text)
                    continue
                self._dispatch(_as_json(msg), msg)
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for raw in stream:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            if text:
                self._record("stderr", text)

    def _dispatch(self, msg: Json, original: object) -> None:
        method = msg.get("method")
        msg_id = msg.get("id")
        request: ServerRequest | None = None
        with self._cond:
            self._lines.append(WireLine("in", original, time.monotonic()))
            if isinstance(method, str) and isinstance(msg_id, (int, str)):
                request = ServerRequest(msg_id, method, _as_json(msg.get("params")))
                if self.request_handler is None:
                    self._pending_server_requests.append(request)
                    request = None
            elif isinstance(method, str):
                self._notifications.append(msg)
            elif isinstance(msg_id, (int, str)):
                self._responses[msg_id] = msg
            self._cond.notify_all()
        # The handler runs outside the lock; it may block (e.g. a test deciding slowly).
        if request is not None:
            self._answer_with_handler(request)

    def _answer_with_handler(self, request: ServerRequest) -> None:
        handler = self.request_handler
        assert handler is not None
        reply: Json
        try:
            reply = {"id": request.id, "result": handler(request.method, request.params)}
        except JsonRpcError as err:
            reply = {"id": request.id, "error": {"code": err.code, "message": err.message, "data": err.data}}
        except Exception as exc:
            log.exception("server request handler failed for %s", request.method)
            reply = {"id": request.id, "error": {"code": -32603, "message": f"test handler failed: {exc}"}}
        try:
            self._send(reply)
        except OSError:
            # The app-server went away; the reader thread notices EOF next.
            log.warning("could not answer %s: app-server stdin is closed", request.method)

    # --- writing ------------------------------------------------------------

    def _send(self, msg: Json) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise RuntimeError("app-server not started")
        if proc.stdin.closed:
            raise BrokenPipeError("app-server stdin is closed")
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        with self._write_lock:
            self._record("out", msg)
            proc.stdin.write(data)
            proc.stdin.flush()

    def send_request(self, method: str, params: Mapping[str, object] | None = None) -> int:
        """Send a request without waiting; returns its id."""
        with self._cond:
            self._next_id += 1
            request_id = self._next_id
        msg: Json = {"id": request_id, "method": method}
        if params is not None:
            msg["params"] = dict(params)
        self._send(msg)
        return request_id

    def notify(self, method: str, params: Mapping[str, object] | None = None) -> None:
        """Send a notification."""
        msg: Json = {"method": method}
        if params is not None:
            msg["params"] = dict(params)
        self._send(msg)

    def respond(self, request_id: int | str, result: object) -> None:
        """Answer a queued server request."""
        self._send({"id": request_id, "result": result})

    def respond_error(self, request_id: int | str, code: int, message: str) -> None:
        """Answer a queued server request with an error."""
        self._send({"id": request_id, "error": {"code": code, "message": message}})

    # --- waiting ------------------------------------------------------------

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: ready() or self._eof, timeout):
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            if not ready():
                raise AppServerExitedError(f"app-server exited while waiting for {what}")

    def wait_response(self, request_id: int, timeout: float = DEFAULT_TIMEOUT) -> Json:
        """Wait for the response to ``request_id``; return ``result`` or raise JsonRpcError."""
        self._wait(lambda: request_id in self._responses, timeout, f"response {request_id}")
        with self._cond:
            msg = self._responses.pop(request_id)
        if "error" in msg:
            err = _as_json(msg["error"])
            code = err.get("code")
            raise JsonRpcError(
                code if isinstance(code, int) else -1, str(err.get("message")), err.get("data")
            )
        return _as_json(msg.get("result"))

    def request(
        self, method: str, params: Mapping[str, object] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Json:
        """Send a request and wait for its result."""
        return self.wait_response(self.send_request(method, params), timeout)

    def initialize(self, client_name: str = "codex-mcp-tests", timeout: float = 30.0) -> Json:
        """``initialize`` with ``experimentalApi`` then the ``initialized`` notification."""
        result = self.request(
            "initialize",
            {
                "clientInfo": {"name": client_name, "title": "codex-mcp test harness", "version": "0.0.0"},
                "capabilities": {"experimentalApi": True},
            },
            timeout,
        )
        self.notify("initialized")
        return result

    def notifications(self, method: str | None = None) -> list[Json]:
        """Notifications received so far (optionally of one method)."""
        with self._cond:
            return [n for n in self._notifications if method is None or n.get("method") == method]

    def wait_notification(
        self,
        method: str,
        predicate: Callable[[Json], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Json:
        """Wait for a notification of ``method`` whose params satisfy ``predicate``; return its params.

        Notifications received earlier count too, so there is no race with a request's response.
        """
        found: list[Json] = []

        def ready() -> bool:
            for note in self._notifications:
                params = _as_json(note.get("params"))
                if note.get("method") == method and (predicate is None or predicate(params)):
                    found.append(params)
                    return True
            return False

        self._wait(ready, timeout, f"notification {method}")
        return found[0]

    def wait_server_request(
        self, method: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> ServerRequest:
        """Pop the first queued server request (of ``method``); only without a handler."""
        found: list[ServerRequest] = []

        def ready() -> bool:
            for request in self._pending_server_requests:
                if method is None or request.method == method:
                    found.append(request)
                    return True
            return False

        self._wait(ready, timeout, f"server request {method or '*'}")
        with self._cond:
            self._pending_server_requests.remove(found[0])
        return found[0]

    def wait_turn_completed(self, turn_id: str, timeout: float = DEFAULT_TIMEOUT) -> Json:
        """Wait for ``turn/completed`` of ``turn_id``; return its ``turn`` object."""
        params = self.wait_notification(
            "turn/completed", lambda p: _as_json(p.get("turn")).get("id") == turn_id, timeout
        )
        return _as_json(params.get("turn"))

    # --- conveniences -------------------------------------------------------

    def start_thread(self, params: Mapping[str, object], timeout: float = DEFAULT_TIMEOUT) -> str:
        """``thread/start``; returns the thread id."""
        result = self.request("thread/start", params, timeout)
        return str(_as_json(result.get("thread")).get("id"))

    def start_turn(
        self,
        thread_id: str,
        text: str,
        extra: Mapping[str, object] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> str:
        """``turn/start`` with one text input plus ``extra`` params; returns the turn id."""
        params: Json = {"threadId": thread_id, "input": [{"type": "text", "text": text}], **(extra or {})}
        result = self.request("turn/start", params, timeout)
        return str(_as_json(result.get("turn")).get("id"))

    def agent_text(self, turn_id: str) -> str:
        """The text of completed agent-message items of a turn."""
        texts: list[str] = []
        for note in self.notifications("item/completed"):
            params = _as_json(note.get("params"))
            item = _as_json(params.get("item"))
            if params.get("turnId") == turn_id and item.get("type") == "agentMessage":
                texts.append(str(item.get("text", "")))
        return "".join(texts)

    @property
    def lines(self) -> list[WireLine]:
        """Every line so far in both directions, plus stderr."""
        with self._cond:
            return list(self._lines)
