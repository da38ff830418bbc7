"""A scripted Anthropic Messages API on 127.0.0.1, so Claude Code runs offline against our server.

Like :mod:`tests.harness.mock_model` it runs ``ThreadingHTTPServer`` in a daemon thread, records
every request and stays stateless: a request whose latest prompt carries a plan
(:mod:`tests.harness.plans`) gets the plan's next tool call, or the final text once every planned
call has its result; any other request (Claude Code's side requests, a prompt without a plan) gets a
short plain answer. It also answers ``count_tokens`` and ``/v1/models``, and refuses the ``CONNECT``
of anything that tries to leave through the ``HTTPS_PROXY`` pointed at it.

Claude Code names MCP tools ``mcp__<server>__<tool>``; a plan names our tools by their own names.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final, cast

from tests.harness.plans import PLAN_FAILED, PlanError, final_text, find_plan, next_call

log = logging.getLogger(__name__)

MESSAGES_PATH: Final = "/v1/messages"
COUNT_TOKENS_PATH: Final = "/v1/messages/count_tokens"
MODELS_PATH: Final = "/v1/models"
MODEL_ID: Final = "claude-sonnet-4-5-20250929"
DUMMY_KEY: Final = "dummy"
DEFAULT_SERVER: Final = "codex-mcp"
PLAIN_ANSWER: Final = "Hello from the scripted Messages model."
TEXT_CHUNK: Final = 16
JSON_CHUNK: Final = 40


def _as_list(value: object) -> list[object]:
    return list(cast(list[object], value)) if isinstance(value, list) else []


def _as_map(value: object) -> dict[str, object]:
    return dict(cast(dict[str, object], value)) if isinstance(value, dict) else {}


def _blocks(message: Mapping[str, object]) -> list[dict[str, object]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [_as_map(block) for block in _as_list(content)]


def block_text(block: Mapping[str, object]) -> str:
    """The text of a text block, or of a tool_result's content (string or text blocks)."""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in map(_as_map, _as_list(content)))


@dataclass(frozen=True)
class ToolUse:
    """One tool call the model made and, when it is back, its result."""

    id: str
    name: str
    input: Mapping[str, object]
    result: str | None
    is_error: bool


@dataclass(frozen=True)
class MessagesRequest:
    """One HTTP request the mock received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: object
    status: int
    received_at: float

    @property
    def json(self) -> dict[str, object]:
        """The body as a JSON object (empty if it was something else)."""
        return _as_map(self.body)

    @property
    def messages(self) -> list[dict[str, object]]:
        """The ``messages`` of a Messages API request."""
        return [_as_map(m) for m in _as_list(self.json.get("messages"))]

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools the request offers the model."""
        return [str(_as_map(tool).get("name")) for tool in _as_list(self.json.get("tools"))]

    def tool(self, name: str) -> dict[str, object]:
        """The tool definition called ``name`` (empty if not offered)."""
        for tool in map(_as_map, _as_list(self.json.get("tools"))):
            if tool.get("name") == name:
                return tool
        return {}

    def plan_index(self) -> int | None:
        """The index of the latest user message that carries a plan."""
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message.get("role") != "user":
                continue
            text = "".join(block_text(b) for b in _blocks(message) if b.get("type") == "text")
            if find_plan(text) is not None:
                return index
        return None

    def prompt_text(self) -> str:
        """The text of the latest user message with a plan (or of the first user message)."""
        index = self.plan_index()
        messages = self.messages
        if index is None:
            index = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
        if index is None:
            return ""
        return "".join(block_text(b) for b in _blocks(messages[index]) if b.get("type") == "text")

    def tool_uses(self) -> list[ToolUse]:
        """Every tool call of the conversation since the plan, with its result when it is back."""
        start = self.plan_index() or 0
        results: dict[str, tuple[str, bool]] = {}
        for message in self.messages[start:]:
            for block in _blocks(message):
                if block.get("type") == "tool_result":
                    results[str(block.get("tool_use_id"))] = (
                        block_text(block),
                        block.get("is_error") is True,
                    )
        uses: list[ToolUse] = []
        for message in self.messages[start:]:
            if message.get("role") != "assistant":
                continue
            for block in _blocks(message):
                if block.get("type") == "tool_use":
                    use_id = str(block.get("id"))
                    result, is_error = results.get(use_id, (None, False))
                    uses.append(
                        ToolUse(use_id, str(block.get("name")), _as_map(block.get("input")), result, is_error)
                    )
        return uses


