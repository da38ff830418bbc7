"""Twenty sessions at once through one server: each streams, asks an approval, and gets its own answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import anyio
import pytest

from tests.e2e.client import McpServerUnderTest, running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import (
    Reply,
    ScenarioOptions,
    StreamReply,
    analyse,
    completed,
    created,
    function_call_events,
    message_events,
)

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

SESSIONS: Final = 20
_TOKEN: Final = re.compile(r"TOKEN-(\d+)")


def echo_with_approval(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    """Run `echo <token>` (which needs an approval), then stream an answer naming the token."""
    conversation = analyse(body)
    found = _TOKEN.search(conversation.last_user_text)
    token = found.group(0) if found else "TOKEN-?"
    rid = f"resp_{token}_{conversation.step}"
    if conversation.step == 0:
        call = function_call_events(f"call_{token}", "exec_command", {"cmd": f"echo ran {token}"})
        return StreamReply((created(rid), *call, completed(rid)))
    output = conversation.outputs[-1] if conversation.outputs else ""
    said = output.strip().splitlines()[-1] if output.strip() else ""
    text = f"Answer for {token}; the command said: {said}"
    chunks = [text[i : i + 6] for i in range(0, len(text), 6)]
    return StreamReply((created(rid), *message_events(f"msg_{rid}", chunks), completed(rid)))


async def run_one_session(mcp: McpServerUnderTest, index: int, results: dict[int, dict[str, Any]]) -> None:
    token = f"TOKEN-{index}"
    started = await mcp.call(
        "codex",
        {
            "prompt": f"scenario:load run it for {token}",
            "approvalPolicy": "untrusted",
            "sandbox": "read-only",
        },
    )
    session_id = started["sessionId"]
    poll, events = await mcp.poll_until(session_id, lambda p: bool(p.get("actions")), timeout_s=120)
    [action] = poll["actions"]
    assert token in str(action.get("command"))
    await mcp.call(
        "codex_check",
        {
            "action": "respond_permission",
            "sessionId": session_id,
            "requestId": action["requestId"],
            "decision": "accept",
        },
    )
    final, more = await mcp.poll_until(
        session_id, lambda p: p["status"] in ("idle", "error", "cancelled"), timeout_s=120, max_events=200
    )
    results[index] = {"final": final, "events": events + more}


async def test_twenty_concurrent_sessions_each_get_their_own_answer(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    mock_model.custom_scenarios["load"] = echo_with_approval
    results: dict[int, dict[str, Any]] = {}
    async with running_server(codex_env) as mcp:
        with anyio.fail_after(240):
            async with anyio.create_task_group() as group:
                for index in range(SESSIONS):
                    group.start_soon(run_one_session, mcp, index, results)
        listed = await mcp.call("codex_session", {"action": "list"})
    assert sorted(results) == list(range(SESSIONS))
    for index, outcome in results.items():
        final, events = outcome["final"], outcome["events"]
        token = f"TOKEN-{index}"
        assert final["status"] == "idle", final
        assert final["result"]["text"] == f"Answer for {token}; the command said: ran {token}"
        deltas = [e for e in events if e["type"] == "output" and "delta" in e["data"]]
        # Streamed as deltas (coalesced between polls), adding up to the answer itself.
        assert "".join(e["data"]["delta"] for e in deltas) == final["result"]["text"]
        assert [e["data"]["decision"] for e in events if e["type"] == "approval_result"] == ["accept"]
        # No event of another session's token.
        # (A delta can end inside the token, "...for TOKEN-1" | "2; the...", so deltas are read joined.)
        texts = [str(e["data"]) for e in events if e not in deltas]
        texts.append("".join(e["data"]["delta"] for e in deltas))
        foreign = {int(n) for text in texts for n in _TOKEN.findall(text)} - {index}
        assert foreign == set()
    assert len(listed["sessions"]) == SESSIONS
    assert {s["status"] for s in listed["sessions"]} == {"idle"}
