"""Approvals and questions asked as elicitations (`advanced.approvals: "elicit"`) on the fake backend:
the forms offer exactly what each request allows, answers go back as `respond_permission` and
`respond_user_input` would send them (same events), cancel leaves the request for polling, and a
2026-07-28 `requestState` cannot be forged."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.server import elicit, handlers, results
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.polling import Elicitor
from codex_mcp.sessions.session import Session
from codex_mcp.settings import Settings
from codex_mcp.wire.tools import output_json, output_model, output_problems, parse_input
from tests.harness.fake_backend import STEP_BOUND_S, FakeBackend, open_on_fake

pytestmark = pytest.mark.anyio

Json = dict[str, Any]
COMMAND = "item/commandExecution/requestApproval"
EXECPOLICY = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch", "made.txt"]}}
NETWORK_A = {
    "applyNetworkPolicyAmendment": {"network_policy_amendment": {"host": "a.test", "action": "allow"}}
}
NETWORK_B = {
    "applyNetworkPolicyAmendment": {"network_policy_amendment": {"host": "b.test", "action": "deny"}}
}


@pytest.fixture
async def on_fake() -> AsyncGenerator[tuple[SessionManager, FakeBackend]]:
    async with open_on_fake() as opened:
        yield opened


async def _no_progress(elapsed_s: float, message: str) -> None:
    return None


class Asked:
    """A legacy client's elicitation callback: records each form, answers from a script."""

    def __init__(self, *answers: types.ElicitResult) -> None:
        self.answers = list(answers)
        self.forms: list[tuple[str, Json]] = []

    async def __call__(self, message: str, schema: Json) -> types.ElicitResult:
        self.forms.append((message, schema))
        return self.answers.pop(0)


async def _tool(
    manager: SessionManager, name: str, arguments: Json, elicitor: Elicitor | None = None
) -> Json:
    handler = {"codex": handlers.codex, "codex_check": handlers.codex_check}[name]
    call = handlers.Call(manager_or_error=manager, report_progress=_no_progress, elicitor=elicitor)
    with anyio.fail_after(STEP_BOUND_S):
        output = await handler(parse_input(name, arguments), call)
    assert type(output) is output_model(name)
    content = results.success(output_json(output)).structured_content
    assert content is not None
    assert output_problems(name, content) == []
    return content


async def _elicit_session(
    manager: SessionManager, cwd: Path, approvals: str = "elicit", timeout_ms: int = 60_000
) -> Session:
    arguments = {
        "prompt": "do it",
        "cwd": str(cwd),
        "approvalPolicy": "on-request",
        "sandbox": "workspace-write",
        "advanced": {"approvals": approvals, "approvalTimeoutMs": timeout_ms},
    }
    started = await _tool(manager, "codex", arguments)
    return await manager.get(started["sessionId"])


def _command_params(session: Session, cwd: Path, decisions: list[Any] | None) -> Json:
    params: Json = {
        "threadId": session.thread_id,
        "turnId": session.active_turn_id,
        "itemId": "call_1",
        "startedAtMs": 0,
        "command": "touch made.txt",
        "cwd": str(cwd),
        "reason": "to make the file",
    }
    if decisions is not None:
        params["availableDecisions"] = decisions
    return params


def _long_poll(session: Session) -> Json:
    return {"action": "poll", "sessionId": session.session_id, "maxEvents": 50, "pollOptions": {"waitMs": 50}}


def _results(events: list[Json]) -> list[Json]:
    return [e["data"] for e in events if e["type"] == "approval_result"]


def _accept(decision: str) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"decision": decision})