# --- SSE ------------------------------------------------------------------------------------


def _sse(event: str, data: Mapping[str, object]) -> bytes:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()


@dataclass(frozen=True)
class TextBlock:
    """An assistant text block."""

    text: str


@dataclass(frozen=True)
class ToolUseBlock:
    """An assistant tool_use block."""

    id: str
    name: str
    input: Mapping[str, object]


Block = TextBlock | ToolUseBlock


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_events(message_id: str, model: str, blocks: Sequence[Block]) -> Iterator[bytes]:
    """The SSE events of one streamed assistant message."""
    usage = {"input_tokens": 100, "output_tokens": 1, "cache_read_input_tokens": 0}
    start: dict[str, object] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    yield _sse("message_start", {"message": start})
    for index, block in enumerate(blocks):
        if isinstance(block, TextBlock):
            yield _sse("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            for chunk in _chunks(block.text, TEXT_CHUNK):
                yield _sse(
                    "content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": chunk}}
                )
        else:
            opening: dict[str, object] = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            yield _sse("content_block_start", {"index": index, "content_block": opening})
            for chunk in _chunks(json.dumps(block.input), JSON_CHUNK):
                delta = {"type": "input_json_delta", "partial_json": chunk}
                yield _sse("content_block_delta", {"index": index, "delta": delta})
        yield _sse("content_block_stop", {"index": index})
    stop = "tool_use" if any(isinstance(b, ToolUseBlock) for b in blocks) else "end_turn"
    yield _sse(
        "message_delta",
        {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 20}},
    )
    yield _sse("message_stop", {})


def message_json(message_id: str, model: str, blocks: Sequence[Block]) -> dict[str, object]:
    """The same message as a non-streaming answer."""
    content: list[dict[str, object]] = [
        {"type": "text", "text": b.text}
        if isinstance(b, TextBlock)
        else {"type": "tool_use", "id": b.id, "name": b.name, "input": dict(b.input)}
        for b in blocks
    ]
    stop = "tool_use" if any(isinstance(b, ToolUseBlock) for b in blocks) else "end_turn"
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 20},
    }


# --- the script -----------------------------------------------------------------------------

TOOL_SEARCH: Final = "ToolSearch"


def mcp_name(server: str, tool: str) -> str:
    """Claude Code's name for an MCP server's tool."""
    return f"mcp__{server}__{tool}"


def decide(request: MessagesRequest, server: str = DEFAULT_SERVER) -> list[Block]:
    """The assistant message that answers one Messages request."""
    turn = len(request.messages)
    try:
        plan = find_plan(request.prompt_text())
    except PlanError as exc:
        return [TextBlock(f"{PLAN_FAILED}: {exc}")]
    if plan is None or not request.tool_names:
        return [TextBlock(PLAIN_ANSWER)]
    uses = [u for u in request.tool_uses() if u.name != TOOL_SEARCH]
    results = [u.result or "" for u in uses]
    try:
        planned = next_call(plan, results)
    except PlanError as exc:
        return [TextBlock(f"{PLAN_FAILED}: {exc}")]
    if planned is None:
        return [TextBlock(final_text(results))]
    name = mcp_name(server, planned.tool)
    if name not in request.tool_names:
        searched = any(u.name == TOOL_SEARCH for u in request.tool_uses())
        if TOOL_SEARCH in request.tool_names and not searched:
            # Deferred MCP tools: load every planned one first, as a real model would.
            wanted = sorted({mcp_name(server, c.tool) for c in plan})
            query = {"query": "select:" + ",".join(wanted), "max_results": len(wanted)}
            return [ToolUseBlock(f"toolu_search_{turn}", TOOL_SEARCH, query)]
        return [TextBlock(f"{PLAN_FAILED}: tool {planned.tool!r} is not offered: {request.tool_names}")]
    return [ToolUseBlock(f"toolu_{len(uses)}_{turn}", name, planned.arguments)]


