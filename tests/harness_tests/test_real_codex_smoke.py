"""The real Codex binary runs turns offline against the mock model."""

from __future__ import annotations

import json

import pytest

from tests.harness.app_server_client import AppServerClient
from tests.harness.codex_env import CodexEnv, codex_binary, codex_version, run_exec
from tests.harness.mock_model import MockModelServer, json_object
from tests.harness.scenarios import ESCALATE_JUSTIFICATION, PLAIN_TEXT

TURN_TIMEOUT = 60.0

pytestmark = pytest.mark.timeout(120)


def _events(stdout: str) -> list[dict[str, object]]:
    return [json_object(json.loads(line)) for line in stdout.splitlines() if line.strip()]


def _no_network_attempts(mock: MockModelServer) -> bool:
    return not [r for r in mock.requests if r.method == "CONNECT"]


def _start_client(codex_env: CodexEnv) -> AppServerClient:
    return AppServerClient(codex_env.app_server_argv(), env=codex_env.env(), cwd=codex_env.workspace)


def test_the_pinned_codex_binary_is_0_163_0() -> None:
    assert codex_binary().is_file()
    assert codex_version() == "0.163.0"


def test_codex_exec_plain_turn_completes_against_the_mock_and_the_mock_records_the_prompt(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    done = run_exec(
        codex_env, "scenario:plain Say hello to the bench.", ["--strict-config"], timeout=TURN_TIMEOUT
    )

    events = _events(done.stdout)
    items = [json_object(e.get("item")) for e in events if e["type"] == "item.completed"]
    assert done.returncode == 0, done.stderr
    assert events[0]["type"] == "thread.started"
    assert events[-1]["type"] == "turn.completed"
    assert [i["text"] for i in items if i["type"] == "agent_message"] == [PLAIN_TEXT]
    (request,) = mock_model.responses_requests()
    assert "scenario:plain Say hello to the bench." in json.dumps(request.input_items)
    assert _no_network_attempts(mock_model)


def test_app_server_plain_turn_completes_with_agent_text_from_the_mock(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    with _start_client(codex_env) as client:
        client.initialize()
        thread_id = client.start_thread(
            {"cwd": str(codex_env.workspace), "approvalPolicy": "never", "sandbox": "read-only"}
        )
        turn_id = client.start_turn(thread_id, "scenario:plain Hello app-server.")
        turn = client.wait_turn_completed(turn_id, TURN_TIMEOUT)

        assert turn["status"] == "completed"
        assert client.agent_text(turn_id) == PLAIN_TEXT
    assert len(mock_model.responses_requests()) == 1
    assert _no_network_attempts(mock_model)


def test_a_second_app_server_turn_sends_the_first_turn_to_the_model(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    with _start_client(codex_env) as client:
        client.initialize()
        thread_id = client.start_thread({"cwd": str(codex_env.workspace), "approvalPolicy": "never"})
        first = client.start_turn(thread_id, "scenario:plain The first question.")
        client.wait_turn_completed(first, TURN_TIMEOUT)
        second = client.start_turn(thread_id, "scenario:reasoning The second question.")
        assert client.wait_turn_completed(second, TURN_TIMEOUT)["status"] == "completed"

    last = mock_model.responses_requests()[-1]
    context = json.dumps(last.input_items)
    assert last.scenario == "reasoning"
    assert "The first question." in context
    assert PLAIN_TEXT in context


def test_an_approval_request_is_answered_by_the_callback_and_the_command_runs(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    seen: list[str] = []

    def approve(method: str, params: dict[str, object]) -> object:
        seen.append(method)
        return {"decision": "accept"}

    with AppServerClient(
        codex_env.app_server_argv(), env=codex_env.env(), cwd=codex_env.workspace, request_handler=approve
    ) as client:
        client.initialize()
        thread_id = client.start_thread(
            {"cwd": str(codex_env.workspace), "approvalPolicy": "untrusted", "sandbox": "workspace-write"}
        )
        turn_id = client.start_turn(thread_id, "scenario:shell Make a file.")
        assert client.wait_turn_completed(turn_id, TURN_TIMEOUT)["status"] == "completed"

    assert seen == ["item/commandExecution/requestApproval"]
    assert (codex_env.workspace / "made.txt").read_text() == "hi\n"
    assert [line.direction for line in client.lines].count("out") >= 5


def test_without_a_callback_server_requests_queue_until_the_test_answers_them(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    with _start_client(codex_env) as client:
        client.initialize()
        thread_id = client.start_thread(
            {"cwd": str(codex_env.workspace), "approvalPolicy": "on-request", "sandbox": "workspace-write"}
        )
        turn_id = client.start_turn(thread_id, "scenario:escalate Write outside the sandbox.")
        request = client.wait_server_request("item/commandExecution/requestApproval", TURN_TIMEOUT)
        client.respond(request.id, {"decision": "decline"})
        turn = client.wait_turn_completed(turn_id, TURN_TIMEOUT)

    assert request.params["turnId"] == turn_id
    assert request.params["reason"] == ESCALATE_JUSTIFICATION
    assert turn["status"] == "completed"
    assert not (codex_env.workspace / "made.txt").exists()
    assert client.close() is not None


def test_interrupting_the_slow_scenario_ends_the_turn_as_interrupted(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    with _start_client(codex_env) as client:
        client.initialize()
        thread_id = client.start_thread({"cwd": str(codex_env.workspace), "approvalPolicy": "never"})
        turn_id = client.start_turn(thread_id, "scenario:slow Take your time.")
        client.wait_notification(
            "item/agentMessage/delta", lambda p: p.get("turnId") == turn_id, TURN_TIMEOUT
        )
        assert client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id}) == {}
        turn = client.wait_turn_completed(turn_id, TURN_TIMEOUT)

    assert turn["status"] == "interrupted"
    assert mock_model.responses_requests()[-1].scenario == "slow"
