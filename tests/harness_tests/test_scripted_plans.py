"""The plan-following scripts: the Responses `plan` scenario and the Messages mock Claude Code talks to."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from tests.harness.messages_model import TOOL_SEARCH, MessagesModelServer, mcp_name
from tests.harness.mock_model import json_object, parse_sse
from tests.harness.plans import PLAN_DONE, PLAN_FAILED, PlanError, call, find_plan, next_call, plan_prompt
from tests.harness.scenarios import PLAN_NAMESPACE, StreamReply, decide

PLAN = (call("codex", prompt="scenario:plain hi"), call("codex_check", action="poll", sessionId="$SESSION"))
TOOLS: list[dict[str, object]] = [
    {"name": mcp_name("codex-mcp", c.tool), "input_schema": {"type": "object"}} for c in PLAN
]


def test_a_plan_round_trips_through_its_prompt() -> None:
    assert find_plan(plan_prompt(PLAN, "Do it.")) == list(PLAN)
    assert find_plan("no plan here") is None
    with pytest.raises(PlanError):
        find_plan("<plan>{not json</plan>")


def test_the_next_call_fills_the_session_from_the_latest_result_that_has_one() -> None:
    results = ['{"sessionId":"sess_0123456789ab"}']
    planned = next_call(PLAN, results)
    assert planned is not None
    assert planned.arguments == {"action": "poll", "sessionId": "sess_0123456789ab"}
    assert next_call(PLAN, [*results, "done"]) is None
    with pytest.raises(PlanError, match=r"\$SESSION"):
        next_call(PLAN, ["no id"])


def _responses_body(outputs: list[str]) -> dict[str, object]:
    items: list[dict[str, object]] = [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": plan_prompt(PLAN, "scenario:plan")}],
        }
    ]
    for i, out in enumerate(outputs):
        items.append({"type": "function_call_output", "call_id": f"c{i}", "output": out})
    return {"input": items}


def _function_call(reply: object) -> dict[str, object]:
    assert isinstance(reply, StreamReply)
    done = [e.data["item"] for e in reply.events if e.event == "response.output_item.done"]
    [item] = done
    assert isinstance(item, dict)
    return {str(k): v for k, v in item.items()}  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]


def test_the_plan_scenario_calls_our_namespaced_tools_in_order_then_answers() -> None:
    first = _function_call(decide(_responses_body([])))
    assert (first["namespace"], first["name"]) == (PLAN_NAMESPACE, "codex")
    second = _function_call(decide(_responses_body(['Output:\n{"sessionId":"sess_0123456789ab"}'])))
    assert json.loads(str(second["arguments"])) == {"action": "poll", "sessionId": "sess_0123456789ab"}
    final = decide(_responses_body(["a", "b"]))
    assert isinstance(final, StreamReply)
    assert PLAN_DONE in json.dumps([e.data for e in final.events])


@pytest.fixture
def messages_model() -> Iterator[MessagesModelServer]:
    with MessagesModelServer() as server:
        yield server


def _post(server: MessagesModelServer, body: dict[str, object]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(
            "POST", "/v1/messages?beta=true", json.dumps(body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _messages(*extra: dict[str, object]) -> list[dict[str, object]]:
    return [{"role": "user", "content": [{"type": "text", "text": plan_prompt(PLAN, "Go.")}]}, *extra]


def test_the_messages_model_streams_the_plans_tool_use_as_input_json_deltas(
    messages_model: MessagesModelServer,
) -> None:
    status, raw = _post(messages_model, {"stream": True, "tools": TOOLS, "messages": _messages()})
    events = parse_sse(raw)
    assert status == 200
    assert [e.event for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * (len(events) - 5),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1].data["content_block"] == {
        "type": "tool_use",
        "id": "toolu_0_1",
        "name": TOOLS[0]["name"],
        "input": {},
    }
    partial = "".join(
        str(json_object(e.data["delta"]).get("partial_json"))
        for e in events
        if e.event == "content_block_delta"
    )
    assert json.loads(partial) == {"prompt": "scenario:plain hi"}
    assert events[-2].data["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


def test_the_messages_model_loads_deferred_tools_with_tool_search_first(
    messages_model: MessagesModelServer,
) -> None:
    deferred = [{"name": TOOL_SEARCH, "input_schema": {"type": "object"}}]
    _, raw = _post(messages_model, {"stream": False, "tools": deferred, "messages": _messages()})
    [block] = json.loads(raw)["content"]
    assert block["name"] == TOOL_SEARCH
    assert block["input"]["query"] == "select:" + ",".join(sorted(str(t["name"]) for t in TOOLS))


def test_the_messages_model_answers_with_the_final_text_once_every_result_is_back(
    messages_model: MessagesModelServer,
) -> None:
    history: list[dict[str, object]] = [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "a", "name": TOOLS[0]["name"], "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "a", "content": "sess_0123456789ab"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "b", "name": TOOLS[1]["name"], "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b", "content": "polled"}]},
    ]
    _, raw = _post(messages_model, {"stream": False, "tools": TOOLS, "messages": _messages(*history)})
    [block] = json.loads(raw)["content"]
    assert block == {"type": "text", "text": f"{PLAN_DONE} after 2 calls."}
    [recorded] = messages_model.planned_requests()
    assert [u.result for u in recorded.tool_uses()] == ["sess_0123456789ab", "polled"]


def test_the_messages_model_says_so_when_a_planned_tool_is_not_offered(
    messages_model: MessagesModelServer,
) -> None:
    other = [{"name": "Bash", "input_schema": {"type": "object"}}]
    _, raw = _post(messages_model, {"stream": False, "tools": other, "messages": _messages()})
    assert json.loads(raw)["content"][0]["text"].startswith(PLAN_FAILED)


def test_the_messages_model_answers_count_tokens_and_models_and_refuses_connects(
    messages_model: MessagesModelServer,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", messages_model.port, timeout=10)
    try:
        connection.request("POST", "/v1/messages/count_tokens", "{}")
        assert json.loads(connection.getresponse().read()) == {"input_tokens": 100}
        connection.request("GET", "/v1/models")
        assert json.loads(connection.getresponse().read())["data"][0]["type"] == "model"
    finally:
        connection.close()
    tunnel = http.client.HTTPConnection("127.0.0.1", messages_model.port, timeout=10)
    try:
        tunnel.request("CONNECT", "api.anthropic.com:443")
        assert tunnel.getresponse().status == 403
    finally:
        tunnel.close()
    assert [r.path for r in messages_model.connects()] == ["api.anthropic.com:443"]
