"""What each request Codex sends us means, and how each answer is written back.

Interactive requests become `actions[]` the caller answers; the others are answered at once, so
Codex never waits on a request nobody will see.
"""

from __future__ import annotations

import time
from typing import Any, Final

from pydantic import BaseModel

from codex_mcp.errors import CodexMcpError
from codex_mcp.wire.answers import answer
from codex_mcp.wire.methods import (
    ACCOUNT_CHATGPT_AUTH_TOKENS_REFRESH,
    APPLY_PATCH_APPROVAL,
    CURRENT_TIME_READ,
    EXEC_COMMAND_APPROVAL,
    ITEM_PERMISSIONS_REQUEST_APPROVAL,
    ITEM_TOOL_CALL,
    ITEM_TOOL_REQUEST_USER_INPUT,
    MCP_SERVER_ELICITATION_REQUEST,
)
from codex_mcp.wire.server_requests import INTERACTIVE

# JSON-RPC error code for requests we will not serve (the reference used the same).
UNSUPPORTED_CODE: Final = -32000
_LEGACY_DENIED: Final = "codex-mcp answers approvals as item/*/requestApproval only"


def immediate_answer(method: str) -> tuple[BaseModel | None, str | None]:
    """(result, None) or (None, error message) for a request answered without the caller."""
    if method == CURRENT_TIME_READ:
        return answer(method, {"currentTimeAt": int(time.time())}), None
    if method == ITEM_TOOL_CALL:
        unsupported = [{"type": "inputText", "text": "Not supported by codex-mcp"}]
        return answer(method, {"success": False, "contentItems": unsupported}), None
    if method in (APPLY_PATCH_APPROVAL, EXEC_COMMAND_APPROVAL):
        # The pinned schema takes a denial as an object with its reason (the reference's bare
        # "denied" is no ReviewDecision).
        return answer(method, {"decision": {"denied": {"rejection": _LEGACY_DENIED}}}), None
    if method == ACCOUNT_CHATGPT_AUTH_TOKENS_REFRESH:
        return None, "ChatGPT token refresh is not supported by codex-mcp; log in with `codex login`"
    return None, f"{method} is not supported by codex-mcp"


def offered_decisions(params: dict[str, Any]) -> list[str] | None:
    """The decision names a command approval offers (`availableDecisions`), objects by their key."""
    raw = params.get("availableDecisions")
    if not isinstance(raw, list):
        return None
    names: list[str] = []
    for entry in raw:  # pyright: ignore[reportUnknownVariableType]
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, dict) and entry:
            names.append(str(next(iter(entry))))  # pyright: ignore[reportUnknownArgumentType]
    return names


def mcp_kind(params: dict[str, Any]) -> str:
    """mcpToolCall for MCP tool-call approvals, elicitation for other MCP server questions."""
    meta = params.get("_meta")
    if isinstance(meta, dict) and meta.get("codex_approval_kind") == "mcp_tool_call":  # pyright: ignore[reportUnknownMemberType]
        return "mcpToolCall"
    return "elicitation"


def permission_response(
    method: str,
    params: dict[str, Any],
    available: list[str] | None,
    *,
    decision: str,
    execpolicy_amendment: list[str] | None,
    network_policy_amendment: dict[str, Any] | None,
) -> BaseModel:
    """The result to send Codex for `decision`, after checking the request offers it.

    Raises:
        CodexMcpError: INVALID_ARGUMENT naming `decision` when this request does not take it.
    """
    allowed = INTERACTIVE[method].decisions
    # Declining is always possible, even where Codex leaves "decline" out of availableDecisions.
    offered_here = available is None or decision in available or decision == "decline"
    if decision not in allowed or not offered_here:
        offered = available if available is not None else list(allowed)
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            f"decision {decision!r} is not offered for this {INTERACTIVE[method].kind} request; "
            f"choose one of {offered}",
            field="decision",
        )
    return answer(
        method, _decision_result(method, params, decision, execpolicy_amendment, network_policy_amendment)
    )


def _decision_result(
    method: str,
    params: dict[str, Any],
    decision: str,
    execpolicy_amendment: list[str] | None,
    network_policy_amendment: dict[str, Any] | None,
) -> dict[str, Any]:
    if method == ITEM_PERMISSIONS_REQUEST_APPROVAL:
        granted: object = params.get("permissions") if decision in ("accept", "acceptForSession") else {}
        return {
            "permissions": granted or {},
            "scope": "session" if decision == "acceptForSession" else "turn",
        }
    if method == MCP_SERVER_ELICITATION_REQUEST:
        if decision == "acceptForSession":
            # Codex's MCP tool-call approvals remember a session-wide yes through `_meta.persist`.
            return {"action": "accept", "content": {}, "_meta": {"persist": "session"}}
        return {"action": decision, "content": {} if decision == "accept" else None}
    if decision == "acceptWithExecpolicyAmendment":
        return {"decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": execpolicy_amendment}}}
    if decision == "applyNetworkPolicyAmendment":
        return {
            "decision": {
                "applyNetworkPolicyAmendment": {"network_policy_amendment": network_policy_amendment}
            }
        }
    return {"decision": decision}


def declined_response(method: str) -> BaseModel:
    """What we answer when a request times out, or its session is cancelled."""
    if method == ITEM_TOOL_REQUEST_USER_INPUT:
        return answer(method, {"answers": {}})
    if method == ITEM_PERMISSIONS_REQUEST_APPROVAL:
        return answer(method, {"permissions": {}, "scope": "turn"})
    if method == MCP_SERVER_ELICITATION_REQUEST:
        return answer(method, {"action": "decline", "content": None})
    return answer(method, {"decision": "decline"})


def user_input_response(answers: dict[str, Any]) -> BaseModel:
    """`item/tool/requestUserInput` result: question id -> {answers: [...]}."""
    given = {question: {"answers": list(entry["answers"])} for question, entry in answers.items()}
    return answer(ITEM_TOOL_REQUEST_USER_INPUT, {"answers": given})