async def test_the_form_offers_exactly_the_requests_decisions_with_amendments_labelled(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    decisions = ["accept", EXECPOLICY, NETWORK_A, NETWORK_B, "cancel"]
    await fake.request(COMMAND, _command_params(session, tmp_path, decisions))
    (request,) = session.pending.values()
    form = elicit.build_form(session, request)
    offered = form.schema["properties"]["decision"]["oneOf"]
    values = [o["const"] for o in offered]
    # Codex left decline out; declining is always possible, as with respond_permission.
    assert values == [
        "accept",
        "acceptWithExecpolicyAmendment",
        "applyNetworkPolicyAmendment",
        "applyNetworkPolicyAmendment:3",
        "cancel",
        "decline",
    ]
    titles = {o["const"]: o["title"] for o in offered}
    assert titles["acceptWithExecpolicyAmendment"].endswith(": touch made.txt")
    assert "b.test" in titles["applyNetworkPolicyAmendment:3"]
    assert form.schema["required"] == ["decision"]
    for shown in ("touch made.txt", "to make the file", session.session_id, request.request_id):
        assert shown in form.message


async def test_without_available_decisions_the_kind_decides_and_the_proposed_amendment_is_offered(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    params = _command_params(session, tmp_path, None)
    params["proposedExecpolicyAmendment"] = ["touch"]
    await fake.request(COMMAND, params)
    (request,) = session.pending.values()
    choices = elicit.decision_choices(request)
    assert choices["acceptWithExecpolicyAmendment"].execpolicy_amendment == ["touch"]
    assert "applyNetworkPolicyAmendment" not in choices  # nothing proposed, nothing to offer
    assert {"accept", "acceptForSession", "decline", "cancel"} <= set(choices)


@pytest.mark.parametrize(
    ("decision", "sent"),
    [
        ("accept", {"decision": "accept"}),
        ("acceptWithExecpolicyAmendment", {"decision": EXECPOLICY}),
        ("applyNetworkPolicyAmendment:3", {"decision": NETWORK_B}),
    ],
)
async def test_an_accepted_elicitation_answers_codex_as_respond_permission_would(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path, decision: str, sent: Json
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    decisions = ["accept", EXECPOLICY, NETWORK_A, NETWORK_B, "decline"]
    codex_id = await fake.request(COMMAND, _command_params(session, tmp_path, decisions))
    asked = Asked(_accept(decision))
    polled = await _tool(manager, "codex_check", _long_poll(session), elicit.LegacyElicitor(manager, asked))
    assert len(asked.forms) == 1
    assert await fake.answer() == (codex_id, {"id": codex_id, "result": sent})
    assert polled.get("actions", []) == []
    (result,) = _results(polled["events"])
    assert result["decision"] == decision.split(":", maxsplit=1)[0]


async def test_elicited_and_polled_answers_are_the_same_event(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    elicited = await _elicit_session(manager, tmp_path)
    polled = await _elicit_session(manager, tmp_path, approvals="poll")
    await fake.request(COMMAND, _command_params(elicited, tmp_path, ["accept", "decline"]))
    await fake.request(COMMAND, _command_params(polled, tmp_path, ["accept", "decline"]))
    asked = Asked(_accept("accept"))
    legacy = elicit.LegacyElicitor(manager, asked)
    first = await _tool(manager, "codex_check", _long_poll(elicited), legacy)
    # A poll session is never asked, even by a client that could show it.
    waiting = await _tool(manager, "codex_check", _long_poll(polled), legacy)
    assert len(asked.forms) == 1
    (action,) = waiting["actions"]
    answer = {"action": "respond_permission", "sessionId": polled.session_id, "decision": "accept"}
    await _tool(manager, "codex_check", {**answer, "requestId": action["requestId"]})
    second = await _tool(
        manager, "codex_check", {"action": "poll", "sessionId": polled.session_id, "maxEvents": 50}
    )
    (by_elicitation,) = _results(first["events"])
    (by_polling,) = _results(second["events"])
    assert {k: v for k, v in by_elicitation.items() if k != "requestId"} == {
        k: v for k, v in by_polling.items() if k != "requestId"
    }


async def test_decline_declines_and_cancel_leaves_the_request_for_polling_asked_once(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path, timeout_ms=1500)
    first_id = await fake.request(COMMAND, _command_params(session, tmp_path, ["accept", "decline"]))
    asked = Asked(types.ElicitResult(action="decline"), types.ElicitResult(action="cancel"))
    legacy = elicit.LegacyElicitor(manager, asked)
    await _tool(manager, "codex_check", _long_poll(session), legacy)
    assert await fake.answer() == (first_id, {"id": first_id, "result": {"decision": "decline"}})
    second_id = await fake.request(COMMAND, _command_params(session, tmp_path, ["accept", "decline"]))
    cancelled = await _tool(manager, "codex_check", _long_poll(session), legacy)
    (action,) = cancelled["actions"]
    again = await _tool(manager, "codex_check", _long_poll(session), legacy)
    assert again["actions"][0]["requestId"] == action["requestId"]
    assert len(asked.forms) == 2  # the cancelled one is not asked again
    # ... and its timer runs: declined when approvalTimeoutMs passes, as an unanswered polled one.
    assert await fake.answer() == (second_id, {"id": second_id, "result": {"decision": "decline"}})
    timed_out = await _tool(manager, "codex_check", {**_long_poll(session), "maxEvents": 100})
    assert _results(timed_out["events"])[-1]["timeout"] is True


async def test_an_accept_the_form_does_not_offer_leaves_the_request_pending(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    await fake.request(COMMAND, _command_params(session, tmp_path, ["accept", "decline"]))
    asked = Asked(_accept("acceptForSession"))
    polled = await _tool(manager, "codex_check", _long_poll(session), elicit.LegacyElicitor(manager, asked))
    assert len(polled["actions"]) == 1


async def test_a_question_becomes_a_form_per_question_and_its_answers_go_back(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    questions = [
        {
            "id": "db",
            "header": "Database",
            "question": "Which database?",
            "options": [
                {"label": "sqlite", "description": "a file"},
                {"label": "postgres", "description": ""},
            ],
        },
        {"id": "name", "header": "Name", "question": "Its name?"},
    ]
    params = {
        "threadId": session.thread_id,
        "turnId": session.active_turn_id,
        "itemId": "q",
        "isBlocking": True,
        "questions": questions,
    }
    codex_id = await fake.request("item/tool/requestUserInput", params)
    (request,) = session.pending.values()
    form = elicit.build_form(session, request)
    assert form.schema["required"] == ["db", "name"]
    assert [o["const"] for o in form.schema["properties"]["db"]["oneOf"]] == ["sqlite", "postgres"]
    asked = Asked(types.ElicitResult(action="accept", content={"db": "sqlite", "name": "app"}))
    await _tool(manager, "codex_check", _long_poll(session), elicit.LegacyElicitor(manager, asked))
    expected = {"answers": {"db": {"answers": ["sqlite"]}, "name": {"answers": ["app"]}}}
    assert await fake.answer() == (codex_id, {"id": codex_id, "result": expected})


async def test_a_secret_question_is_never_put_in_a_form(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    questions = [{"id": "pw", "header": "Password", "question": "Password?", "isSecret": True}]
    params = {
        "threadId": session.thread_id,
        "turnId": session.active_turn_id,
        "itemId": "q",
        "isBlocking": True,
        "questions": questions,
    }
    await fake.request("item/tool/requestUserInput", params)
    asked = Asked()
    polled = await _tool(manager, "codex_check", _long_poll(session), elicit.LegacyElicitor(manager, asked))
    assert asked.forms == []
    assert len(polled["actions"]) == 1


async def test_wait_for_result_asks_and_goes_on_waiting_once_answered(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    asked = Asked(_accept("accept"))
    legacy = elicit.LegacyElicitor(manager, asked)

    async def codex_side() -> None:
        codex_id = await fake.request(COMMAND, _command_params(session, tmp_path, ["accept", "decline"]))
        assert (await fake.answer())[0] == codex_id
        fake.complete_turn(session, "made")

    call = handlers.Call(manager_or_error=manager, report_progress=_no_progress, elicitor=legacy)
    args = parse_input("codex_reply", {"sessionId": session.session_id, "prompt": "x", "steer": False})
    output: Any = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(codex_side)
        with anyio.fail_after(STEP_BOUND_S):
            output = await handlers.resume_wait(
                args.model_copy(update={"wait_for_result": 5000}), session, call
            )
    assert output.status == "idle"
    assert output.execution is not None
    assert output.execution.reason == "completed"
    assert len(asked.forms) == 1


async def test_a_2026_client_gets_the_requests_back_and_its_retry_answers_them(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    codex_id = await fake.request(
        COMMAND, _command_params(session, tmp_path, ["accept", EXECPOLICY, "decline"])
    )
    signer = elicit.StateSigner.in_dir(tmp_path / "state")
    with pytest.raises(elicit.InputRequired) as raised:
        await _tool(manager, "codex_check", _long_poll(session), elicit.ModernElicitor())
    result = elicit.input_required(signer, "codex_check", raised.value)
    (key,) = (result.input_requests or {}).keys()
    assert key == next(iter(session.pending))
    assert result.request_state is not None
    state = signer.open(result.request_state, "codex_check")
    assert (state.session_id, state.request_ids) == (session.session_id, (key,))
    # Asked once: the next long-poll of the same session waits instead of asking again.
    await _tool(manager, "codex_check", _long_poll(session), elicit.ModernElicitor())
    responses = {key: {"action": "accept", "content": {"decision": "acceptWithExecpolicyAmendment"}}}
    await elicit.apply_responses(manager, session, state, responses)
    assert await fake.answer() == (codex_id, {"id": codex_id, "result": {"decision": EXECPOLICY}})


async def test_a_forged_or_altered_request_state_is_invalid_argument(tmp_path: Path) -> None:
    signer = elicit.StateSigner.in_dir(tmp_path)
    token = signer.seal(elicit.RetryState("codex", "sess_1", ("req_1",)))
    body, mac = token.split(".")
    swapped = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b"sess_1", b"sess_2")
    other = elicit.StateSigner.in_dir(tmp_path / "other")
    forged = [
        "",
        "nonsense",
        f"{body}.{mac[:-2]}AA",
        other.seal(elicit.RetryState("codex", "sess_1", ("req_1",))),
        # the same signature over another session's body
        f"{base64.urlsafe_b64encode(swapped).rstrip(b'=').decode()}.{mac}",
    ]
    for state in forged:
        with pytest.raises(CodexMcpError) as caught:
            signer.open(state, "codex")
        assert (caught.value.code, caught.value.field) == ("INVALID_ARGUMENT", "requestState")
    with pytest.raises(CodexMcpError):
        signer.open(token, "codex_check")  # issued for another tool
    assert signer.open(token, "codex").session_id == "sess_1"
    # The key survives a restart (same directory, same key) and only its owner reads it.
    assert elicit.StateSigner.in_dir(tmp_path).open(token, "codex").request_ids == ("req_1",)
    assert stat.S_IMODE(os.stat(tmp_path / "elicitation.key").st_mode) == 0o600


def test_form_elicitation_is_read_from_the_client_capabilities() -> None:
    def caps(**elicitation: Any) -> types.ClientCapabilities:
        return types.ClientCapabilities.model_validate({"elicitation": elicitation})

    assert elicit.client_takes_forms(caps(form={}))
    assert elicit.client_takes_forms(caps())  # an empty elicitation capability means form
    assert not elicit.client_takes_forms(caps(url={}))
    assert not elicit.client_takes_forms(types.ClientCapabilities())
    assert not elicit.client_takes_forms(None)


def test_the_server_default_comes_from_codex_mcp_approvals() -> None:
    assert Settings.from_env({}).approvals == "poll"
    assert Settings.from_env({"CODEX_MCP_APPROVALS": "elicit"}).approvals == "elicit"
    with pytest.raises(CodexMcpError) as caught:
        Settings.from_env({"CODEX_MCP_APPROVALS": "ask"})
    assert "CODEX_MCP_APPROVALS=ask" in caught.value.message


async def test_a_codex_call_without_approvals_takes_the_server_default(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, _ = on_fake
    arguments = {"prompt": "p", "cwd": str(tmp_path), "approvalPolicy": "never", "sandbox": "read-only"}
    for default in ("elicit", "poll"):
        call = handlers.Call(
            manager_or_error=manager, report_progress=_no_progress, default_approvals=default
        )
        output = await handlers.codex(parse_input("codex", arguments), call)
        assert (await manager.get(output.session_id)).settings.approvals == default
    call = handlers.Call(manager_or_error=manager, report_progress=_no_progress, default_approvals="elicit")
    explicit = await handlers.codex(
        parse_input("codex", {**arguments, "advanced": {"approvals": "poll"}}), call
    )
    assert (await manager.get(explicit.session_id)).settings.approvals == "poll"


async def test_clients_of_older_revisions_get_the_choices_as_enum_and_enum_names(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    session = await _elicit_session(manager, tmp_path)
    codex_id = await fake.request(
        COMMAND, _command_params(session, tmp_path, ["accept", EXECPOLICY, "decline"])
    )
    asked = Asked(_accept("acceptWithExecpolicyAmendment"))
    legacy = elicit.LegacyElicitor(manager, asked, "2025-06-18")  # what Codex as a client speaks
    await _tool(manager, "codex_check", _long_poll(session), legacy)
    ((_, schema),) = asked.forms
    decision = schema["properties"]["decision"]
    assert "oneOf" not in decision
    assert decision["enum"] == ["accept", "acceptWithExecpolicyAmendment", "decline"]
    assert decision["enumNames"][1].endswith(": touch made.txt")
    assert await fake.answer() == (codex_id, {"id": codex_id, "result": {"decision": EXECPOLICY}})
