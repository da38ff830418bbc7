"""Steering end to end: MCP client over stdio -> codex-mcp -> real Codex app-server -> mock model.

A `slow` turn streams for seconds; a `codex_reply` with `steer: true` adds a prompt to it. The mock
model's `echo` scenario answers with the latest user message its request carries, so the turn's
result shows whether (and how often) the steered prompt reached the model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.client import codex_args, running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer, RecordedRequest
from tests.harness.scenarios import ECHO_PREFIX, SLOW_TEXT_PREFIX

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

STEERED = "scenario:echo STEER-PELICAN use the blue palette"


def _user_texts(request: RecordedRequest) -> list[str]:
    return [json.dumps(item) for item in request.input_items if item.get("role") == "user"]


def _carrying(mock: MockModelServer, text: str) -> list[int]:
    """Indexes of the model requests whose input holds `text`."""
    return [i for i, r in enumerate(mock.responses_requests()) if any(text in t for t in _user_texts(r))]


def _steered_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e["data"]["item"]
        for e in events
        if e["data"].get("method") == "item/completed" and e["data"]["item"].get("type") == "userMessage"
    ]


async def test_a_steered_prompt_reaches_the_running_turns_next_request_once_and_shapes_its_result(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call("codex", codex_args("scenario:slow take your time"))
        session_id = started["sessionId"]
        # The turn runs: the model is streaming its slow answer.
        _, early = await mcp.poll_until(session_id, lambda p: any(e["type"] == "output" for e in p["events"]))
        busy = await mcp.error("codex_reply", {"sessionId": session_id, "prompt": STEERED})
        assert busy.code == "SESSION_BUSY"
        requests_before = len(mock_model.responses_requests())
        assert _carrying(mock_model, "STEER-PELICAN") == []

        steer = {"sessionId": session_id, "prompt": STEERED, "steer": True, "clientMessageId": "pelican-1"}
        steered = await mcp.call("codex_reply", steer)
        assert steered["status"] in ("running", "idle")  # returns at once; Codex may already be done
        assert steered["threadId"] == started["threadId"]
        assert steered["steered"]["clientMessageId"] == "pelican-1"
        assert steered["steered"]["duplicate"] is False
        turn_id = steered["steered"]["turnId"]

        # The client retries the same call (its answer lost, say), waiting for the result this time.
        retried = await mcp.call("codex_reply", {**steer, "waitForResult": 30000})
        assert retried["steered"] == {"turnId": turn_id, "clientMessageId": "pelican-1", "duplicate": True}
        final, events = await mcp.run_to_end(session_id)

        # After the turn: a steer fails clearly and starts nothing.
        late = await mcp.error(
            "codex_reply", {"sessionId": session_id, "prompt": "scenario:echo too late", "steer": True}
        )
        after = await mcp.call(
            "codex_check", {"action": "poll", "sessionId": session_id, "pollOptions": {"finalOnly": True}}
        )

    # The same turn took the steer and ended with the answer to it.
    assert final["status"] == "idle"
    assert final["result"]["status"] == "completed"
    assert final["result"]["turnId"] == turn_id
    assert final["result"]["text"] == f"{ECHO_PREFIX}{STEERED}"
    assert retried["result"]["text"] == final["result"]["text"]
    # The model's next request carried it, once, as the latest user message; none before it did.
    requests = mock_model.responses_requests()
    (carrying,) = _carrying(mock_model, "STEER-PELICAN")
    assert carrying >= requests_before
    assert requests[carrying].scenario == "echo"
    assert sum("STEER-PELICAN" in text for text in _user_texts(requests[carrying])) == 1
    assert carrying == len(requests) - 1
    assert requests_before >= 1
    assert requests[requests_before - 1].scenario == "slow"
    # The events show it: ours as Codex took it, and Codex's userMessage item with our clientId.
    seen = early + events
    ours = [e["data"] for e in seen if e["data"].get("method") == "codex-mcp/steered"]
    assert [(d["turnId"], d["clientMessageId"], d["prompt"]) for d in ours] == [
        (turn_id, "pelican-1", STEERED)
    ]
    items = _steered_items(seen)
    assert [(i["clientId"], i["content"][0]["text"]) for i in items if i["clientId"]] == [
        ("pelican-1", STEERED)
    ]
    # Codex cut the slow answer short to send the steer at once (0.163): its text is not the result.
    assert SLOW_TEXT_PREFIX not in final["result"]["text"]
    assert late.code == "SESSION_NOT_RUNNING"
    assert "codex_reply without steer" in late.message
    assert (after["status"], after["result"]["turnId"]) == ("idle", turn_id)
    assert _carrying(mock_model, "too late") == []
