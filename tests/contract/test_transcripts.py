"""Every message recorded from the real Codex matches the vendored schemas and the generated models.

The transcripts are written by `python -m tests.contract.record_transcripts` (see its docstring);
this file only reads them.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from codegen import paths
from codex_mcp._generated import registry
from codex_mcp.wire import app_server, exec_events
from tests.contract.schema_check import assert_valid

TRANSCRIPTS = Path(__file__).parent / "transcripts"
APP_SERVER_FILES = sorted((TRANSCRIPTS / "app_server").glob("*.jsonl"))
EXEC_FILES = sorted((TRANSCRIPTS / "exec").glob("*.jsonl"))
MIN_SCENARIOS = 8

Record = dict[str, Any]


def _records(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _messages(path: Path, direction: str) -> list[dict[str, Any]]:
    return [record["msg"] for record in _records(path) if record["dir"] == direction]


@cache
def _bundle() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(paths.APP_SERVER_BUNDLE.read_text(encoding="utf-8"))
    return loaded


@cache
def _app_validator(definition: str) -> jsonschema.Draft7Validator:
    """A validator for one definition of the vendored bundle, exactly as Codex published it."""
    definitions = _bundle()["definitions"]
    pointer = f"#/definitions/{definition}" if definition in definitions else f"#/definitions/v2/{definition}"
    schema = {"$ref": pointer, "definitions": definitions}
    return jsonschema.Draft7Validator(schema)


@cache
def _exec_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(paths.EXEC_SCHEMA.read_text(encoding="utf-8")))


def _definition_name(model: Any) -> str:
    return str(getattr(model, "__name__", None) or model.__value__.__name__)


def test_at_least_eight_scenarios_are_recorded_in_each_mode() -> None:
    assert len(APP_SERVER_FILES) >= MIN_SCENARIOS, [p.name for p in APP_SERVER_FILES]
    assert len(EXEC_FILES) >= MIN_SCENARIOS, [p.name for p in EXEC_FILES]


@pytest.mark.parametrize("path", APP_SERVER_FILES, ids=lambda p: p.stem)
def test_every_app_server_line_matches_the_vendored_schema_and_the_models(path: Path) -> None:
    check_app_server_records(_records(path))


def check_app_server_records(records: list[Record]) -> dict[str, int]:
    """Check every line of an app-server transcript both ways; return counts by message kind."""
    sent_methods: dict[Any, str] = {}
    counts = {"notification": 0, "request": 0, "response": 0}
    for record in records:
        message = record["msg"]
        if record["dir"] == "out":
            _check_outbound(message, sent_methods)
        elif record["dir"] == "in":
            counts[_check_inbound(message, sent_methods)] += 1
    assert counts["notification"] > 0, counts
    assert counts["response"] > 0, counts
    _check_our_answers(records)
    return counts


def _check_outbound(message: dict[str, Any], sent_methods: dict[Any, str]) -> None:
    if "method" in message and "id" in message:
        sent_methods[message["id"]] = message["method"]
        assert_valid(_app_validator("ClientRequest"), message)
    elif "method" in message:
        assert_valid(_app_validator("ClientNotification"), message)
    # Our answers to Codex's requests are checked with those requests, below.


def _check_inbound(message: dict[str, Any], sent_methods: dict[Any, str]) -> str:
    parsed = app_server.parse_line(json.dumps(message))
    assert not isinstance(parsed, app_server.UnknownMessage), parsed.reason
    if isinstance(parsed, app_server.Notification):
        assert_valid(_app_validator("ServerNotification"), message)
        return "notification"
    if isinstance(parsed, app_server.ServerRequest):
        assert_valid(_app_validator("ServerRequest"), message)
        return "request"
    assert isinstance(parsed, app_server.Response)
    method = sent_methods[parsed.id]
    assert parsed.error is None, f"{method}: {parsed.error}"
    if method in registry.CLIENT_REQUESTS:
        response_model = registry.CLIENT_REQUESTS[method][1]
        assert_valid(_app_validator(_definition_name(response_model)), parsed.result)
        app_server.parse_result(method, parsed.result)
    return "response"


def _check_our_answers(records: list[Record]) -> None:
    """Our answers to Codex's requests match the response schemas."""
    pending: dict[Any, str] = {}
    for record in records:
        message = record["msg"]
        if record["dir"] == "in" and "method" in message and "id" in message:
            pending[message["id"]] = message["method"]
        elif record["dir"] == "out" and "result" in message and message["id"] in pending:
            method = pending.pop(message["id"])
            response_model = registry.SERVER_REQUESTS[method][1]
            assert_valid(_app_validator(_definition_name(response_model)), message["result"])


