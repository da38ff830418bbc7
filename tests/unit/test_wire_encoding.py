"""Outbound lines carry only what we set, in Codex's field names, one JSON object per line."""

from __future__ import annotations

import json

import pytest

from codex_mcp._generated import registry
from codex_mcp.wire import app_server
from codex_mcp.wire._validation import adapter


def test_a_request_sends_only_the_fields_that_were_set_by_their_wire_names() -> None:
    params_model = registry.CLIENT_REQUESTS["thread/start"][0]
    params = params_model(approval_policy="on-request", cwd="/w")
    line = app_server.encode_request(3, "thread/start", params)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "id": 3,
        "method": "thread/start",
        "params": {"approvalPolicy": "on-request", "cwd": "/w"},
    }


def test_notifications_responses_and_errors_are_single_lines() -> None:
    assert json.loads(app_server.encode_notification("initialized")) == {"method": "initialized"}
    assert json.loads(app_server.encode_response("a", {"decision": "accept"})) == {
        "id": "a",
        "result": {"decision": "accept"},
    }
    assert json.loads(app_server.encode_error(9, -32601, "no\nsuch")) == {
        "id": 9,
        "error": {"code": -32601, "message": "no\nsuch"},
    }


def test_a_response_result_is_validated_by_the_method_it_answers() -> None:
    result = app_server.parse_result("turn/interrupt", {})
    assert type(result) is registry.CLIENT_REQUESTS["turn/interrupt"][1]


def test_validators_are_built_once_per_type() -> None:
    model = registry.SERVER_NOTIFICATIONS["turn/started"]
    assert adapter(model) is adapter(model)


@pytest.mark.parametrize("request_id", ["{}", "true", "1.5", "null", "[1]"])
def test_a_message_whose_id_is_not_a_string_or_integer_is_kept_raw(request_id: str) -> None:
    parsed = app_server.parse_line(f'{{"id": {request_id}, "result": {{}}}}')
    assert isinstance(parsed, app_server.UnknownMessage)
    assert "neither a string nor an integer" in parsed.reason


def test_a_lone_surrogate_we_send_is_escaped_not_an_encoding_error() -> None:
    line = app_server.encode_request(
        1, "turn/start", {"threadId": "t", "input": [{"type": "text", "text": "a\udcffb"}]}
    )
    assert b"\\udcff" in line
    assert json.loads(line)["params"]["input"][0]["text"] == "a\udcffb"
