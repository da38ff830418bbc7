"""Digests (`responseMode: "digest"`): what an orchestrator needs of a session's turn, within a byte
budget, with the resources that hold the rest.

A digest holds the final message, the commands run with their exit codes, the files changed (the
worktree's change summary when the session has one, else Codex's file-change items), the errors,
the pending actions and the token usage. Sizes are compact JSON, as `maxBytes` measures. When the
whole does not fit, each part gets a share of the budget (what one part does not use goes to the
others), the cut parts are named in `cut` and `truncated` is true.
"""

from __future__ import annotations

from typing import Any, Final, cast

from codex_mcp.resources.records import events_uri, patch_uri, turns_uri
from codex_mcp.sessions.session import TERMINAL, Session
from codex_mcp.sessions.shaping import json_size
from codex_mcp.wire.tools import Digest, output_json

DEFAULT_DIGEST_BYTES: Final = 8192
COMMAND_CHARS: Final = 300
ERROR_CHARS: Final = 500
# The share of the budget left after the fixed fields that each part may take before the others
# have theirs; what a part leaves goes to the next in this order.
_SHARES: Final = {"finalMessage": 0.4, "commands": 0.3, "files": 0.15, "errors": 0.15}
_FILE_KEYS: Final = ("path", "status", "linesAdded", "linesDeleted")
_ACTION_KEYS: Final = ("type", "requestId", "kind", "createdAt", "command")
# `"truncated":true,"cut":[…every part…]` and the commas around it.
_MARK_RESERVE: Final = json_size({"truncated": True, "cut": [*_SHARES, "actions"]})


def _cut_text(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(0, chars - 1)] + "…"


def _files(session: Session) -> list[dict[str, Any]]:
    result = session.result if session.status in TERMINAL else None
    changes = (
        cast(dict[str, Any], result.get("changes"))
        if result and isinstance(result.get("changes"), dict)
        else None
    )
    if changes is not None and isinstance(changes.get("files"), list):
        files: list[dict[str, Any]] = []
        for raw in cast(list[object], changes["files"]):
            if not isinstance(raw, dict):
                continue
            entry = cast(dict[str, Any], raw)
            kept = {
                key: entry[key] for key in ("path", "status", "linesAdded", "linesDeleted") if key in entry
            }
            if "path" in kept:
                files.append(kept)
        return files
    latest: dict[str, dict[str, Any]] = {}
    for entry in session.turn_files:
        latest.pop(entry["path"], None)
        latest[entry["path"]] = dict(entry)
    return list(latest.values())


def _file_count(session: Session, files: list[dict[str, Any]]) -> int:
    result = session.result if session.status in TERMINAL else None
    changes = result.get("changes") if result else None
    if isinstance(changes, dict):
        count = cast(dict[str, Any], changes).get("filesChanged")
        if isinstance(count, int):
            return count
    return len(files)


def digest_values(session: Session) -> dict[str, Any]:
    """The whole digest of `session`'s current or last turn, uncut, as JSON values."""
    sid = session.session_id
    values: dict[str, Any] = {"sessionId": sid, "status": session.status}
    result = session.result if session.status in TERMINAL else None
    turn_id = (result or {}).get("turnId") or session.active_turn_id
    if isinstance(turn_id, str):
        values["turnId"] = turn_id
    if result is not None:
        values["turnStatus"] = str(result.get("status"))
    text = result.get("text") if result is not None else None
    if not isinstance(text, str) and session.turn_agent_messages:
        text = session.turn_agent_messages[-1]
    if isinstance(text, str):
        values["finalMessage"] = text
        values["finalMessageChars"] = len(text)
    commands = [
        {**entry, "command": _cut_text(str(entry.get("command", "")), COMMAND_CHARS)}
        for entry in session.turn_commands
    ]
    values["commands"] = commands
    values["commandCount"] = len(commands)
    files = _files(session)
    values["files"] = files
    values["fileCount"] = _file_count(session, files)
    errors = [_cut_text(message, ERROR_CHARS) for message in session.turn_errors]
    error = (result or {}).get("error")
    if isinstance(error, dict):
        message = _cut_text(str(cast(dict[str, Any], error).get("message", "")), ERROR_CHARS)
        if message and message not in errors:
            errors.append(message)
    values["errors"] = errors
    if session.pending:
        values["actions"] = [output_json(action) for action in session.actions()]
    if session.tokens.seen:
        values["usage"] = session.tokens.to_json()
    values["fullRecord"] = events_uri(sid)
    values["turnsRecord"] = turns_uri(sid)
    if session.settings.worktree is not None:
        values["patchRecord"] = patch_uri(sid)
    return values


