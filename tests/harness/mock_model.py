"""A scripted OpenAI Responses API server on 127.0.0.1 for running Codex offline.

The server runs ``ThreadingHTTPServer`` in a background thread, so it serves
sync scripts and async tests alike. Every request is recorded; replies come
from :func:`tests.harness.scenarios.decide`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast

from tests.harness.scenarios import ErrorReply, Reply, ScenarioOptions, StreamReply, analyse, decide

log = logging.getLogger(__name__)

RESPONSES_PATH = "/v1/responses"


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the mock received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: object
    """The parsed JSON body, the raw text if it was not JSON, or None if empty."""
    scenario: str | None
    """The scenario chosen for a ``POST /v1/responses`` request, else None."""
    status: int
    received_at: float

    @property
    def json(self) -> dict[str, object]:
        """The body as a JSON object (empty if it was something else)."""
        return json_object(self.body)

    @property
    def input_items(self) -> list[dict[str, object]]:
        """The ``input`` items of a Responses API request."""
        items = self.json.get("input")
        if not isinstance(items, list):
            return []
        return [obj for obj in map(json_object, cast(list[object], items)) if obj]


def json_object(value: object) -> dict[str, object]:
    """``value`` as a JSON object, or an empty dict if it is not one."""
    return dict(cast(dict[str, object], value)) if isinstance(value, dict) else {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mock: MockModelServer


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: the stream ends when the socket closes, which makes ``drop`` trivial.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("mock model: " + format, *args)

    def _read_body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send_json(self, status: int, body: Mapping[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @property
    def mock(self) -> MockModelServer:
        return cast(_Server, self.server).mock

    def _handle(self) -> None:
        mock = self.mock
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        request_body = json_object(body)
        if self.command == "POST" and path == RESPONSES_PATH and isinstance(body, dict):
            scenario = analyse(request_body).scenario
            script = mock.custom_scenarios.get(scenario, decide)
            reply = script(request_body, mock.options)
            status = reply.status if isinstance(reply, ErrorReply) else 200
            mock.record_request(self, path, request_body, scenario, status)
            self._send_reply(reply)
            return
        mock.record_request(self, path, body, None, 404)
        self._send_json(
            404, {"error": {"message": f"mock model: no route {self.command} {path}", "type": "not_found"}}
        )

    def _send_reply(self, reply: Reply) -> None:
        if isinstance(reply, ErrorReply):
            self._send_json(reply.status, reply.body)
            return
        self._stream(reply)

    def _stream(self, reply: StreamReply) -> None:
        stopping = self.mock.stopping
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for event in reply.events:
                # Pacing of the ``slow`` scenario; aborts early when the server stops.
                if event.delay > 0 and stopping.wait(event.delay):
                    return
                self.wfile.write(event.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log.debug("mock model: client closed the stream")
            return
        if reply.hang:
            stopping.wait()
            return
        if reply.drop:
            self.close_connection = True

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_CONNECT(self) -> None:
        # Codex's environment points HTTP(S)_PROXY here, so any attempt to reach
        # the internet lands as a CONNECT: record it and refuse.
        self.mock.record_request(self, self.path, None, None, 403)
        self._send_json(403, {"error": {"message": "mock model: network access is blocked in tests"}})
        self.close_connection = True


Script = Callable[[Mapping[str, object], ScenarioOptions], Reply]
"""A scenario implementation: ``(request body, options) -> reply``; must be stateless."""


class MockModelServer:
    """Scripted Responses API server; use as a context manager or via start()/stop().

    ``custom_scenarios`` adds or overrides scenarios by name (selected by the same
    ``scenario:<name>`` marker); everything else is answered by :func:`decide`.
    """

    def __init__(
        self,
        options: ScenarioOptions | None = None,
        host: str = "127.0.0.1",
        custom_scenarios: Mapping[str, Script] | None = None,
    ) -> None:
        self.options = options or ScenarioOptions()
        self.custom_scenarios: dict[str, Script] = dict(custom_scenarios or {})
        self._host = host
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> MockModelServer:
        """Bind a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((self._host, 0), _Handler)
        server.mock = self
        self._server = server
        self._stopping.clear()
        # A short poll interval keeps stop() (which waits for the serve loop) fast.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="mock-model", daemon=True
        )
        self._thread.start()
        log.debug("mock model listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving; streams in progress are abandoned."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MockModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("mock model server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The provider ``base_url`` for Codex (ends in ``/v1``)."""
        return f"http://{self._host}:{self.port}/v1"

    # --- recording ----------------------------------------------------------

    @property
    def stopping(self) -> threading.Event:
        """Set while the server shuts down; paced streams abort on it."""
        return self._stopping

    def record_request(
        self, handler: BaseHTTPRequestHandler, path: str, body: object, scenario: str | None, status: int
    ) -> None:
        """Record one request (called by the request handler)."""
        entry = RecordedRequest(
            method=handler.command,
            path=path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            scenario=scenario,
            status=status,
            received_at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(entry)
            self._lock.notify_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far."""
        with self._lock:
            return list(self._requests)

    def responses_requests(self) -> list[RecordedRequest]:
        """Only the ``POST /v1/responses`` requests."""
        return [r for r in self.requests if r.method == "POST" and r.path == RESPONSES_PATH]

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def wait_for_responses_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` Responses requests arrived; raise TimeoutError otherwise."""

        def enough() -> bool:
            return sum(1 for r in self._requests if r.path == RESPONSES_PATH) >= count

        with self._lock:
            if not self._lock.wait_for(enough, timeout):
                raise TimeoutError(f"mock model got fewer than {count} responses requests in {timeout}s")
        return self.responses_requests()


@dataclass(frozen=True)
class ParsedEvent:
    """One server-sent event as a client sees it."""

    event: str
    data: dict[str, object]


def parse_sse(raw: bytes) -> list[ParsedEvent]:
    """Split an SSE body into events (``event:`` / ``data:`` blocks separated by blank lines)."""
    events: list[ParsedEvent] = []
    for block in raw.decode("utf-8").split("\n\n"):
        name = ""
        data_lines: list[str] = []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data_lines.append(line[len("data:") :].strip())
        if name or data_lines:
            parsed: object = json.loads("\n".join(data_lines)) if data_lines else {}
            events.append(ParsedEvent(name, json_object(parsed)))
    return events
