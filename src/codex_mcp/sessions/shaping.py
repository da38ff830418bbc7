"""Shape events for `codex_check`: `responseMode` projections and the `maxBytes` cap.

Sizes are measured as compact JSON (`json_size`), the same way `fit_to_max_bytes` measures; the cap
works on a response as the client gets it (`output_json`).
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from codex_mcp.sessions.session import ACTION_KEY_ORDER
from codex_mcp.state.records import Event
from codex_mcp.wire.tools import Event as ShownEvent

__all__ = [
    "DELTA_COMPACT_DELTA_CHARS",
    "DELTA_COMPACT_KEYS",
    "DELTA_COMPACT_SUMMARY",
    "MINIMAL_DELTA_CHARS",
    "MINIMAL_KEYS",
    "MINIMAL_SUMMARY",
    "ResponseMode",
    "fit_to_max_bytes",
    "json_size",
    "shape_event",
]

ResponseMode = Literal["minimal", "delta_compact", "full"]

MINIMAL_KEYS: Final[frozenset[str]] = frozenset(
    {
        "method", "delta", "message", "error", "status", "phase", "itemId", "turnId", "requestId",
        "kind", "decision", "timeout", "willRetry", "retryCount", "maxRetries", "text",
    }
)  # fmt: skip
# Small scalars that say what an approval or a command was about; bulky payloads (`item`,
# `aggregatedOutput`, `params`, diffs) stay `full`-only.
DELTA_COMPACT_KEYS: Final[frozenset[str]] = MINIMAL_KEYS | {
    "reason",
    "command",
    "cwd",
    "sourceMethod",
    "exitCode",
}
MINIMAL_DELTA_CHARS: Final = 256
DELTA_COMPACT_DELTA_CHARS: Final = 2048
MINIMAL_SUMMARY: Final = "omitted for minimal response mode"
DELTA_COMPACT_SUMMARY: Final = "omitted for delta_compact response mode"

_ACTION_KEYS: Final = ("type", "requestId", "kind", "createdAt")
_ACTION_KEY_RANK: Final = {key: rank for rank, key in enumerate(ACTION_KEY_ORDER)}


def json_size(value: object) -> int:
    """Bytes of `value` as compact JSON, the measure `maxBytes` uses."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def shape_event(event: Event, mode: ResponseMode) -> ShownEvent:
    """The event as `events[]` shows it, `{id, type, data, timestamp}`, with `data` projected for `mode`.

    `full` keeps data as is; `delta_compact` keeps `DELTA_COMPACT_KEYS` and cuts `delta` to 2048
    chars; `minimal` keeps `MINIMAL_KEYS` and cuts `delta` to 256 chars. A cut delta carries
    `deltaTruncated: true`. When no key survives, the data is `{"summary": <mode's note>}`, or `{}`
    where the note would be larger than the data it stands for: each mode is never larger than the
    next richer one.
    """
    if mode == "full":
        data = dict(event.data)
    elif mode == "delta_compact":
        data = _delta_compact(event.data)
    else:
        data = _minimal(event.data)
    return ShownEvent(id=event.id, type=event.type, data=data, timestamp=event.timestamp)


def _delta_compact(data: dict[str, Any]) -> dict[str, Any]:
    kept = _project(data, DELTA_COMPACT_KEYS, DELTA_COMPACT_DELTA_CHARS)
    return kept or _summary(DELTA_COMPACT_SUMMARY, data)


def _minimal(data: dict[str, Any]) -> dict[str, Any]:
    kept = _project(data, MINIMAL_KEYS, MINIMAL_DELTA_CHARS)
    return kept or _summary(MINIMAL_SUMMARY, _delta_compact(data))


def _summary(note: str, richer: dict[str, Any]) -> dict[str, Any]:
    # A note saying data was left out, unless it would outweigh the richer mode's data.
    summary = {"summary": note}
    return summary if richer and json_size(summary) <= json_size(richer) else {}


