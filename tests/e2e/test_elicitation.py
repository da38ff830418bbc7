"""Approvals as elicitation (`advanced.approvals: "elicit"`) with the real Codex, in both eras.

Legacy (`initialize`): the Python SDK client with an elicitation callback gets `elicitation/create`
from inside the waiting `codex` call. 2026-07-28 (`server/discover`): the same client gets an
input-required result and retries the same call with the answers and our `requestState`.
`scenario:shell` writes made.txt once its command is approved.
"""

from __future__ import annotations

from typing import Any, Final, cast

import anyio
import mcp_types as types
import pytest
from mcp.client.context import ClientRequestContext

from tests.e2e.client import McpServerUnderTest, codex_args, running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import FINAL_AFTER_TOOL

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

TEST_BOUND_S: Final = 90.0
ELICIT: Final = {"approvals": "elicit"}


class Callback:
    """A legacy client's elicitation callback answering `action` (accept: with `decision`)."""

    def __init__(self, action: str, decision: str = "accept") -> None:
        self.action = action
        self.decision = decision
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        self.asked.append(params)
        if self.action == "accept":
            return types.ElicitResult(action="accept", content={"decision": self.decision})
        return types.ElicitResult(action="decline" if self.action == "decline" else "cancel")


def _offered(schema: Any) -> list[str]:
    return [choice["const"] for choice in schema["properties"]["decision"]["oneOf"]]


def _approval_results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "approval_result"]


async def _session_count(mcp: McpServerUnderTest) -> int:
    return len((await mcp.call("codex_session", {"action": "list"}))["sessions"])


async def test_legacy_accept_runs_the_command_inside_the_waiting_call(codex_env: CodexEnv) -> None:
    callback = Callback("accept")
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, elicitation_callback=callback) as mcp:
            args = codex_args(
                "scenario:shell make the file", approvalPolicy="untrusted", wait_ms=60_000, advanced=ELICIT
            )
            out = await mcp.call("codex", args)
            assert out["status"] == "idle", out
            assert out["result"]["text"] == FINAL_AFTER_TOOL
            _, events = await mcp.run_to_end(out["sessionId"])
    (asked,) = callback.asked
    assert isinstance(asked, types.ElicitRequestFormParams)
    assert "accept" in _offered(asked.requested_schema)
    assert "decline" in _offered(asked.requested_schema)
    assert out["sessionId"] in asked.message
    assert (codex_env.workspace / "made.txt").read_text().strip() == "hi"
    (result,) = _approval_results(events)
    assert result["decision"] == "accept"
    assert "timeout" not in result


async def test_legacy_decline_does_not_run_the_command(codex_env: CodexEnv) -> None:
    callback = Callback("decline")
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, elicitation_callback=callback) as mcp:
            args = codex_args(
                "scenario:shell make it", approvalPolicy="untrusted", wait_ms=60_000, advanced=ELICIT
            )
            out = await mcp.call("codex", args)
            final, events = await mcp.run_to_end(out["sessionId"])
    assert len(callback.asked) == 1
    assert final["status"] == "idle"
    assert not (codex_env.workspace / "made.txt").exists()
    assert [r["decision"] for r in _approval_results(events)] == ["decline"]


async def test_legacy_cancel_leaves_the_approval_pollable_and_its_timer_declines_it(
    codex_env: CodexEnv,
) -> None:
    callback = Callback("cancel")  # what `claude -p` answers
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, elicitation_callback=callback) as mcp:
            advanced = {**ELICIT, "approvalTimeoutMs": 4000}
            args = codex_args(
                "scenario:shell make it", approvalPolicy="untrusted", wait_ms=60_000, advanced=advanced
            )
            out = await mcp.call("codex", args)
            assert out["execution"]["reason"] == "needs_input"
            (action,) = out["actions"]
            final, events = await mcp.run_to_end(out["sessionId"])
    assert len(callback.asked) == 1  # asked once, never again while it waited
    assert not (codex_env.workspace / "made.txt").exists()
    (result,) = _approval_results(events)
    assert (result["requestId"], result["decision"], result["timeout"]) == (
        action["requestId"],
        "decline",
        True,
    )
    assert final["status"] == "idle"


async def test_a_poll_session_is_not_asked_even_by_a_client_that_could(codex_env: CodexEnv) -> None:
    callback = Callback("accept")
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, elicitation_callback=callback) as mcp:
            args = codex_args("scenario:shell make it", approvalPolicy="untrusted", wait_ms=60_000)
            out = await mcp.call("codex", args)
            assert out["execution"]["reason"] == "needs_input"
            await mcp.call("codex_session", {"action": "cancel", "sessionId": out["sessionId"]})
    assert callback.asked == []


