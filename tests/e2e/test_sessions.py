"""The five tools end to end: MCP client over stdio -> codex-mcp -> real Codex app-server -> mock model."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from tests.e2e.client import codex_args, running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import (
    FINAL_AFTER_TOOL,
    PLAIN_TEXT,
    USER_INPUT_QUESTION_ID,
)
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]


def _has_action(poll: dict[str, Any]) -> bool:
    return bool(poll.get("actions"))


def _inputs_text(mock: MockModelServer) -> list[str]:
    """The text of every input item of the model's last request."""
    last = mock.responses_requests()[-1]
    return [json.dumps(item) for item in last.input_items]


async def test_a_plain_session_runs_to_idle_with_the_agents_answer(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call("codex", codex_args("scenario:plain say hello"))
        assert started["sessionId"].startswith("sess_")
        assert started["threadId"]
        assert started["status"] == "running"
        assert started["execution"]["mode"] == "background"
        assert started["recommendedNextAction"] == "poll"
        poll, events = await mcp.run_to_end(started["sessionId"])
    assert poll["status"] == "idle"
    assert poll["result"]["text"] == PLAIN_TEXT
    assert poll["result"]["status"] == "completed"
    assert poll["interactionState"] == "finished"
    assert poll["recommendedNextAction"] == "none"
    assert "pollInterval" not in poll
    types_seen = {event["type"] for event in events}
    assert {"output", "progress", "result"} <= types_seen
    ids = [event["id"] for event in events]
    assert ids == sorted(ids)


async def test_wait_for_result_returns_the_result_directly(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        out = await mcp.call("codex", codex_args("scenario:plain hi", wait_ms=30000))
    assert out["status"] == "idle"
    assert out["result"]["text"] == PLAIN_TEXT
    assert out["execution"] == {
        "mode": "foreground",
        "waitRequestedMs": 30000,
        "fellBackToPolling": False,
        "reason": "completed",
    }


async def test_an_accepted_command_approval_runs_the_command(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call(
            "codex",
            codex_args("scenario:shell make the file", approvalPolicy="untrusted", wait_ms=30000),
        )
        assert started["execution"]["reason"] == "needs_input"
        assert started["status"] == "waiting_approval"
        assert started["recommendedNextAction"] == "respond_permission"
        action = started["actions"][0]
        assert action["kind"] == "command"
        assert action["type"] == "approval"
        # The reference shows these at the top of a command approval's action, for review UIs.
        assert action["commandActions"] == action["params"]["commandActions"]
        assert action["proposedExecpolicyAmendment"] == action["params"]["proposedExecpolicyAmendment"]
        answered = await mcp.call(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": started["sessionId"],
                "requestId": action["requestId"],
                "decision": "accept",
            },
        )
        assert answered["events"] == []
        assert "actions" not in answered
        poll, events = await mcp.run_to_end(started["sessionId"])
    assert poll["result"]["text"] == FINAL_AFTER_TOOL
    assert (codex_env.workspace / "made.txt").read_text().strip() == "hi"
    results = [e for e in events if e["type"] == "approval_result"]
    assert results[0]["data"]["decision"] == "accept"


async def test_a_declined_command_does_not_run(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call("codex", codex_args("scenario:shell make it", approvalPolicy="untrusted"))
        poll, _ = await mcp.poll_until(started["sessionId"], _has_action)
        request_id = poll["actions"][0]["requestId"]
        await mcp.call(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": started["sessionId"],
                "requestId": request_id,
                "decision": "decline",
                "denyMessage": "not today",
            },
        )
        final, events = await mcp.run_to_end(started["sessionId"])
        again = await mcp.error(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": started["sessionId"],
                "requestId": request_id,
                "decision": "accept",
            },
        )
    assert final["status"] == "idle"
    assert not (codex_env.workspace / "made.txt").exists()
    assert again.code == "REQUEST_NOT_FOUND"
    assert any(e["data"].get("denyMessage") == "not today" for e in events if e["type"] == "approval_result")


async def test_an_unanswered_approval_is_declined_after_its_timeout(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call(
            "codex",
            codex_args(
                "scenario:shell make it", approvalPolicy="untrusted", advanced={"approvalTimeoutMs": 300}
            ),
        )
        poll, events = await mcp.run_to_end(started["sessionId"])
    timeouts = [e for e in events if e["type"] == "approval_result" and e["data"].get("timeout")]
    assert len(timeouts) == 1
    assert timeouts[0]["data"]["decision"] == "decline"
    assert poll["status"] == "idle"
    assert not (codex_env.workspace / "made.txt").exists()


async def test_a_decision_the_request_does_not_offer_is_refused_naming_the_field(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call("codex", codex_args("scenario:patch add a file", approvalPolicy="untrusted"))
        poll, _ = await mcp.poll_until(started["sessionId"], _has_action)
        action = poll["actions"][0]
        assert action["kind"] == "fileChange"
        refused = await mcp.error(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": started["sessionId"],
                "requestId": action["requestId"],
                "decision": "applyNetworkPolicyAmendment",
                "network_policy_amendment": {"action": "allow", "host": "example.com"},
            },
        )
        assert refused.code == "INVALID_ARGUMENT"
        assert refused.field == "decision"
        await mcp.call(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": started["sessionId"],
                "requestId": action["requestId"],
                "decision": "accept",
            },
        )
        final, _ = await mcp.run_to_end(started["sessionId"])
    assert final["status"] == "idle"
    assert (codex_env.workspace / "patched.txt").exists()


async def test_a_user_input_question_round_trips_to_the_model(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call(
            "codex", codex_args("scenario:user_input ask me", advanced={"collaborationMode": "plan"})
        )
        poll, _ = await mcp.poll_until(started["sessionId"], _has_action)
        assert poll["recommendedNextAction"] == "respond_user_input"
        action = poll["actions"][0]
        assert action["type"] == "user_input"
        assert action["questions"][0]["id"] == USER_INPUT_QUESTION_ID
        await mcp.call(
            "codex_check",
            {
                "action": "respond_user_input",
                "sessionId": started["sessionId"],
                "requestId": action["requestId"],
                "answers": {USER_INPUT_QUESTION_ID: {"answers": ["Teal"]}},
            },
        )
        final, _ = await mcp.run_to_end(started["sessionId"])
    assert final["status"] == "idle"
    assert any("Teal" in text for text in _inputs_text(mock_model))


async def test_an_output_schema_gives_structured_output(codex_env: CodexEnv) -> None:
    schema = {
        "type": "object",
        "properties": {"status": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["status", "answer"],
        "additionalProperties": False,
    }
    async with running_server(codex_env) as mcp:
        out = await mcp.call(
            "codex",
            codex_args("scenario:structured report", wait_ms=30000, advanced={"outputSchema": schema}),
        )
    structured = out["result"]["structuredOutput"]
    assert structured == json.loads(out["result"]["text"])
    assert set(structured) == {"status", "answer"}


async def test_interrupt_ends_the_turn_as_interrupted_and_the_session_goes_idle(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call("codex", codex_args("scenario:slow take your time"))
        await mcp.poll_until(started["sessionId"], lambda p: any(e["type"] == "output" for e in p["events"]))
        interrupted = await mcp.call(
            "codex_session", {"action": "interrupt", "sessionId": started["sessionId"]}
        )
        assert interrupted["success"] is True
        final, _ = await mcp.run_to_end(started["sessionId"])
        idle_again = await mcp.error(
            "codex_session", {"action": "interrupt", "sessionId": started["sessionId"]}
        )
    assert final["status"] == "idle"
    assert final["result"]["status"] == "interrupted"
    assert idle_again.code == "SESSION_NOT_RUNNING"


async def test_a_reply_continues_the_thread_with_its_context(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env) as mcp:
        first = await mcp.call("codex", codex_args("scenario:plain remember the word PELICAN", wait_ms=30000))
        reply = await mcp.call(
            "codex_reply",
            {
                "sessionId": first["sessionId"],
                "prompt": "scenario:plain what was the word?",
                "waitForResult": 30000,
            },
        )
    assert reply["status"] == "idle"
    assert reply["threadId"] == first["threadId"]
    assert reply["result"]["text"] == PLAIN_TEXT
    assert any("PELICAN" in text for text in _inputs_text(mock_model))


async def test_a_fork_answers_with_the_parents_context(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env) as mcp:
        parent = await mcp.call("codex", codex_args("scenario:plain the secret is OSPREY", wait_ms=30000))
        fork = await mcp.call("codex_session", {"action": "fork", "sessionId": parent["sessionId"]})
        assert fork["status"] == "idle"
        assert fork["sessionId"] != parent["sessionId"]
        assert fork["threadId"] != parent["threadId"]
        answer = await mcp.call(
            "codex_reply",
            {"sessionId": fork["sessionId"], "prompt": "scenario:plain the secret?", "waitForResult": 30000},
        )
    assert answer["result"]["text"] == PLAIN_TEXT
    assert any("OSPREY" in text for text in _inputs_text(mock_model))


async def test_reply_while_running_is_busy_and_after_cancel_is_cancelled(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        started = await mcp.call("codex", codex_args("scenario:slow go"))
        busy = await mcp.error("codex_reply", {"sessionId": started["sessionId"], "prompt": "more"})
        cancelled = await mcp.call("codex_session", {"action": "cancel", "sessionId": started["sessionId"]})
        after = await mcp.error("codex_reply", {"sessionId": started["sessionId"], "prompt": "more"})
        poll = await mcp.call(
            "codex_check",
            {"action": "poll", "sessionId": started["sessionId"], "pollOptions": {"finalOnly": True}},
        )
    assert busy.code == "SESSION_BUSY"
    assert cancelled["success"] is True
    assert after.code == "CANCELLED"
    assert poll["status"] == "cancelled"
    assert poll["result"]["status"] == "cancelled"


async def test_list_get_and_clean_manage_sessions(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        one = await mcp.call("codex", codex_args("scenario:plain a", wait_ms=30000))
        two = await mcp.call("codex", codex_args("scenario:plain b", wait_ms=30000))
        await mcp.call("codex_session", {"action": "cancel", "sessionId": two["sessionId"]})
        listed = await mcp.call("codex_session", {"action": "list"})
        public = await mcp.call("codex_session", {"action": "get", "sessionId": one["sessionId"]})
        sensitive = await mcp.call(
            "codex_session", {"action": "get", "sessionId": one["sessionId"], "includeSensitive": True}
        )
        preview = await mcp.call(
            "codex_session", {"action": "clean", "statuses": ["cancelled"], "dryRun": True}
        )
        cleaned = await mcp.call("codex_session", {"action": "clean", "statuses": ["cancelled"]})
        gone = await mcp.error("codex_session", {"action": "get", "sessionId": two["sessionId"]})
        cleared = await mcp.call(
            "codex_session", {"action": "clean_background_terminals", "sessionId": one["sessionId"]}
        )
    assert {s["sessionId"] for s in listed["sessions"]} == {one["sessionId"], two["sessionId"]}
    # The session's fields at the top level, as the reference returns them.
    assert public["action"] == "get"
    assert public["sessionId"] == one["sessionId"]
    assert public["status"] == "idle"
    assert "session" not in public
    assert "threadId" not in public
    assert "cwd" not in public
    assert sensitive["threadId"] == one["threadId"]
    assert sensitive["cwd"] == str(codex_env.workspace.resolve())
    assert preview["matchedSessionIds"] == [two["sessionId"]]
    assert preview["removedCount"] == 0
    assert cleaned["removedSessionIds"] == [two["sessionId"]]
    assert gone.code == "SESSION_NOT_FOUND"
    assert cleared["success"] is True


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("codex", {"prompt": "x", "approvalPolicy": "never"}, "sandbox"),
        ("codex", {"prompt": "x", "approvalPolicy": "sometimes", "sandbox": "read-only"}, "approvalPolicy"),
        (
            "codex",
            {"prompt": "x", "approvalPolicy": "never", "sandbox": "read-only", "cwd": "/no/such/dir"},
            "cwd",
        ),
        (
            "codex",
            {
                "prompt": "x",
                "approvalPolicy": "never",
                "sandbox": "read-only",
                "advanced": {"images": ["missing.png"]},
            },
            "advanced.images[0]",
        ),
        (
            "codex",
            {"prompt": "x", "approvalPolicy": "never", "sandbox": "read-only", "sanbox": "x"},
            "sanbox",
        ),
        ("codex_check", {"action": "poll", "sessionId": "sess_x", "decision": "accept"}, "decision"),
        ("codex_check", {"action": "respond_user_input", "sessionId": "sess_x", "requestId": "r"}, "answers"),
        ("codex_session", {"action": "fork"}, "sessionId"),
        ("codex_reply", {"sessionId": "../../etc", "prompt": "x"}, "sessionId"),
    ],
)
async def test_bad_arguments_are_invalid_argument_errors_naming_the_field(
    codex_env: CodexEnv, tool: str, arguments: dict[str, Any], field: str
) -> None:
    async with running_server(codex_env) as mcp:
        error = await mcp.error(tool, arguments)
        still_alive = await mcp.call("codex_session", {"action": "list"})
    assert error.code == "INVALID_ARGUMENT"
    assert error.field == field
    assert field.rsplit(".", maxsplit=1)[-1].split("[", maxsplit=1)[0] in error.message
    assert still_alive["sessions"] == []


async def test_unknown_sessions_and_requests_have_their_own_codes(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        missing = await mcp.error("codex_check", {"action": "poll", "sessionId": "sess_nothere"})
        done = await mcp.call("codex", codex_args("scenario:plain hi", wait_ms=30000))
        no_request = await mcp.error(
            "codex_check",
            {
                "action": "respond_permission",
                "sessionId": done["sessionId"],
                "requestId": "req_nope",
                "decision": "accept",
            },
        )
    assert missing.code == "SESSION_NOT_FOUND"
    assert no_request.code == "REQUEST_NOT_FOUND"


async def test_on_failure_is_accepted_and_mapped_with_a_warning(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        out = await mcp.call(
            "codex",
            codex_args("scenario:plain hi", approvalPolicy="on-failure", wait_ms=30000),
        )
        info = await mcp.call("codex_session", {"action": "get", "sessionId": out["sessionId"]})
    assert out["status"] == "idle"
    assert any("on-failure" in warning for warning in out["compatWarnings"])
    assert info["approvalPolicy"] == "on-request"


async def test_a_failed_turn_reports_the_error(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        out = await mcp.call("codex", codex_args("scenario:http500 fail please", wait_ms=30000))
    assert out["status"] == "error"
    assert out["result"]["status"] == "failed"
    assert out["result"]["error"]["message"]


async def test_a_long_wait_does_not_block_other_calls(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    def long_call_is_in_its_turn() -> bool:
        return any(request.scenario == "slow" for request in mock_model.responses_requests())

    async with running_server(codex_env) as mcp:
        timings: dict[str, float] = {}
        started: dict[str, Any] = {}

        async def long_wait() -> None:
            start = anyio.current_time()
            started.update(await mcp.call("codex", codex_args("scenario:slow long", wait_ms=3000)))
            timings["long"] = anyio.current_time() - start

        async def quick() -> None:
            start = anyio.current_time()
            await mcp.call("codex_session", {"action": "list"})
            timings["quick"] = anyio.current_time() - start

        async with anyio.create_task_group() as group:
            group.start_soon(long_wait)
            # The long call is inside its wait once its turn asks the model.
            await wait_until(long_call_is_in_its_turn, timeout_s=30, what="the slow turn's model request")
            group.start_soon(quick)
        await mcp.call("codex_session", {"action": "cancel", "sessionId": started["sessionId"]})
    assert started["execution"]["reason"] == "timeout"
    assert timings["long"] >= 2.5
    assert timings["quick"] < 2.0


async def test_codex_setup_reports_ready_with_the_pinned_codex(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        report = await mcp.call("codex_setup", {"cwd": str(codex_env.workspace)})
    assert report["ready"] is True, report["problems"]
    assert report["codex"]["found"] is True
    assert report["codex"]["version"] == "0.163.0"
    assert report["codex"]["source"] == "CODEX_MCP_PATH"
    assert report["backend"]["mode"] == "app-server"
    assert report["configFiles"][0] == {
        "path": str(codex_env.codex_home / "config.toml"),
        "scope": "user",
        "exists": True,
    }


async def test_wait_for_result_sends_progress_while_waiting(codex_env: CodexEnv) -> None:
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with running_server(codex_env, {"CODEX_MCP_HEARTBEAT_MS": "200"}) as mcp:
        result = await mcp.raw_call(
            "codex",
            codex_args("scenario:slow wait", wait_ms=1500),
            progress_callback=on_progress,
        )
        structured = result.structured_content
        assert isinstance(structured, dict)
        await mcp.call("codex_session", {"action": "cancel", "sessionId": structured["sessionId"]})
    assert structured["execution"]["reason"] == "timeout"
    assert structured["execution"]["fellBackToPolling"] is True
    assert len(seen) >= 3


async def test_a_config_profile_is_applied_to_the_sessions_codex(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    (codex_env.codex_home / "fast.config.toml").write_text('model = "mock-fast-model"\n')
    async with running_server(codex_env) as mcp:
        out = await mcp.call("codex", codex_args("scenario:plain hi", profile="fast", wait_ms=30000))
        plain = await mcp.call("codex", codex_args("scenario:plain hi", wait_ms=30000))
        missing = await mcp.error("codex", codex_args("hi", profile="nope"))
    assert out["status"] == "idle"
    assert plain["status"] == "idle"
    assert missing.code == "INVALID_ARGUMENT"
    assert missing.field == "profile"
    models = [request.json.get("model") for request in mock_model.responses_requests()]
    assert models[0] == "mock-fast-model"
    assert models[-1] == "mock-model"