@pytest.mark.parametrize("path", EXEC_FILES, ids=lambda p: p.stem)
def test_every_exec_line_matches_the_exec_schema_and_the_models(path: Path) -> None:
    check_exec_records(_records(path))


def check_exec_records(records: list[Record]) -> int:
    """Check every event of an exec transcript; return how many there were."""
    events = [record["msg"] for record in records if record["dir"] == "in"]
    assert events
    for event in events:
        assert_valid(_exec_validator(), event)
        parsed = exec_events.parse_event(json.dumps(event))
        assert isinstance(parsed, exec_events.ExecEvent), parsed
        assert type(parsed.event) is registry.EXEC_EVENTS[event["type"]]
    return len(events)


def _first_notification(method: str) -> dict[str, Any]:
    for path in APP_SERVER_FILES:
        for message in _messages(path, "in"):
            if message.get("method") == method and "id" not in message:
                return copy.deepcopy(message)
    raise AssertionError(f"no {method} notification recorded")


def test_a_notification_of_an_unknown_method_is_kept_raw() -> None:
    message = _first_notification("turn/started")
    message["method"] = "turn/teleported"
    parsed = app_server.parse_line(json.dumps(message))
    assert isinstance(parsed, app_server.UnknownMessage)
    assert parsed.method == "turn/teleported"
    assert parsed.raw == message
    assert "unknown" in parsed.reason


def test_a_server_request_of_an_unknown_method_is_kept_raw() -> None:
    parsed = app_server.parse_line('{"id": 7, "method": "item/teleport/requestApproval", "params": {}}')
    assert isinstance(parsed, app_server.UnknownMessage)
    assert parsed.raw == {"id": 7, "method": "item/teleport/requestApproval", "params": {}}


def test_a_known_notification_that_breaks_its_schema_is_kept_raw_naming_the_field() -> None:
    message = _first_notification("turn/started")
    message["params"]["turn"]["status"] = 42
    parsed = app_server.parse_line(json.dumps(message))
    assert isinstance(parsed, app_server.UnknownMessage)
    assert "status" in parsed.reason
    assert parsed.raw == message


@pytest.mark.parametrize("line", ["", "not json", "[1, 2]", '{"jsonrpc": "2.0"}', '{"id": 1}', "\x00\xff"])
def test_garbage_lines_are_kept_raw_never_raised(line: str) -> None:
    parsed = app_server.parse_line(line)
    assert isinstance(parsed, app_server.UnknownMessage)
    assert parsed.line == line.strip()


def test_new_fields_from_a_newer_codex_are_kept_not_rejected() -> None:
    message = _first_notification("turn/started")
    message["params"]["turn"]["futureField"] = {"x": 1}
    parsed = app_server.parse_line(json.dumps(message))
    assert isinstance(parsed, app_server.Notification)
    assert parsed.params.turn.model_extra == {"futureField": {"x": 1}}


def test_an_exec_event_of_an_unknown_type_is_kept_raw() -> None:
    event = {"type": "turn.teleported", "where": "mars"}
    parsed = exec_events.parse_event(json.dumps(event))
    assert isinstance(parsed, exec_events.UnknownExecEvent)
    assert parsed.raw == event


def test_an_exec_item_of_an_unknown_type_is_kept_raw() -> None:
    event = {"type": "item.completed", "item": {"id": "item_9", "type": "hologram", "text": "hi"}}
    parsed = exec_events.parse_event(json.dumps(event))
    assert isinstance(parsed, exec_events.UnknownExecEvent)
    assert "item" in parsed.reason


def test_a_web_search_item_with_a_repeated_id_keeps_the_last_one() -> None:
    line = (
        '{"type":"item.started","item":{"id":"item_3","type":"web_search","id":"ws_1","query":"q",'
        '"action":{"type":"search","query":"q"}}}'
    )
    parsed = exec_events.parse_event(line)
    assert isinstance(parsed, exec_events.ExecEvent)
    assert parsed.raw["item"]["id"] == "ws_1"


def test_recorded_transcripts_hold_no_machine_paths_or_secrets() -> None:
    for path in [*APP_SERVER_FILES, *EXEC_FILES]:
        text = path.read_text(encoding="utf-8")
        for leak in ("/tmp/pytest-", "/root/", "/home/", "/work/", "sk-"):
            assert leak not in text, f"{path.name} contains {leak!r}"