# --- the server -----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mock: MessagesModelServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("messages model: " + format, *args)

    @property
    def mock(self) -> MessagesModelServer:
        return cast(_Server, self.server).mock

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

    def _handle(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        request = self.mock.record(self, path, body)
        if self.command == "POST" and path == MESSAGES_PATH and isinstance(body, dict):
            self._answer_messages(request)
        elif self.command == "POST" and path == COUNT_TOKENS_PATH:
            self._send_json(200, {"input_tokens": 100})
        elif self.command == "GET" and path.startswith(MODELS_PATH):
            model = {
                "type": "model",
                "id": MODEL_ID,
                "display_name": "Scripted",
                "created_at": "2025-01-01T00:00:00Z",
            }
            if path == MODELS_PATH:
                self._send_json(
                    200, {"data": [model], "has_more": False, "first_id": MODEL_ID, "last_id": MODEL_ID}
                )
            else:
                self._send_json(200, model)
        else:
            error = {"type": "not_found_error", "message": f"messages model: no route {self.command} {path}"}
            self._send_json(404, {"type": "error", "error": error})

    def _answer_messages(self, request: MessagesRequest) -> None:
        blocks = decide(request, self.mock.server_name)
        model = str(request.json.get("model") or MODEL_ID)
        message_id = f"msg_{len(self.mock.requests)}"
        if request.json.get("stream") is not True:
            self._send_json(200, message_json(message_id, model, blocks))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for event in stream_events(message_id, model, blocks):
                self.wfile.write(event)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log.debug("messages model: client closed the stream")

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_CONNECT(self) -> None:
        # The client's HTTPS_PROXY points here: anything trying to reach the internet lands as a CONNECT.
        self.mock.record(self, self.path, None)
        self._send_json(403, {"error": {"message": "messages model: network access is blocked in tests"}})
        self.close_connection = True


class MessagesModelServer:
    """Scripted Messages API server; use as a context manager or via start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", server_name: str = DEFAULT_SERVER) -> None:
        self.server_name = server_name
        """The MCP server whose tools the plans call."""
        self._host = host
        self._lock = threading.Condition()
        self._requests: list[MessagesRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MessagesModelServer:
        """Bind a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((self._host, 0), _Handler)
        server.mock = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="messages-model", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MessagesModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("messages model server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``ANTHROPIC_BASE_URL`` for Claude Code (no ``/v1``: the client adds it)."""
        return f"http://{self._host}:{self.port}"

    def record(self, handler: BaseHTTPRequestHandler, path: str, body: object) -> MessagesRequest:
        """Record one request (called by the request handler)."""
        entry = MessagesRequest(
            method=handler.command,
            path=path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            status=200,
            received_at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(entry)
            self._lock.notify_all()
        return entry

    @property
    def requests(self) -> list[MessagesRequest]:
        """A snapshot of every request received so far."""
        with self._lock:
            return list(self._requests)

    def messages_requests(self) -> list[MessagesRequest]:
        """Only the ``POST /v1/messages`` requests."""
        return [r for r in self.requests if r.method == "POST" and r.path == MESSAGES_PATH]

    def planned_requests(self) -> list[MessagesRequest]:
        """The ``/v1/messages`` requests that carried a plan and offered tools (the main loop's)."""
        return [r for r in self.messages_requests() if r.tool_names and r.plan_index() is not None]

    def connects(self) -> list[MessagesRequest]:
        """The ``CONNECT`` attempts (traffic that tried to leave the machine)."""
        return [r for r in self.requests if r.method == "CONNECT"]
