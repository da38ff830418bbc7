"""Each Codex request kind is answered in its own wire shape, and only with decisions it offers.

The answers are generated response models; what is compared is what goes out on the wire.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions import approvals
from codex_mcp.wire.app_server import encode_response

COMMAND = "item/commandExecution/requestApproval"
FILE = "item/fileChange/requestApproval"
PERMISSIONS = "item/permissions/requestApproval"
ELICITATION = "mcpServer/elicitation/request"


def _sent(answer: BaseModel | None) -> Any:
    """The `result` of the answer line Codex receives."""
    return None if answer is None else json.loads(encode_response(0, answer))["result"]


def _answer(
    method: str, decision: str, available: list[str] | None = None, **extra: object
) -> dict[str, object]:
    return _sent(
        approvals.permission_response(
            method,
            {"permissions": {"network": {"enabled": True}}},
            available,
            decision=decision,
            execpolicy_amendment=extra.get("execpolicy_amendment"),  # type: ignore[arg-type]
            network_policy_amendment=extra.get("network_policy_amendment"),  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize("decision", ["accept", "acceptForSession", "decline", "cancel"])
def test_plain_decisions_are_sent_as_strings(decision: str) -> None:
    assert _answer(COMMAND, decision) == {"decision": decision}
    assert _answer(FILE, decision) == {"decision": decision}


def test_amendment_decisions_carry_their_amendments() -> None:
    assert _answer(COMMAND, "acceptWithExecpolicyAmendment", execpolicy_amendment=["git", "status"]) == {
        "decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["git", "status"]}}
    }
    policy = {"action": "allow", "host": "example.com"}
    assert _answer(COMMAND, "applyNetworkPolicyAmendment", network_policy_amendment=policy) == {
        "decision": {"applyNetworkPolicyAmendment": {"network_policy_amendment": policy}}
    }


def test_file_changes_refuse_amendment_decisions_naming_the_field() -> None:
    with pytest.raises(CodexMcpError) as caught:
        _answer(FILE, "acceptWithExecpolicyAmendment", execpolicy_amendment=["x"])
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.field == "decision"


def test_a_decision_codex_did_not_offer_is_refused_but_decline_is_always_possible() -> None:
    offered = ["accept", "acceptWithExecpolicyAmendment", "cancel"]
    with pytest.raises(CodexMcpError):
        _answer(COMMAND, "acceptForSession", offered)
    assert _answer(COMMAND, "decline", offered) == {"decision": "decline"}


def test_permissions_grant_what_was_asked_for_the_turn_or_session_or_nothing() -> None:
    asked = {"network": {"enabled": True}}
    assert _answer(PERMISSIONS, "accept") == {"permissions": asked, "scope": "turn"}
    assert _answer(PERMISSIONS, "acceptForSession") == {"permissions": asked, "scope": "session"}
    assert _answer(PERMISSIONS, "decline") == {"permissions": {}, "scope": "turn"}


def test_mcp_tool_call_approvals_answer_as_elicitation_actions() -> None:
    assert _answer(ELICITATION, "accept") == {"action": "accept", "content": {}}
    assert _answer(ELICITATION, "decline") == {"action": "decline", "content": None}
    assert approvals.mcp_kind({"_meta": {"codex_approval_kind": "mcp_tool_call"}}) == "mcpToolCall"
    assert approvals.mcp_kind({"message": "pick a color"}) == "elicitation"


def test_available_decisions_objects_are_named_by_their_key() -> None:
    params: dict[str, object] = {
        "availableDecisions": ["accept", {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["git"]}}]
    }
    assert approvals.offered_decisions(params) == ["accept", "acceptWithExecpolicyAmendment"]
    assert approvals.offered_decisions({}) is None


@pytest.mark.parametrize(
    ("method", "declined"),
    [
        (COMMAND, {"decision": "decline"}),
        (FILE, {"decision": "decline"}),
        (PERMISSIONS, {"permissions": {}, "scope": "turn"}),
        (ELICITATION, {"action": "decline", "content": None}),
        ("item/tool/requestUserInput", {"answers": {}}),
    ],
)
def test_timeouts_and_cancels_decline_in_each_requests_shape(
    method: str, declined: dict[str, object]
) -> None:
    assert _sent(approvals.declined_response(method)) == declined


def test_requests_nobody_can_answer_get_an_immediate_answer_or_error() -> None:
    now, error = approvals.immediate_answer("currentTime/read")
    assert error is None
    assert isinstance(_sent(now)["currentTimeAt"], int)
    tool, _ = approvals.immediate_answer("item/tool/call")
    assert _sent(tool) == {
        "success": False,
        "contentItems": [{"type": "inputText", "text": "Not supported by codex-mcp"}],
    }
    denied, none = approvals.immediate_answer("execCommandApproval")
    assert none is None
    assert _sent(denied) == {
        "decision": {"denied": {"rejection": "codex-mcp answers approvals as item/*/requestApproval only"}}
    }
    refused, why = approvals.immediate_answer("account/chatgptAuthTokens/refresh")
    assert refused is None
    assert why is not None
    assert "codex login" in why


def test_user_input_answers_are_passed_through_by_question_id() -> None:
    assert _sent(approvals.user_input_response({"color": {"answers": ["Red"]}})) == {
        "answers": {"color": {"answers": ["Red"]}}
    }