def _field_size(key: str, value: object) -> int:
    return json_size(key) + 1 + json_size(value) + 1


def _fit_text(text: str, limit: int) -> str:
    """The longest start of `text` whose JSON fits `limit` bytes."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if json_size(text[:mid]) <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def _fit_list(items: list[Any], limit: int, order: list[int]) -> list[Any]:
    """The items (by index, in `order` of preference) whose JSON list fits `limit`, in their order."""
    kept: list[int] = []
    size = 2
    for index in order:
        grow = json_size(items[index]) + (1 if kept else 0)
        if size + grow > limit:
            continue
        kept.append(index)
        size += grow
    return [items[index] for index in sorted(kept)]


def _command_order(commands: list[dict[str, Any]]) -> list[int]:
    """Failed commands first, then the rest; latest first within each."""

    def failed(entry: dict[str, Any]) -> bool:
        return entry.get("exitCode", 0) != 0 or entry.get("status") in ("failed", "declined")

    latest = list(range(len(commands) - 1, -1, -1))
    return [i for i in latest if failed(commands[i])] + [i for i in latest if not failed(commands[i])]


def fit_digest(values: dict[str, Any], limit: int) -> dict[str, Any]:
    """`values` (a `digest_values`) cut so its compact JSON takes at most `limit` bytes, as far as
    the fixed fields (ids, status, counts, usage, the resource URIs) allow."""
    if json_size(values) <= limit:
        return values
    cut: list[str] = []
    out = dict(values)
    for part in _SHARES:
        out.pop(part, None)
    actions = cast(list[dict[str, Any]], out.get("actions", []))
    if actions and json_size(out) + _MARK_RESERVE > limit:
        out["actions"] = [{key: action[key] for key in _ACTION_KEYS if key in action} for action in actions]
        while len(out["actions"]) > 1 and json_size(out) + _MARK_RESERVE > limit:
            out["actions"] = out["actions"][:-1]
        cut.append("actions")
    available = max(0, limit - json_size(out) - _MARK_RESERVE)
    fitted = _share_out(values, out, available, cut)
    for _attempt in range(4):
        overflow = json_size(fitted) - limit
        if overflow <= 0:
            return fitted
        available = max(0, available - overflow)
        fitted = _share_out(values, out, available, cut)
    return fitted


def _share_out(
    values: dict[str, Any], fixed: dict[str, Any], available: int, cut_before: list[str]
) -> dict[str, Any]:
    present = [part for part in _SHARES if part in values]
    sizes = {part: _field_size(part, values[part]) for part in present}
    grant = {part: min(sizes[part], int(available * _SHARES[part])) for part in present}
    left = available - sum(grant.values())
    for part in present:
        extra = min(sizes[part] - grant[part], left)
        grant[part] += extra
        left -= extra
    out: dict[str, Any] = {}
    cut = list(cut_before)
    for key, value in values.items():
        if key not in _SHARES:
            out[key] = fixed.get(key, value)
            continue
        if grant[key] >= sizes[key]:
            out[key] = value
            continue
        cut.append(key)
        budget = grant[key] - json_size(key) - 2
        if key == "finalMessage":
            out[key] = _fit_text(str(value), max(2, budget))
        else:
            items = cast(list[Any], value)
            order = _command_order(items) if key == "commands" else list(range(len(items)))
            out[key] = _fit_list(items, max(2, budget), order)
    if cut:
        out["truncated"] = True
        out["cut"] = [part for part in (*_SHARES, "actions") if part in cut]
    return out


def session_digest(session: Session, limit: int) -> Digest:
    """The `Digest` of `session` whose JSON takes at most `limit` bytes (as far as it can)."""
    return digest_model(fit_digest(digest_values(session), limit))


def digest_model(values: dict[str, Any]) -> Digest:
    """A digest's values as the model."""
    return Digest.model_validate(values)