def _project(data: dict[str, Any], keys: frozenset[str], delta_chars: int) -> dict[str, Any]:
    kept = {key: value for key, value in data.items() if key in keys}
    delta = kept.get("delta")
    if isinstance(delta, str) and len(delta) > delta_chars:
        cut = delta[:delta_chars]
        # Only mark a cut that saves bytes once the flag itself is paid for.
        if json_size(cut) + json_size({"deltaTruncated": True}) - 1 < json_size(delta):
            kept["delta"] = cut
            kept["deltaTruncated"] = True
    return kept


def fit_to_max_bytes(response: dict[str, Any], max_bytes: int, *, cursor_start: int) -> dict[str, Any]:
    """Best-effort shrink of a `codex_check` response to `max_bytes` of compact JSON.

    In order, until it fits: drop events from the end (moving `nextCursor` back to the last kept
    event + 1, or to `cursor_start`/`cursorResetTo` when none is kept), drop `result`, strip each
    action to `type/requestId/kind/createdAt`, keep only the first action, drop `actions`. Whatever
    was cut is named in `truncatedFields` with `truncated: true`. `sessionId`, `status`,
    `nextCursor` and `events` are always kept, so the result may still exceed `max_bytes`.
    """
    if json_size(response) <= max_bytes:
        return response
    out = dict(response)
    cut: list[str] = list(out.get("truncatedFields", []))
    fitted = _drop_events(out, cut, max_bytes, cursor_start) and _fits(out, cut, max_bytes)
    for step in (_drop_result, _strip_actions, _first_action_only, _drop_actions):
        if fitted:
            break
        fitted = step(out, cut) and _fits(out, cut, max_bytes)
    if cut:
        _mark(out, cut)
    return out


def _mark(out: dict[str, Any], cut: list[str]) -> None:
    out["truncated"] = True
    out["truncatedFields"] = list(cut)


def _fits(out: dict[str, Any], cut: list[str], max_bytes: int) -> bool:
    marked = dict(out)
    _mark(marked, cut)
    return json_size(marked) <= max_bytes


def _cut(cut: list[str], name: str) -> None:
    if name not in cut:
        cut.append(name)


def _drop_events(out: dict[str, Any], cut: list[str], max_bytes: int, cursor_start: int) -> bool:
    events: list[dict[str, Any]] = list(out["events"])
    if not events:
        return False
    original_next = int(out["nextCursor"])
    floor = max(cursor_start, int(out.get("cursorResetTo", cursor_start)))
    _cut(cut, "events")

    def keep(count: int) -> None:
        out["events"] = events[:count]
        last = events[count - 1]["id"] + 1 if count else floor
        out["nextCursor"] = max(0, min(last, original_next))

    # Size grows with every kept event, so binary-search the longest prefix that fits.
    low, high = 0, len(events) - 1
    while low < high:
        mid = (low + high + 1) // 2
        keep(mid)
        if _fits(out, cut, max_bytes):
            low = mid
        else:
            high = mid - 1
    keep(low)
    return True


def _drop_result(out: dict[str, Any], cut: list[str]) -> bool:
    if "result" not in out:
        return False
    del out["result"]
    _cut(cut, "result")
    return True


def _strip_actions(out: dict[str, Any], cut: list[str]) -> bool:
    actions: list[dict[str, Any]] = out.get("actions", [])
    # Named in the order an action is built (`PendingRequest.to_action`), whatever order its keys
    # come in; keys it does not build come last.
    dropped = [
        key
        for action in actions
        for key in sorted(action, key=lambda key: _ACTION_KEY_RANK.get(key, len(_ACTION_KEY_RANK)))
        if key not in _ACTION_KEYS
    ]
    if not dropped:
        return False
    out["actions"] = [{key: action[key] for key in _ACTION_KEYS if key in action} for action in actions]
    for key in dropped:
        _cut(cut, f"actions.{key}")
    return True


def _first_action_only(out: dict[str, Any], cut: list[str]) -> bool:
    actions: list[dict[str, Any]] = out.get("actions", [])
    if len(actions) <= 1:
        return False
    out["actions"] = actions[:1]
    _cut(cut, "actions[1:]")
    return True


def _drop_actions(out: dict[str, Any], cut: list[str]) -> bool:
    if "actions" not in out:
        return False
    del out["actions"]
    cut[:] = [name for name in cut if not name.startswith("actions")]
    _cut(cut, "actions")
    return True