# --- 2026-07-28 -----------------------------------------------------------------------------


async def _call(mcp: McpServerUnderTest, tool: str, arguments: dict[str, Any], **retry: Any) -> Any:
    return await mcp.session.call_tool(tool, arguments, allow_input_required=True, **retry)


def _structured(result: Any) -> dict[str, Any]:
    assert isinstance(result, types.CallToolResult), result
    structured: Any = result.structured_content
    assert isinstance(structured, dict)
    return cast(dict[str, Any], structured)


async def test_modern_input_required_retry_continues_the_same_session_and_forged_states_fail(
    codex_env: CodexEnv,
) -> None:
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, elicitation_callback=Callback("accept"), modern=True) as mcp:
            assert mcp.session.protocol_version == "2026-07-28"
            args = codex_args(
                "scenario:shell make the file", approvalPolicy="untrusted", wait_ms=60_000, advanced=ELICIT
            )
            first = await _call(mcp, "codex", args)
            assert isinstance(first, types.InputRequiredResult), first
            assert first.request_state is not None
            ((key, request),) = (first.input_requests or {}).items()
            assert isinstance(request, types.ElicitRequest)
            assert isinstance(request.params, types.ElicitRequestFormParams)
            assert "accept" in _offered(request.params.requested_schema)
            assert await _session_count(mcp) == 1
            accept = {key: types.ElicitResult(action="accept", content={"decision": "accept"})}
            forged = first.request_state[:-4] + (
                "AAAA" if not first.request_state.endswith("AAAA") else "BBBB"
            )
            refused = await _call(mcp, "codex", args, input_responses=accept, request_state=forged)
            assert isinstance(refused, types.CallToolResult)
            assert refused.is_error
            assert _structured(refused)["error"]["code"] == "INVALID_ARGUMENT"
            no_state = await _call(mcp, "codex", args, input_responses=accept)
            assert _structured(no_state)["error"]["code"] == "INVALID_ARGUMENT"
            # ... and the request was not answered by either.
            assert not (codex_env.workspace / "made.txt").exists()
            done = _structured(
                await _call(mcp, "codex", args, input_responses=accept, request_state=first.request_state)
            )
            assert done["status"] == "idle", done
            assert done["result"]["text"] == FINAL_AFTER_TOOL
            assert key not in [a["requestId"] for a in done.get("actions", [])]
            # No retry ever started a session.
            assert await _session_count(mcp) == 1
            _, events = await mcp.run_to_end(done["sessionId"])
    assert (codex_env.workspace / "made.txt").read_text().strip() == "hi"
    (result,) = _approval_results(events)
    assert (result["requestId"], result["decision"]) == (key, "accept")


async def test_modern_decline_and_cancel(codex_env: CodexEnv) -> None:
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, elicitation_callback=Callback("accept"), modern=True) as mcp:
            args = codex_args(
                "scenario:shell make it", approvalPolicy="untrusted", wait_ms=60_000, advanced=ELICIT
            )
            first = await _call(mcp, "codex", args)
            assert isinstance(first, types.InputRequiredResult)
            (key,) = (first.input_requests or {}).keys()
            declined = {key: types.ElicitResult(action="decline")}
            done = _structured(
                await _call(mcp, "codex", args, input_responses=declined, request_state=first.request_state)
            )
            assert done["status"] == "idle", done
            _, events = await mcp.run_to_end(done["sessionId"])
            assert [r["decision"] for r in _approval_results(events)] == ["decline"]
            assert not (codex_env.workspace / "made.txt").exists()
            # cancel (what `claude -p` answers): the approval stays in `actions`; answer it by polling.
            reply = {
                "sessionId": done["sessionId"],
                "prompt": "scenario:shell again",
                "waitForResult": 60_000,
            }
            second = await _call(mcp, "codex_reply", reply)
            assert isinstance(second, types.InputRequiredResult)
            (key2,) = (second.input_requests or {}).keys()
            cancelled = {key2: types.ElicitResult(action="cancel")}
            waiting = _structured(
                await _call(
                    mcp, "codex_reply", reply, input_responses=cancelled, request_state=second.request_state
                )
            )
            assert waiting["execution"]["reason"] == "needs_input"
            assert [a["requestId"] for a in waiting["actions"]] == [key2]
            answer = {
                "action": "respond_permission",
                "sessionId": done["sessionId"],
                "requestId": key2,
                "decision": "accept",
            }
            await mcp.call("codex_check", answer)
            await mcp.run_to_end(done["sessionId"])
            assert await _session_count(mcp) == 1
    assert (codex_env.workspace / "made.txt").read_text().strip() == "hi"
