"""The mock model serves every scenario's SSE and records what it received."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from tests.harness.mock_model import MockModelServer, ParsedEvent, json_object, parse_sse
from tests.harness.scenarios import (
    ECHO_PREFIX,
    ESCALATE_JUSTIFICATION,
    PATCH_FILE,
    PLAIN_TEXT,
    SCENARIOS,
    SHELL_COMMAND,
    USER_INPUT_QUESTION_ID,
    ErrorReply,
    Reply,
    ScenarioOptions,
    analyse,
    bulk_answer,
    bulk_command,
)

TIMEOUT = 10.0


@dataclass(frozen=True)
class Answer:
    """An HTTP answer from the mock."""

    status: int
    content_type: str
    body: bytes

    @property
    def events(self) -> list[ParsedEvent]:
        return parse_sse(self.body)

    @property
    def types(self) -> list[str]:
        return [e.event for e in self.events]


def _request(server: MockModelServer, method: str, path: str, body: object | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        try:
            data = response.read()
        except http.client.IncompleteRead as partial:
            data = partial.partial
        return Answer(response.status, response.getheader("Content-Type") or "", data)
    finally:
        conn.close()


def _user(text: str) -> dict[str, object]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _call(call_id: str, name: str = "exec_command") -> dict[str, object]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}"}


def _output(call_id: str, output: str = "ok") -> dict[str, object]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _body(*items: Mapping[str, object], **extra: object) -> dict[str, object]:
    return {"model": "mock-model", "stream": True, "input": list(items), **extra}


def _post(server: MockModelServer, *items: Mapping[str, object], **extra: object) -> Answer:
    return _request(server, "POST", "/v1/responses", _body(*items, **extra))


def _done_items(answer: Answer) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for event in answer.events:
        if event.event == "response.output_item.done":
            item = json_object(event.data.get("item"))
            assert item
            items.append(item)
    return items


def _arguments(item: Mapping[str, object]) -> dict[str, object]:
    raw = item.get("arguments")
    assert isinstance(raw, str)
    parsed = json_object(json.loads(raw))
    assert parsed
    return parsed


def _text(answer: Answer) -> str:
    return "".join(
        str(e.data.get("delta", "")) for e in answer.events if e.event == "response.output_text.delta"
    )


@pytest.fixture
def server() -> Iterator[MockModelServer]:
    with MockModelServer(
        ScenarioOptions(slow_total_seconds=0.6, slow_chunks=4, noisy_line_interval=0)
    ) as mock:
        yield mock


def test_plain_answer_streams_deltas_between_item_added_and_response_completed(
    server: MockModelServer,
) -> None:
    answer = _post(server, _user("hello"))

    assert answer.status == 200
    assert answer.content_type == "text/event-stream"
    assert answer.types[:2] == ["response.created", "response.output_item.added"]
    assert answer.types.count("response.output_text.delta") >= 3
    assert answer.types[-2:] == ["response.output_item.done", "response.completed"]
    assert _text(answer) == PLAIN_TEXT
    usage = answer.events[-1].data["response"]
    assert isinstance(usage, dict)
    assert "usage" in usage


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s not in ("http500", "drop")])
def test_every_streaming_scenario_starts_with_created_and_ends_with_a_terminal_event(
    server: MockModelServer, scenario: str
) -> None:
    answer = _post(server, _user(f"scenario:{scenario} go"))

    assert answer.status == 200
    assert answer.types[0] == "response.created"
    assert answer.types[-1] in ("response.completed", "response.failed")
    assert all(e.data.get("type") == e.event for e in answer.events)


def test_shell_scenario_calls_exec_command_first_and_answers_after_the_output(
    server: MockModelServer,
) -> None:
    first = _post(server, _user("scenario:shell"))
    (call,) = _done_items(first)
    assert call["type"] == "function_call"
    assert call["name"] == "exec_command"
    assert _arguments(call) == {"cmd": SHELL_COMMAND}

    call_id = str(call["call_id"])
    second = _post(server, _user("scenario:shell"), _call(call_id), _output(call_id))
    (message,) = _done_items(second)
    assert message["type"] == "message"
    assert _text(second) != ""


def test_escalate_scenario_asks_for_escalated_sandbox_permissions(server: MockModelServer) -> None:
    (call,) = _done_items(_post(server, _user("scenario:escalate")))

    assert _arguments(call) == {
        "cmd": SHELL_COMMAND,
        "sandbox_permissions": "require_escalated",
        "justification": ESCALATE_JUSTIFICATION,
    }


def test_patch_scenario_sends_an_apply_patch_heredoc_adding_a_file(server: MockModelServer) -> None:
    (call,) = _done_items(_post(server, _user("scenario:patch")))
    cmd = str(_arguments(call)["cmd"])

    assert cmd.startswith("apply_patch <<'EOF'\n*** Begin Patch\n")
    assert f"*** Add File: {PATCH_FILE}\n" in cmd
    assert cmd.rstrip().endswith("*** End Patch\nEOF")


def test_user_input_scenario_asks_a_question_then_echoes_the_answer(server: MockModelServer) -> None:
    (call,) = _done_items(_post(server, _user("scenario:user_input")))
    questions = _arguments(call)["questions"]
    assert call["name"] == "request_user_input"
    assert isinstance(questions, list)
    assert questions[0]["id"] == USER_INPUT_QUESTION_ID

    answered = _post(
        server,
        _user("scenario:user_input"),
        _call(str(call["call_id"])),
        _output(str(call["call_id"]), "Red"),
    )
    assert "Red" in _text(answered)


def test_structured_scenario_answers_json_that_fits_the_requested_schema(server: MockModelServer) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "count": {"type": "integer"}, "ok": {"type": "boolean"}},
        "required": ["answer", "count", "ok"],
    }
    text_format = {"format": {"type": "json_schema", "name": "out", "strict": True, "schema": schema}}

    answer = _post(server, _user("scenario:structured"), text=text_format)

    assert json.loads(_text(answer)) == {"answer": "mock", "count": 1, "ok": True}


def test_structured_scenario_without_a_schema_still_answers_json(server: MockModelServer) -> None:
    assert isinstance(json.loads(_text(_post(server, _user("scenario:structured")))), dict)


def test_reasoning_scenario_streams_a_summary_before_the_answer(server: MockModelServer) -> None:
    answer = _post(server, _user("scenario:reasoning"))
    kinds = [item["type"] for item in _done_items(answer)]

    assert kinds == ["reasoning", "message"]
    assert "response.reasoning_summary_text.delta" in answer.types


def test_slow_scenario_spreads_its_deltas_over_the_configured_time(server: MockModelServer) -> None:
    started = time.monotonic()
    answer = _post(server, _user("scenario:slow"))
    elapsed = time.monotonic() - started

    assert answer.types.count("response.output_text.delta") == 4
    assert elapsed >= 0.5


def test_noisy_scenario_runs_a_command_printing_many_lines(server: MockModelServer) -> None:
    (call,) = _done_items(_post(server, _user("scenario:noisy")))

    assert "seq 1 150" in str(_arguments(call)["cmd"])


def test_fail_scenario_ends_with_response_failed(server: MockModelServer) -> None:
    answer = _post(server, _user("scenario:fail"))

    assert answer.types == ["response.created", "response.failed"]


def test_http500_scenario_answers_status_500_with_a_json_error(server: MockModelServer) -> None:
    answer = _post(server, _user("scenario:http500"))

    assert answer.status == 500
    assert "error" in json.loads(answer.body)


def test_drop_scenario_closes_the_stream_without_response_completed(server: MockModelServer) -> None:
    answer = _post(server, _user("scenario:drop"))

    assert answer.status == 200
    assert "response.output_text.delta" in answer.types
    assert "response.completed" not in answer.types


def test_scenario_comes_from_the_latest_user_prompt_not_earlier_turns(server: MockModelServer) -> None:
    call = _call("call_shell_1")
    answer = _post(
        server, _user("scenario:shell"), call, _output("call_shell_1"), _user("now something plain")
    )

    assert _text(answer) == PLAIN_TEXT
    assert server.responses_requests()[-1].scenario == "plain"


def test_injected_context_messages_do_not_hide_the_prompt_marker() -> None:
    body = _body(
        _user("scenario:reasoning"), _user("<environment_context>\n  <cwd>/w</cwd>\n</environment_context>")
    )

    conversation = analyse(body)

    assert conversation.scenario == "reasoning"
    assert conversation.user_turn == 1


def test_every_request_is_recorded_with_its_parsed_body(server: MockModelServer) -> None:
    _post(server, _user("first"))
    _post(server, _user("first"), _user("second"))

    recorded = server.wait_for_responses_requests(2, timeout=TIMEOUT)

    assert [r.path for r in recorded] == ["/v1/responses", "/v1/responses"]
    assert recorded[1].input_items[0]["content"] == [{"type": "input_text", "text": "first"}]
    assert recorded[1].json["stream"] is True


def test_unknown_paths_answer_404_json_and_are_recorded(server: MockModelServer) -> None:
    answer = _request(server, "GET", "/v1/models")

    assert answer.status == 404
    assert "error" in json.loads(answer.body)
    assert [(r.method, r.path, r.status) for r in server.requests] == [("GET", "/v1/models", 404)]


def test_proxy_connect_attempts_are_refused_and_recorded(server: MockModelServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    conn.set_tunnel("example.com", 443)
    with pytest.raises(OSError, match="403"):
        conn.connect()
    conn.close()

    assert [(r.method, r.path) for r in server.requests] == [("CONNECT", "example.com:443")]


def test_waiting_for_requests_that_never_come_times_out(server: MockModelServer) -> None:
    with pytest.raises(TimeoutError):
        server.wait_for_responses_requests(1, timeout=0.05)


def test_the_server_binds_a_fresh_localhost_port_and_stops_cleanly() -> None:
    with MockModelServer() as first, MockModelServer() as second:
        assert first.port != second.port
        assert first.base_url == f"http://127.0.0.1:{first.port}/v1"
    with pytest.raises(RuntimeError):
        _ = first.port


def test_custom_scenarios_answer_their_marker_and_leave_the_others_alone() -> None:
    def teapot(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
        return ErrorReply(418, {"error": {"message": "teapot"}})

    with MockModelServer(custom_scenarios={"teapot": teapot}) as mock:
        assert _post(mock, _user("scenario:teapot")).status == 418
        assert _text(_post(mock, _user("scenario:plain"))) == PLAIN_TEXT
        assert [r.scenario for r in mock.requests] == ["teapot", "plain"]


def test_echo_scenario_answers_with_the_latest_user_message(server: MockModelServer) -> None:
    answer = _post(server, _user("scenario:slow first"), _user("scenario:echo the steered words"))
    assert _text(answer) == f"{ECHO_PREFIX}scenario:echo the steered words"


def test_bulk_scenario_calls_commands_in_batches_then_answers_at_length(server: MockModelServer) -> None:
    options = ScenarioOptions()
    first = _done_items(_post(server, _user("scenario:bulk")))
    assert [_arguments(call) for call in first] == [
        {"cmd": bulk_command(i)} for i in range(options.bulk_batch)
    ]
    assert bulk_command(99).endswith("exit 3")
    items: list[dict[str, object]] = []
    for index in range(options.bulk_commands):
        call_id = f"call_bulk_1_{index}"
        items += [_call(call_id), _output(call_id)]
    last = _post(server, _user("scenario:bulk"), *items)
    (message,) = _done_items(last)
    assert message["type"] == "message"
    assert _text(last) == bulk_answer(options.bulk_answer_chars)
    assert len(_text(last)) == 200_000
