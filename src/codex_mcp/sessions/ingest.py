"""Turn Codex notifications into session events and state.

Every notification routed to a session is recorded (nothing dropped); a few also move the
session's state: turn start and end, agent messages, token usage, errors and reconnects.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, Final, cast

from codex_mcp.sessions.events import now_iso
from codex_mcp.sessions.noise import strip_noise
from codex_mcp.sessions.session import Session
from codex_mcp.wire.app_server import DELTA_NOTIFICATIONS
from codex_mcp.wire.methods import (
    ERROR,
    ITEM_AGENT_MESSAGE_DELTA,
    ITEM_COMMAND_EXECUTION_OUTPUT_DELTA,
    ITEM_COMPLETED,
    ITEM_STARTED,
    THREAD_TOKEN_USAGE_UPDATED,
    TURN_COMPLETED,
    TURN_STARTED,
)

Params = dict[str, Any]
_OUTPUT_ITEM_TYPES: Final = frozenset({"agentMessage", "userMessage"})
_PHASE_BY_ITEM: Final = {
    "reasoning": "reasoning",
    "commandExecution": "acting",
    "fileChange": "acting",
    "mcpToolCall": "acting",
    "agentMessage": "responding",
}


def _obj(value: object) -> Params:
    return value if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def _event_data(method: str, params: Params) -> Params:
    data: Params = {"method": method, **params}
    item = _obj(params.get("item"))
    if "id" in item and "itemId" not in data:
        data["itemId"] = item["id"]
    return data


def ingest_notification(session: Session, method: str, params: Params) -> None:
    """Record one notification for `session` and apply what it means."""
    session.touch()
    session.last_method = method
    special = _SPECIAL.get(method)
    if special is not None:
        special(session, params)
        return
    # Streaming deltas: merged into one event per item while they stream, skippable by `skipDeltas`.
    if method in DELTA_NOTIFICATIONS:
        if method == ITEM_COMMAND_EXECUTION_OUTPUT_DELTA and session.filter_noise:
            filtered = _without_noise(params)
            if filtered is None:
                return
            params = filtered
        key = f"{method}:{params.get('itemId', params.get('turnId', ''))}"
        event_type = "output" if method == ITEM_AGENT_MESSAGE_DELTA else "progress"
        session.buffer.append(event_type, _event_data(method, params), coalesce_key=key)
        return
    if method in (ITEM_STARTED, ITEM_COMPLETED):
        _item(session, method, params)
        return
    session.buffer.append("progress", _event_data(method, params))


def _without_noise(params: Params) -> Params | None:
    """The delta with its noise lines dropped; None when nothing but noise is left."""
    delta = params.get("delta")
    if not isinstance(delta, str):
        return params
    kept = strip_noise(delta)
    if kept == delta:
        return params
    return {**params, "delta": kept} if kept else None


def _item(session: Session, method: str, params: Params) -> None:
    item = _obj(params.get("item"))
    item_type = item.get("type")
    if method == ITEM_STARTED and isinstance(item_type, str):
        session.phase = _PHASE_BY_ITEM.get(item_type, session.phase)
    if method == ITEM_COMPLETED and item_type == "agentMessage":
        text = item.get("text")
        if isinstance(text, str):
            session.turn_agent_messages.append(text)
    if method == ITEM_COMPLETED and item_type == "commandExecution":
        session.turn_commands.append(_command_record(item))
    if method == ITEM_COMPLETED and item_type == "fileChange":
        session.turn_files.extend(_file_records(item))
    event_type = "output" if item_type in _OUTPUT_ITEM_TYPES else "progress"
    session.buffer.append(event_type, _event_data(method, params))


def _command_record(item: Params) -> Params:
    """A completed command as a digest lists it: its command line, status and exit code."""
    command = item.get("command")
    record: Params = {"command": command if isinstance(command, str) else json.dumps(command)}
    if isinstance(item.get("status"), str):
        record["status"] = item["status"]
    exit_code = item.get("exitCode")
    if isinstance(exit_code, int) and not isinstance(exit_code, bool):
        record["exitCode"] = exit_code
    return record


def _file_records(item: Params) -> list[Params]:
    """The files of a completed file change, as a digest lists them (path and change kind)."""
    records: list[Params] = []
    for raw in cast(list[object], item.get("changes") or []):
        change = _obj(raw)
        path = change.get("path")
        if isinstance(path, str):
            record: Params = {"path": path}
            kind = _obj(change.get("kind")).get("type")
            if isinstance(kind, str):
                record["status"] = kind
            records.append(record)
    return records


def _turn_started(session: Session, params: Params) -> None:
    turn = _obj(params.get("turn"))
    if isinstance(turn.get("id"), str):
        session.active_turn_id = turn["id"]
    session.buffer.append("progress", _event_data(TURN_STARTED, params))


def _token_usage(session: Session, params: Params) -> None:
    total = _obj(_obj(params.get("tokenUsage")).get("total"))
    if total:
        tokens = session.tokens
        tokens.input_tokens = int(total.get("inputTokens", 0))
        tokens.cached_input_tokens = int(total.get("cachedInputTokens", 0))
        tokens.output_tokens = int(total.get("outputTokens", 0))
        tokens.reasoning_output_tokens = int(total.get("reasoningOutputTokens", 0))
        tokens.total_tokens = int(total.get("totalTokens", 0))
        tokens.seen = True
    session.buffer.append("progress", _event_data(THREAD_TOKEN_USAGE_UPDATED, params))


def _error(session: Session, params: Params) -> None:
    error = _obj(params.get("error"))
    if params.get("willRetry"):
        if session.reconnecting_since is None:
            session.reconnecting_since = time.monotonic()
        session.phase = "retrying"
        data = {**_event_data("codex-mcp/reconnect", params), "sourceMethod": ERROR, "phase": "retrying"}
        session.buffer.append("progress", data, pinned=True)
        return
    session.turn_error = {"message": str(error.get("message", "Codex reported an error"))}
    session.turn_errors.append(session.turn_error["message"])
    if error.get("codexErrorInfo") is not None:
        session.turn_error["codexErrorInfo"] = error["codexErrorInfo"]
    session.buffer.append("error", _event_data(ERROR, params))


def _turn_completed(session: Session, params: Params) -> None:
    turn = _obj(params.get("turn"))
    turn_id = turn.get("id")
    stale = turn_id in session.ended_turn_ids or (
        session.active_turn_id is not None and turn_id != session.active_turn_id
    )
    if session.turn_finished.is_set() or stale:
        # A turn we already ended (reconnect timeout, child exit) or an older one: just news.
        session.buffer.append("progress", _event_data(TURN_COMPLETED, params))
        return
    status = str(turn.get("status", "completed"))
    finish_turn(session, status=status, turn_id=turn.get("id"), turn=turn)


def finish_turn(
    session: Session,
    *,
    status: str,
    turn_id: object,
    turn: Params | None = None,
    reason: str | None = None,
    error_message: str | None = None,
) -> None:
    """Close the current turn: build its result, set the session status, wake waiters."""
    turn = turn or {}
    text = session.turn_agent_messages[-1] if session.turn_agent_messages else _text_from_items(turn)
    result: Params = {"status": status, "completedAt": now_iso()}
    if isinstance(turn_id, str):
        result["turnId"] = turn_id
    if text is not None:
        result["text"] = text
        result["output"] = text
        if session.turn_has_output_schema:
            with contextlib.suppress(ValueError):
                result["structuredOutput"] = json.loads(text)
    error = session.turn_error
    turn_error = _obj(turn.get("error"))
    if error is None and turn_error.get("message"):
        error = {"message": str(turn_error["message"])}
        if turn_error.get("codexErrorInfo") is not None:
            error["codexErrorInfo"] = turn_error["codexErrorInfo"]
    if error_message is not None:
        error = {"message": error_message}
    if error is not None and status != "completed":
        result["error"] = error
    if reason is not None:
        result["reason"] = reason
    if session.tokens.seen:
        result["usage"] = session.tokens.to_json()
    session.result = result
    session.turn_results.append(result)
    session.completed_at = result["completedAt"]
    if isinstance(turn_id, str):
        session.ended_turn_ids.append(turn_id)
    session.active_turn_id = None
    session.reconnecting_since = None
    if session.status != "cancelled":
        session.status = "idle" if status in ("completed", "interrupted") else "error"
    session.phase = "finished"
    event: Params = {"method": TURN_COMPLETED, **{k: v for k, v in result.items() if k != "output"}}
    session.buffer.append("result", event)
    session.turn_finished.set()
    if session.on_turn_end is not None:
        session.on_turn_end(session)


def _text_from_items(turn: Params) -> str | None:
    items = turn.get("items")
    if not isinstance(items, list):
        return None
    texts = [
        str(_obj(item).get("text"))
        for item in cast(list[Any], items)
        if _obj(item).get("type") == "agentMessage" and isinstance(_obj(item).get("text"), str)
    ]
    return texts[-1] if texts else None


_SPECIAL: Final[dict[str, Callable[[Session, Params], None]]] = {
    TURN_STARTED: _turn_started,
    TURN_COMPLETED: _turn_completed,
    THREAD_TOKEN_USAGE_UPDATED: _token_usage,
    ERROR: _error,
}


def recover_turn(session: Session, turn: Params, *, running: bool) -> None:
    """Catch `session` up with its turn as Codex has it after nobody was attached for a while: the
    items it completed that no event shows yet become events (marked `recovered`); a turn that
    ended meanwhile ends here too, with its real result."""
    if session.active_turn_id is not None and turn.get("id") != session.active_turn_id:
        return  # not the turn this session was running: nothing of it to recover
    seen = {event.data.get("itemId") for event in session.buffer.events()}
    for raw in cast(list[object], turn.get("items") or []):
        item = _obj(raw)
        if item.get("id") in seen:
            continue
        params = {"threadId": session.thread_id, "turnId": turn.get("id"), "item": item, "recovered": True}
        ingest_notification(session, ITEM_COMPLETED, params)
    if not running:
        ended = {"threadId": session.thread_id, "turn": turn, "recovered": True}
        ingest_notification(session, TURN_COMPLETED, ended)
