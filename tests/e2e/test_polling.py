"""codex_check poll through the real server: the cursor contract and response shaping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.client import McpServerUnderTest, running_server
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]


async def _finished_session(mcp: McpServerUnderTest, scenario: str = "noisy") -> str:
    out = await mcp.call(
        "codex",
        {
            "prompt": f"scenario:{scenario} go",
            "approvalPolicy": "never",
            "sandbox": "danger-full-access",
            "advanced": {"waitForResult": 60000},
        },
    )
    assert out["status"] == "idle"
    return str(out["sessionId"])


def _poll(session_id: str, **extra: Any) -> dict[str, Any]:
    return {"action": "poll", "sessionId": session_id, **extra}


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


async def test_the_cursor_contract_holds_through_the_server(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        session_id = await _finished_session(mcp, "plain")
        first = await mcp.call("codex_check", _poll(session_id, cursor=0))
        assert len(first["events"]) == 1
        assert first["nextCursor"] == first["events"][0]["id"] + 1
        continued = await mcp.call("codex_check", _poll(session_id))
        assert continued["events"][0]["id"] == first["nextCursor"]
        zero = await mcp.call("codex_check", _poll(session_id, cursor=0, maxEvents=0))
        assert len(zero["events"]) == 1
        everything = await mcp.call("codex_check", _poll(session_id, cursor=0, maxEvents=1000))
        end = everything["nextCursor"]
        assert everything["events"][-1]["type"] == "result"
        beyond = await mcp.call("codex_check", _poll(session_id, cursor=end + 50))
        assert beyond["events"] == []
        assert beyond["nextCursor"] == end


async def test_response_modes_grow_from_minimal_to_full(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        session_id = await _finished_session(mcp)
        sizes = {}
        for mode in ("minimal", "delta_compact", "full"):
            poll = await mcp.call(
                "codex_check", _poll(session_id, cursor=0, maxEvents=1000, responseMode=mode)
            )
            sizes[mode] = _size(poll["events"])
    assert sizes["minimal"] < sizes["delta_compact"] < sizes["full"]


async def test_skip_deltas_hides_deltas_but_moves_the_cursor_past_them(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        session_id = await _finished_session(mcp)
        full = await mcp.call("codex_check", _poll(session_id, cursor=0, maxEvents=1000, responseMode="full"))
        skipped = await mcp.call(
            "codex_check", _poll(session_id, cursor=0, maxEvents=1000, pollOptions={"skipDeltas": True})
        )
    methods = {event["data"].get("method") for event in skipped["events"]}
    assert "item/commandExecution/outputDelta" in {event["data"].get("method") for event in full["events"]}
    assert "item/commandExecution/outputDelta" not in methods
    assert skipped["nextCursor"] == full["nextCursor"]


async def test_include_events_false_consumes_nothing(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        session_id = await _finished_session(mcp, "plain")
        peek = await mcp.call(
            "codex_check", _poll(session_id, maxEvents=5, pollOptions={"includeEvents": False})
        )
        after = await mcp.call("codex_check", _poll(session_id, maxEvents=5))
    assert peek["events"] == []
    assert after["events"][0]["id"] == 0


async def test_final_only_returns_the_result_and_skips_to_the_end(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        session_id = await _finished_session(mcp, "plain")
        final = await mcp.call("codex_check", _poll(session_id, pollOptions={"finalOnly": True}))
        after = await mcp.call("codex_check", _poll(session_id))
    assert final["events"] == []
    assert final["result"]["status"] == "completed"
    assert after["events"] == []
    assert after["nextCursor"] == final["nextCursor"]


async def test_max_bytes_truncates_and_says_what_was_cut(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        session_id = await _finished_session(mcp)
        small = await mcp.call(
            "codex_check",
            _poll(session_id, cursor=0, maxEvents=1000, responseMode="full", pollOptions={"maxBytes": 2000}),
        )
    assert small["truncated"] is True
    assert "events" in small["truncatedFields"]
    assert _size(small) <= 2000
    kept = small["events"]
    assert small["nextCursor"] == (kept[-1]["id"] + 1 if kept else 0)


async def test_respond_with_a_stale_cursor_stays_monotonic_with_a_warning(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call(
            "codex",
            {"prompt": "scenario:shell go", "approvalPolicy": "untrusted", "sandbox": "workspace-write"},
        )
        session_id = started["sessionId"]
        waiting, _ = await mcp.poll_until(session_id, lambda p: bool(p.get("actions")))
        request_id = waiting["actions"][0]["requestId"]
        answered = await mcp.call(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": session_id,
                "requestId": request_id,
                "decision": "accept",
                "cursor": 0,
                "maxEvents": 2,
            },
        )
        await mcp.run_to_end(session_id)
    assert any("stale" in warning for warning in answered["compatWarnings"])
    assert all(event["id"] >= waiting["nextCursor"] for event in answered["events"])
