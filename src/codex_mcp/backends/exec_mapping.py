"""`codex exec --json` events mapped onto app-server notifications, one turn at a time.

`ExecTurnMapper` turns exec's JSONL events into the ``(method, params)`` notifications the session
already consumes from the app-server, so the rest of codex-mcp does not know which backend ran
the turn; `map_line` does the same for one raw stdout line.

What codex-cli 0.163 does, measured against the real binary:

- ``exec resume <id>`` with an unknown UUID fails ("no rollout found"); with an id that is not a
  UUID, it is taken as a thread name and, when none matches, a new thread starts silently. The
  mapper warns when the thread that started is not the one asked for.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Mapping
from typing import Any, Final, cast

from codex_mcp.errors import redact
from codex_mcp.wire import methods
from codex_mcp.wire.exec_events import ExecEvent, parse_event

logger = logging.getLogger(__name__)

__all__ = [
    "ExecTurnMapper",
    "Notification",
    "convert_item",
    "map_line",
]

Notification = tuple[str, dict[str, Any]]
"""``(method, params)`` in app-server vocabulary."""

# How much of the stderr tail goes into an error message.
_TAIL_IN_ERROR_CHARS: Final = 1000
# `error` events Codex sends while it retries: "Reconnecting... 2/5", "retrying sampling request (1/5 ...)".
_RETRY_MESSAGE: Final = re.compile(r"reconnect|\b\d+/\d+\b", re.IGNORECASE)
# The same exec item under its app-server name.
_ITEM_TYPES: Final = {
    "agent_message": "agentMessage",
    "reasoning": "reasoning",
    "command_execution": "commandExecution",
    "file_change": "fileChange",
    "mcp_tool_call": "mcpToolCall",
    "collab_tool_call": "collabAgentToolCall",
    "web_search": "webSearch",
    "todo_list": "todoList",
    "error": "error",
}
# app-server has no notification for an updated item: it goes out in the same shape under this name.
_ITEM_UPDATED: Final = "item/updated"
_ITEM_METHODS: Final = {
    methods.EXEC_EVENT_ITEM_STARTED: methods.ITEM_STARTED,
    methods.EXEC_EVENT_ITEM_UPDATED: _ITEM_UPDATED,
    methods.EXEC_EVENT_ITEM_COMPLETED: methods.ITEM_COMPLETED,
}


def _obj(value: object) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def convert_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An exec item in app-server form: camelCase type and status, camelCase copies of snake_case keys.

    Every original key is kept (``aggregated_output`` next to ``aggregatedOutput``).
    """
    out = dict(item)
    item_type = item.get("type")
    if isinstance(item_type, str):
        out["type"] = _ITEM_TYPES.get(item_type, _camel(item_type))
    for key, value in item.items():
        if "_" in key.strip("_") and not key.startswith("_"):
            out.setdefault(_camel(key), value)
    status = item.get("status")
    if isinstance(status, str):
        out["status"] = _camel(status)
    if item_type == "reasoning" and isinstance(item.get("text"), str) and "summary" not in out:
        out["summary"] = [item["text"]]
    result = item.get("result")
    if isinstance(result, dict):
        converted = dict(cast(dict[str, Any], result))
        for key, value in cast(dict[str, Any], result).items():
            if "_" in key.strip("_") and not key.startswith("_"):
                converted.setdefault(_camel(key), value)
        out["result"] = converted
    return out


