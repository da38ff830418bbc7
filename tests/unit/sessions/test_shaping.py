"""responseMode projections and the maxBytes cap of codex_check responses."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from codex_mcp.sessions.shaping import (
    DELTA_COMPACT_KEYS,
    DELTA_COMPACT_SUMMARY,
    MINIMAL_KEYS,
    MINIMAL_SUMMARY,
    ResponseMode,
    fit_to_max_bytes,
    json_size,
    shape_event,
)
from codex_mcp.state.records import Event, EventType
from codex_mcp.wire.tools import output_json
from tests.contract.schema_check import error_texts

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "tools" / "codex_check.json"
OUTPUT_SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["outputSchema"]
OUTPUT_VALIDATOR = Draft202012Validator(OUTPUT_SCHEMA)
EVENT_VALIDATOR = Draft202012Validator({**OUTPUT_SCHEMA["$defs"]["Event"], "$defs": OUTPUT_SCHEMA["$defs"]})
MODES: tuple[ResponseMode, ...] = ("minimal", "delta_compact", "full")
ALL_TYPES: tuple[EventType, ...] = (
    "output",
    "progress",
    "approval_request",
    "approval_result",
    "result",
    "error",
)
TIMESTAMP = "2026-01-01T00:00:00.000Z"


def _event(data: dict[str, Any], event_id: int = 3, event_type: EventType = "progress") -> Event:
    return Event(id=event_id, type=event_type, data=data, timestamp=TIMESTAMP)


def _shaped(event: Event, mode: ResponseMode) -> dict[str, Any]:
    """The shaped event as a client reads it."""
    return output_json(shape_event(event, mode))


# --- shape_event ------------------------------------------------------------------------------


def test_full_mode_returns_the_data_as_recorded_in_the_event_envelope() -> None:
    data = {"method": "item/completed", "item": {"type": "agentMessage", "text": "hi"}, "threadId": "t"}
    shaped = shape_event(_event(data), "full")
    assert output_json(shaped) == {"id": 3, "type": "progress", "data": data, "timestamp": TIMESTAMP}
    assert shaped.data is not data


def test_minimal_keeps_exactly_the_minimal_keys() -> None:
    data = {key: "v" for key in DELTA_COMPACT_KEYS | {"item", "threadId", "params", "aggregatedOutput"}}
    assert set(_shaped(_event(data), "minimal")["data"]) == set(MINIMAL_KEYS)


def test_delta_compact_adds_the_small_context_keys() -> None:
    data = {key: "v" for key in DELTA_COMPACT_KEYS | {"item", "threadId", "params", "aggregatedOutput"}}
    kept = set(_shaped(_event(data), "delta_compact")["data"])
    assert kept == set(DELTA_COMPACT_KEYS)
    assert kept - MINIMAL_KEYS == {"reason", "command", "cwd", "sourceMethod", "exitCode"}


@pytest.mark.parametrize(("mode", "limit"), [("minimal", 256), ("delta_compact", 2048)])
def test_long_deltas_are_cut_and_flagged(mode: ResponseMode, limit: int) -> None:
    shaped = _shaped(_event({"method": "m", "delta": "x" * 5000}), mode)["data"]
    assert shaped == {"method": "m", "delta": "x" * limit, "deltaTruncated": True}


def test_full_mode_never_cuts_deltas() -> None:
    assert _shaped(_event({"delta": "x" * 5000}), "full")["data"] == {"delta": "x" * 5000}


@pytest.mark.parametrize("mode", ["minimal", "delta_compact"])
def test_short_deltas_pass_unflagged(mode: ResponseMode) -> None:
    assert _shaped(_event({"delta": "x" * 256}), mode)["data"] == {"delta": "x" * 256}


def test_a_delta_barely_over_the_limit_is_kept_whole_since_the_flag_would_cost_more() -> None:
    assert _shaped(_event({"delta": "x" * 260}), "minimal")["data"] == {"delta": "x" * 260}


def test_data_with_no_known_key_is_summarised() -> None:
    data = {"thread": {"id": "t", "preview": "a long preview " * 5}}
    assert _shaped(_event(data), "minimal")["data"] == {"summary": MINIMAL_SUMMARY}
    assert _shaped(_event(data), "delta_compact")["data"] == {"summary": DELTA_COMPACT_SUMMARY}


def test_the_summary_is_left_out_where_it_would_outweigh_the_data() -> None:
    for mode in ("minimal", "delta_compact"):
        assert _shaped(_event({"x": 1}), mode)["data"] == {}
        assert _shaped(_event({}), mode)["data"] == {}


def test_minimal_summarises_only_if_delta_compact_keeps_more() -> None:
    assert _shaped(_event({"reason": "r"}), "minimal")["data"] == {}
    assert _shaped(_event({"reason": "r" * 80}), "minimal")["data"] == {"summary": MINIMAL_SUMMARY}


def test_shaping_leaves_the_event_untouched() -> None:
    data: dict[str, Any] = {"method": "m", "delta": "x" * 5000, "item": {}}
    event = _event(copy.deepcopy(data))
    for mode in MODES:
        _shaped(event, mode)
    assert event.data == data


_json_scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=12)
_json_values: st.SearchStrategy[Any] = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(sorted(DELTA_COMPACT_KEYS | {"item", "threadId", "params"})) | st.text(max_size=8)
_deltas = st.text(max_size=2100) | st.text(alphabet='ab\u00e9\U0001f600\n"', min_size=200, max_size=2200)


def _with_delta(base: dict[str, Any], delta: str | None) -> dict[str, Any]:
    return base if delta is None else {**base, "delta": delta}


_event_data: st.SearchStrategy[dict[str, Any]] = st.builds(
    _with_delta, st.dictionaries(_keys, _json_values, max_size=6), st.none() | _deltas
)


@settings(max_examples=400, deadline=None)
@given(data=_event_data, event_type=st.sampled_from(ALL_TYPES))
def test_minimal_is_never_larger_than_delta_compact_which_is_never_larger_than_full(
    data: dict[str, Any], event_type: EventType
) -> None:
    event = _event(data, event_type=event_type)
    minimal, compact, full = (json_size(_shaped(event, mode)) for mode in MODES)
    assert minimal <= compact <= full


@settings(max_examples=200, deadline=None)
@given(data=_event_data, event_type=st.sampled_from(ALL_TYPES), mode=st.sampled_from(MODES))
def test_every_shaped_event_fits_the_published_event_schema(
    data: dict[str, Any], event_type: EventType, mode: ResponseMode
) -> None:
    assert error_texts(EVENT_VALIDATOR, _shaped(_event(data, event_type=event_type), mode)) == []


# --- fit_to_max_bytes -------------------------------------------------------------------------


def _response(
    events: int = 5, *, actions: int = 0, result: bool = False, first_id: int = 10
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "sessionId": "sess_1",
        "status": "idle" if result else "waiting_approval",
        "events": [
            _shaped(_event({"method": "m", "delta": "x" * 100}, first_id + i, "output"), "full")
            for i in range(events)
        ],
        "nextCursor": first_id + events,
    }
    if actions:
        response["actions"] = [
            {
                "type": "approval",
                "requestId": f"req_{i}",
                "kind": "command",
                "params": {"command": "ls " * 40},
                "reason": "needs network",
                "availableDecisions": ["accept", "decline"],
                "createdAt": TIMESTAMP,
            }
            for i in range(actions)
        ]
    if result:
        response["result"] = {"status": "completed", "text": "done " * 60}
    return response


def test_a_response_that_fits_comes_back_unchanged() -> None:
    response = _response()
    assert fit_to_max_bytes(response, json_size(response), cursor_start=10) is response


def test_events_are_dropped_from_the_end_and_next_cursor_follows_the_last_kept_one() -> None:
    response = _response(5)
    limit = json_size(response) - 100
    fitted = fit_to_max_bytes(response, limit, cursor_start=10)
    assert [e["id"] for e in fitted["events"]] == [10, 11, 12, 13]
    assert fitted["nextCursor"] == 14
    assert fitted["truncated"] is True
    assert fitted["truncatedFields"] == ["events"]
    assert json_size(fitted) <= limit


def test_as_many_events_are_kept_as_fit() -> None:
    response = _response(8)
    for limit in range(300, json_size(response), 37):
        fitted = fit_to_max_bytes(response, limit, cursor_start=10)
        kept = len(fitted["events"])
        assert json_size(fitted) <= limit or kept == 0
        if kept < 8:
            bigger = {**_response(kept + 1), "truncated": True, "truncatedFields": ["events"]}
            assert json_size(bigger) > limit


def test_with_every_event_dropped_next_cursor_returns_to_the_cursor_start() -> None:
    fitted = fit_to_max_bytes(_response(3), 256, cursor_start=10)
    assert fitted["events"] == []
    assert fitted["nextCursor"] == 10


def test_with_every_event_dropped_after_a_reset_next_cursor_is_the_reset_point() -> None:
    response = {**_response(3), "cursorResetTo": 10}
    fitted = fit_to_max_bytes(response, 256, cursor_start=2)
    assert fitted["nextCursor"] == 10
    assert fitted["cursorResetTo"] == 10


def test_the_result_goes_after_the_events() -> None:
    response = _response(3, result=True)
    fitted = fit_to_max_bytes(response, 300, cursor_start=10)
    assert "result" not in fitted
    assert fitted["truncatedFields"] == ["events", "result"]
    assert json_size(fitted) <= 300


def test_the_result_stays_when_dropping_events_is_enough() -> None:
    response = _response(3, result=True)
    fitted = fit_to_max_bytes(response, json_size(response) - 50, cursor_start=10)
    assert "result" in fitted
    assert fitted["truncatedFields"] == ["events"]


def test_actions_are_first_stripped_to_their_identifying_fields() -> None:
    response = _response(0, actions=2)
    stripped = [
        {"type": "approval", "requestId": f"req_{i}", "kind": "command", "createdAt": TIMESTAMP}
        for i in (0, 1)
    ]
    limit = json_size({**response, "actions": stripped}) + 120
    fitted = fit_to_max_bytes(response, limit, cursor_start=10)
    assert fitted["actions"] == stripped
    assert fitted["truncatedFields"] == ["actions.params", "actions.reason", "actions.availableDecisions"]
    assert json_size(fitted) <= limit


def test_then_only_the_first_action_is_kept() -> None:
    response = _response(0, actions=3)
    expected = {
        **response,
        "actions": [{"type": "approval", "requestId": "req_0", "kind": "command", "createdAt": TIMESTAMP}],
        "truncated": True,
        "truncatedFields": ["actions.params", "actions.reason", "actions.availableDecisions", "actions[1:]"],
    }
    assert fit_to_max_bytes(response, json_size(expected), cursor_start=10) == expected


def test_finally_actions_are_dropped_and_named_once() -> None:
    fitted = fit_to_max_bytes(_response(4, actions=3, result=True), 256, cursor_start=10)
    assert "actions" not in fitted
    assert fitted["truncatedFields"] == ["events", "result", "actions"]
    assert set(fitted) == {"sessionId", "status", "events", "nextCursor", "truncated", "truncatedFields"}
    assert json_size(fitted) <= 256


def test_the_required_keys_stay_even_when_the_cap_cannot_be_met() -> None:
    response = {**_response(2), "compatWarnings": ["w" * 400]}
    fitted = fit_to_max_bytes(response, 256, cursor_start=10)
    assert fitted["events"] == []
    assert fitted["compatWarnings"] == response["compatWarnings"]
    assert json_size(fitted) > 256
    assert fitted["truncatedFields"] == ["events"]


def test_nothing_is_marked_when_nothing_could_be_cut() -> None:
    response = {**_response(0), "compatWarnings": ["w" * 400]}
    assert fit_to_max_bytes(response, 256, cursor_start=10) == response


def test_the_input_response_is_not_modified() -> None:
    response = _response(4, actions=2, result=True)
    before = copy.deepcopy(response)
    fit_to_max_bytes(response, 256, cursor_start=10)
    assert response == before


def test_earlier_truncation_notes_are_kept() -> None:
    response = {**_response(3), "truncated": True, "truncatedFields": ["events"]}
    fitted = fit_to_max_bytes(response, 256, cursor_start=10)
    assert fitted["truncatedFields"] == ["events"]


_statuses = st.sampled_from(["running", "waiting_approval", "idle", "error", "cancelled"])
_actions = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["approval", "user_input"]),
        "requestId": st.text(min_size=1, max_size=12),
        "kind": st.sampled_from(["command", "fileChange", "user_input"]),
        "createdAt": st.just(TIMESTAMP),
    },
    optional={
        "params": st.dictionaries(st.text(max_size=6), _json_values, max_size=4),
        "reason": st.text(max_size=80),
        "itemId": st.text(max_size=10),
        "availableDecisions": st.lists(st.sampled_from(["accept", "decline", "cancel"]), max_size=3),
    },
)
_results = st.fixed_dictionaries(
    {"status": st.sampled_from(["completed", "failed"])},
    optional={"text": st.text(max_size=600), "turnId": st.text(max_size=10)},
)


@st.composite
def _responses(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    cursor_start = draw(st.integers(0, 50))
    first_id = cursor_start + draw(st.integers(0, 5))
    gaps = draw(st.lists(st.integers(1, 3), max_size=12))
    ids = [first_id + sum(gaps[:i]) for i in range(len(gaps))]
    modes = st.sampled_from(MODES)
    events = [
        _shaped(_event(draw(_event_data), i, draw(st.sampled_from(ALL_TYPES))), draw(modes)) for i in ids
    ]
    response: dict[str, Any] = {
        "sessionId": draw(st.text(min_size=1, max_size=20)),
        "status": draw(_statuses),
        "events": events,
        "nextCursor": (ids[-1] if ids else first_id) + draw(st.integers(1, 4)),
    }
    optional: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "pollInterval": st.integers(0, 120_000),
                "actions": st.lists(_actions, max_size=4),
                "result": _results,
                "compatWarnings": st.lists(st.text(max_size=40), max_size=2),
                "cursorResetTo": st.just(first_id),
            },
        )
    )
    return {**response, **optional}, cursor_start


@settings(max_examples=250, deadline=None)
@given(case=_responses(), max_bytes=st.integers(256, 12_000))
def test_a_fitted_response_stays_valid_and_fits_unless_only_required_parts_remain(
    case: tuple[dict[str, Any], int], max_bytes: int
) -> None:
    response, cursor_start = case
    assert error_texts(OUTPUT_VALIDATOR, response) == []
    fitted = fit_to_max_bytes(response, max_bytes, cursor_start=cursor_start)
    assert error_texts(OUTPUT_VALIDATOR, fitted) == []
    assert fitted["sessionId"] == response["sessionId"]
    assert fitted["status"] == response["status"]
    kept = fitted["events"]
    assert kept == response["events"][: len(kept)]
    if json_size(fitted) > max_bytes:
        assert kept == []
        assert "result" not in fitted
        assert "actions" not in fitted
    if len(kept) < len(response["events"]):
        floor = max(cursor_start, response.get("cursorResetTo", cursor_start))
        assert fitted["nextCursor"] == (kept[-1]["id"] + 1 if kept else floor)
    else:
        assert fitted["nextCursor"] == response["nextCursor"]
    cut = fitted != response
    assert fitted.get("truncated", False) is cut
    assert bool(fitted.get("truncatedFields")) is cut
