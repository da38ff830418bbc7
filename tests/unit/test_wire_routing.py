"""The streaming deltas and the thread/turn a message names, as the generated tables say."""

from __future__ import annotations

import json

import pytest

from codex_mcp.wire import app_server
from codex_mcp.wire.app_server import (
    DELTA_NOTIFICATIONS,
    notification_thread_id,
    notification_turn_id,
    request_thread_id,
)

# The hand list ingest kept before the set was generated: merged per item, skipped by skipDeltas.
HAND_DELTAS = {
    "item/agentMessage/delta",
    "item/commandExecution/outputDelta",
    "item/fileChange/outputDelta",
    "item/reasoning/textDelta",
    "item/reasoning/summaryTextDelta",
    "item/plan/delta",
}


def test_the_derived_deltas_are_the_hand_list() -> None:
    assert DELTA_NOTIFICATIONS == HAND_DELTAS


@pytest.mark.parametrize(
    "method",
    [
        "thread/realtime/transcript/delta",  # no turn: the realtime voice channel
        "thread/realtime/item/transcript/delta",
        "command/exec/outputDelta",  # base64 output of a standalone command, outside any turn
        "item/completed",
    ],
)
def test_deltas_outside_a_turn_item_are_not_item_deltas(method: str) -> None:
    assert method not in DELTA_NOTIFICATIONS


def test_a_notification_names_its_thread_and_turn() -> None:
    params = {"threadId": "thr_1", "turnId": "turn_1", "itemId": "i", "delta": "hi"}
    assert notification_thread_id("item/agentMessage/delta", params) == "thr_1"
    assert notification_turn_id("item/agentMessage/delta", params) == "turn_1"
    started = {"threadId": "thr_1", "turn": {"id": "turn_1"}}
    assert notification_thread_id("turn/started", started) == "thr_1"
    # turn/started carries its turn as an object, not as `turnId`.
    assert notification_turn_id("turn/started", started) is None


def test_an_id_the_schema_declares_optional_is_read_when_present() -> None:
    assert notification_thread_id("warning", {"message": "m", "threadId": "thr_1"}) == "thr_1"
    assert notification_thread_id("warning", {"message": "m"}) is None
    assert notification_turn_id("hook/started", {"threadId": "t", "turnId": "turn_1"}) == "turn_1"


def test_an_id_is_read_only_where_the_schema_declares_it() -> None:
    # thread/started names its thread inside `thread`; an undeclared `threadId` does not route it.
    assert notification_thread_id("thread/started", {"threadId": "thr_1", "thread": {"id": "x"}}) is None
    assert notification_thread_id("skills/changed", {"threadId": "thr_1"}) is None
    assert notification_thread_id("no/such/method", {"threadId": "thr_1"}) is None


@pytest.mark.parametrize("params", [None, {}, {"threadId": 7}, {"threadId": None}])
def test_a_missing_or_non_string_id_is_none(params: dict[str, object] | None) -> None:
    assert notification_thread_id("turn/completed", params) is None
    assert request_thread_id("item/commandExecution/requestApproval", params) is None


def test_a_request_names_its_thread() -> None:
    params = {"threadId": "thr_1", "turnId": "turn_1", "itemId": "i"}
    assert request_thread_id("item/commandExecution/requestApproval", params) == "thr_1"
    assert request_thread_id("item/tool/requestUserInput", params) == "thr_1"
    # The legacy approvals name a conversation, not a thread.
    assert request_thread_id("applyPatchApproval", {"conversationId": "c", "threadId": "thr_1"}) is None


def test_a_parsed_notification_routes_by_its_raw_params() -> None:
    turn: dict[str, object] = {"id": "t", "items": [], "status": "completed"}
    line = json.dumps({"method": "turn/completed", "params": {"threadId": "thr_1", "turn": turn}})
    message = app_server.parse_line(line)
    assert isinstance(message, app_server.Notification)
    assert notification_thread_id(message.method, message.raw["params"]) == "thr_1"