def _token_breakdown(usage: Mapping[str, Any]) -> dict[str, Any]:
    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    breakdown: dict[str, Any] = {_camel(key): value for key, value in usage.items()}
    breakdown.update(
        {
            "inputTokens": count("input_tokens"),
            "cachedInputTokens": count("cached_input_tokens"),
            "outputTokens": count("output_tokens"),
            "reasoningOutputTokens": count("reasoning_output_tokens"),
            "totalTokens": count("input_tokens") + count("output_tokens"),
        }
    )
    return breakdown


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ExecTurnMapper:
    """Turns exec events into app-server-style notifications for one turn.

    Stateful: it remembers the thread id, the turn id, the last agent message and whether the
    turn completed; it delivers at most one turn/completed. Each notification keeps the exec
    event's own fields next to the app-server ones.
    """

    def __init__(self, thread_id: str | None, turn_id: str) -> None:
        self.thread_id = thread_id
        self.turn_id = turn_id
        self.completed = False
        self.status: str | None = None
        self.last_agent_message: str | None = None
        self.warnings: list[str] = []
        self._requested_thread_id = thread_id
        self._last_error: str | None = None

    def map(self, event: ExecEvent) -> list[Notification]:
        """The notifications for one typed exec event (possibly none)."""
        return self.map_raw(event.raw)

    def map_raw(self, raw: Mapping[str, Any]) -> list[Notification]:
        """The notifications for one exec event as a JSON object (also one the schema rejected)."""
        event_type = raw.get("type")
        original = {key: value for key, value in raw.items() if key != "type"}
        match event_type:
            case methods.EXEC_EVENT_THREAD_STARTED:
                return self._thread_started(original)
            case methods.EXEC_EVENT_TURN_STARTED:
                turn: dict[str, Any] = {
                    "id": self.turn_id,
                    "items": [],
                    "status": "inProgress",
                    "error": None,
                }
                return [(methods.TURN_STARTED, {**original, "threadId": self.thread_id, "turn": turn})]
            case (
                methods.EXEC_EVENT_ITEM_STARTED
                | methods.EXEC_EVENT_ITEM_UPDATED
                | methods.EXEC_EVENT_ITEM_COMPLETED
            ):
                return self._item(_ITEM_METHODS[event_type], original)
            case methods.EXEC_EVENT_TURN_COMPLETED:
                return self._turn_completed(original)
            case methods.EXEC_EVENT_TURN_FAILED:
                return self._turn_failed(original)
            case methods.EXEC_EVENT_ERROR:
                return [self._error_event(original)]
            case _:
                logger.warning("exec event of unknown type %r skipped", event_type)
                return []

    def finish_without_completion(self, returncode: int | None, stderr_tail: str) -> list[Notification]:
        """error (willRetry false, with the redacted stderr tail) and a failed turn/completed.

        None once the turn has completed.
        """
        if self.completed:
            return []
        if returncode is None:
            message = "codex exec did not start"
        else:
            message = f"codex exec {_describe_exit(returncode)} before the turn completed"
        tail = redact(stderr_tail.strip()[-_TAIL_IN_ERROR_CHARS:])
        if tail:
            message += f"; {'stderr' if returncode is not None else 'reason'}: {tail}"
        error = {"message": message}
        return [
            (
                methods.ERROR,
                {"threadId": self.thread_id, "turnId": self.turn_id, "willRetry": False, "error": error},
            ),
            self._complete("failed", error, {"exitCode": returncode}),
        ]

    def interrupted(self) -> list[Notification]:
        """A turn/completed with status interrupted; none once the turn has completed."""
        if self.completed:
            return []
        return [self._complete("interrupted", None, {})]

    # --- one per event type -----------------------------------------------------------------------

    def _thread_started(self, original: dict[str, Any]) -> list[Notification]:
        thread_id = original.get("thread_id")
        if isinstance(thread_id, str):
            requested = self._requested_thread_id
            if requested is not None and thread_id != requested:
                warning = (
                    f"codex exec resume started thread {thread_id} instead of resuming {requested}: "
                    "the earlier context is not in this turn"
                )
                logger.warning("%s", warning)
                self.warnings.append(warning)
            self.thread_id = thread_id
        return [
            (
                methods.THREAD_STARTED,
                {**original, "threadId": self.thread_id, "thread": {"id": self.thread_id}},
            )
        ]

    def _item(self, method: str, original: dict[str, Any]) -> list[Notification]:
        raw_item = _obj(original.get("item"))
        item = convert_item(raw_item)
        if method == methods.ITEM_COMPLETED and raw_item.get("type") == "agent_message":
            text = raw_item.get("text")
            if isinstance(text, str):
                self.last_agent_message = text
        return [(method, {**original, "threadId": self.thread_id, "turnId": self.turn_id, "item": item})]

    def _turn_completed(self, original: dict[str, Any]) -> list[Notification]:
        if self.completed:
            logger.warning("exec turn.completed after the turn had ended: ignored")
            return []
        usage = _obj(original.get("usage"))
        notes: list[Notification] = []
        if usage:
            # exec reports the thread's cumulative usage and nothing per turn: `last` is the same.
            total = _token_breakdown(usage)
            token_usage = {"total": total, "last": dict(total)}
            params = {"usage": usage, "threadId": self.thread_id, "turnId": self.turn_id}
            notes.append((methods.THREAD_TOKEN_USAGE_UPDATED, {**params, "tokenUsage": token_usage}))
        notes.append(self._complete("completed", None, original))
        return notes

    def _turn_failed(self, original: dict[str, Any]) -> list[Notification]:
        if self.completed:
            logger.warning("exec turn.failed after the turn had ended: ignored")
            return []
        raw_error = _obj(original.get("error"))
        message = raw_error.get("message")
        error = {**raw_error, "message": message if isinstance(message, str) else "the turn failed"}
        notes: list[Notification] = []
        if error["message"] != self._last_error:
            # exec usually sends the same message as an `error` event just before: say it once.
            params = {"threadId": self.thread_id, "turnId": self.turn_id, "willRetry": False}
            notes.append((methods.ERROR, {**params, "error": error}))
        notes.append(self._complete("failed", error, original))
        return notes

    def _error_event(self, original: dict[str, Any]) -> Notification:
        message = original.get("message")
        text = message if isinstance(message, str) else "codex exec reported an error"
        will_retry = bool(_RETRY_MESSAGE.search(text))
        if not will_retry:
            self._last_error = text
        params = {"threadId": self.thread_id, "turnId": self.turn_id, "willRetry": will_retry}
        return (methods.ERROR, {**original, **params, "error": {"message": text}})

    def _complete(self, status: str, error: dict[str, Any] | None, original: dict[str, Any]) -> Notification:
        self.completed = True
        self.status = status
        turn: dict[str, Any] = {"id": self.turn_id, "items": [], "status": status, "error": error}
        return (methods.TURN_COMPLETED, {**original, "threadId": self.thread_id, "turn": turn})


def map_line(mapper: ExecTurnMapper, line: bytes) -> list[Notification]:
    """The notifications for one stdout line; a line that is not an exec event is logged and skipped.

    One of a known type that the schema rejects is still mapped from its JSON.
    """
    event = parse_event(line)
    if isinstance(event, ExecEvent):
        return mapper.map(event)
    raw = _obj(event.raw)
    if raw.get("type") in methods.EXEC_EVENT_TYPES:
        logger.warning("exec event does not match the pinned schema (%s); mapped as is", event.reason)
        return mapper.map_raw(raw)
    logger.warning("skipped a codex exec stdout line (%s): %.200s", event.reason, event.line)
    return []
