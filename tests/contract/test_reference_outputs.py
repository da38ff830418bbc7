"""Drop-in output: every shape the reference README's "Returns:" lines list holds in our published
output schemas (and codex_session's per-action output rules), field for field.

The lines below are copied from the README of `@leo000001/codex-mcp` 2.1.7 (the `Returns:` line of
each tool, and of each `codex_session` action); `PublicSessionInfo` is spelled out from the
reference's `types.ts`. A field with `?` may be absent; every other field must be there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import jsonschema
import pytest

from codex_mcp.sessions import approvals
from codex_mcp.sessions.session import ACTION_PARAMS, PendingRequest
from codex_mcp.wire.tools import output_json, output_problems, tool_definition, tool_rules
from tests.contract.schema_check import error_texts

Schema = dict[str, Any]

PUBLIC_SESSION_INFO: Final = (
    "{ sessionId, status, createdAt, lastActiveAt, cancelledAt?, cancelledReason?, model?, approvalPolicy?,"
    " sandbox?, pendingRequestCount }"
)
SENSITIVE_EXTRA: Final = "{ threadId?, cwd?, profile?, config? }"
# (tool, codex_session action or None, the reference's Returns line)
REFERENCE_RETURNS: Final[list[tuple[str, str | None, str]]] = [
    (
        "codex",
        None,
        "{ sessionId, threadId, status, pollInterval?, progress?, execution?, interactionState?,"
        " recommendedNextAction? }",
    ),
    (
        "codex_reply",
        None,
        "{ sessionId, threadId, status, pollInterval?, progress?, result?, completedAt?, execution?,"
        " interactionState?, recommendedNextAction? }",
    ),
    ("codex_session", "list", "{ sessions: PublicSessionInfo[] }"),
    ("codex_session", "get", PUBLIC_SESSION_INFO),
    ("codex_session", "get", SENSITIVE_EXTRA),
    ("codex_session", "cancel", "{ success: true, message }"),
    ("codex_session", "interrupt", "{ success: true, message }"),
    ("codex_session", "fork", '{ sessionId, threadId, status: "idle", pollInterval }'),
    (
        "codex_session",
        "clean",
        "{ matchedSessionIds, removedSessionIds, removedCount, diskSessionsRemoved, dryRun }",
    ),
    ("codex_session", "clean_background_terminals", "{ success: true, message }"),
    (
        "codex_check",
        None,
        "{ sessionId, status, pollInterval?, progress?, interactionState?, recommendedNextAction?,"
        " cursorResetTo?, events, nextCursor, actions?, result? }",
    ),
]


TRANSCRIPTS: Final = Path(__file__).parent / "transcripts" / "app_server"
# The tools whose output carries `actions[]` (the same `Action` definition in each).
ACTION_TOOLS: Final = ("codex", "codex_reply", "codex_check")


def _fields(line: str) -> list[tuple[str, bool]]:
    """(name, required) of each field of a `{ a, b?, c: T }` line."""
    body = line.strip().removeprefix("{").removesuffix("}")
    fields: list[tuple[str, bool]] = []
    for part in body.split(","):
        match = re.fullmatch(r"\s*(\w+)(\??)(?::.*)?\s*", part)
        assert match is not None, part
        fields.append((match.group(1), match.group(2) != "?"))
    return fields


def _action_rule(action: str) -> Schema:
    rules = tool_rules("codex_session", "output")
    assert rules is not None
    [then] = [
        entry["then"] for entry in rules["allOf"] if entry["if"]["properties"]["action"]["const"] == action
    ]
    return then


def test_the_parser_reads_required_and_optional_fields() -> None:
    assert _fields('{ a, b?, c: "idle", d: X[] }') == [("a", True), ("b", False), ("c", True), ("d", True)]


@pytest.mark.parametrize(("tool", "action", "line"), REFERENCE_RETURNS)
def test_every_field_the_reference_returns_is_in_our_output_schema(
    tool: str, action: str | None, line: str
) -> None:
    schema = tool_definition(tool)["outputSchema"]
    properties: Schema = schema["properties"]
    required = set(schema.get("required", []))
    allowed: set[str] = set(properties)
    if action is not None:
        rule = _action_rule(action)
        required |= set(rule["required"])
        allowed = set(rule["propertyNames"]["enum"])
    for name, needed in _fields(line):
        assert name in properties, (tool, action, name)
        assert name in allowed, (tool, action, name)
        if needed:
            assert name in required, (tool, action, name)


def test_list_returns_session_infos_with_every_public_field() -> None:
    schema = tool_definition("codex_session")["outputSchema"]
    assert schema["properties"]["sessions"]["items"] == {"$ref": "#/$defs/SessionInfo"}
    info: Schema = schema["$defs"]["SessionInfo"]
    for name, needed in _fields(PUBLIC_SESSION_INFO) + _fields(SENSITIVE_EXTRA):
        assert name in info["properties"], name
        assert needed == (name in info["required"]), name


def test_get_returns_every_session_info_field_at_the_top_level_with_the_same_schema() -> None:
    schema = tool_definition("codex_session")["outputSchema"]
    info: Schema = schema["$defs"]["SessionInfo"]
    rule = _action_rule("get")
    assert "session" not in schema["properties"]
    assert set(rule["required"]) == set(info["required"])
    assert set(rule["propertyNames"]["enum"]) == {"action", *info["properties"]}
    for name, field in info["properties"].items():
        top = {key: value for key, value in schema["properties"][name].items() if key != "description"}
        assert top == {key: value for key, value in field.items() if key != "description"}, name


def test_fork_returns_an_idle_status_and_a_poll_interval() -> None:
    schema = tool_definition("codex_session")["outputSchema"]
    statuses = schema["$defs"]["SessionStatus"]["enum"]
    assert "idle" in statuses
    assert {"status", "pollInterval"} <= set(_action_rule("fork")["required"])


_GET: Final[dict[str, Any]] = {
    "action": "get",
    "sessionId": "sess_1a2b3c4d5e6f",
    "status": "running",
    "createdAt": "2026-01-01T00:00:00Z",
    "lastActiveAt": "2026-01-01T00:00:01Z",
    "pendingRequestCount": 0,
    "startedByCancelledCall": True,
}


def test_the_output_rules_are_checked_with_the_output_schema() -> None:
    assert output_problems("codex_session", _GET) == []
    nested = {"action": "get", "session": {key: value for key, value in _GET.items() if key != "action"}}
    assert output_problems("codex_session", nested)
    missing = {key: value for key, value in _GET.items() if key != "createdAt"}
    assert [field for field, _ in output_problems("codex_session", missing)] == ["createdAt"]
    assert output_problems("codex_session", {**_GET, "sessions": []})
    assert output_problems(
        "codex_session", {"action": "fork", "sessionId": "s", "threadId": "t", "status": "idle"}
    )


def _action(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The `actions[]` entry we show for one request Codex sent."""
    interactive = approvals.INTERACTIVE[method]
    action = PendingRequest(
        request_id="req_1a2b3c4d",
        codex_id=0,
        method=method,
        action_type=interactive.action_type,
        kind=interactive.kind,
        params=params,
        created_at="2026-01-01T00:00:00.000+00:00",
        expires_at="2026-01-01T00:01:00.000+00:00",
        available_decisions=approvals.offered_decisions(params),
    ).to_action()
    return output_json(action)


def _closed_action_validator(tool: str) -> Any:
    """Our `Action` definition with no room for undeclared fields: each field we show is declared."""
    defs: Schema = tool_definition(tool)["outputSchema"]["$defs"]
    return jsonschema.Draft202012Validator(
        {"$defs": defs, **defs["Action"], "additionalProperties": False},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _recorded_requests() -> list[tuple[str, dict[str, Any]]]:
    """(method, params) of every interactive request the real Codex sent in the transcripts."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record: dict[str, Any] = json.loads(line)
            message: dict[str, Any] = record["msg"]
            if record["dir"] == "in" and message.get("method") in approvals.INTERACTIVE:
                found.append((str(message["method"]), dict(message["params"])))
    return found


# A command approval with every field Codex 0.163 may send (CommandExecutionRequestApprovalParams).
FULL_COMMAND_APPROVAL: Final[dict[str, Any]] = {
    "kind": "command",
    "threadId": "00000000-0000-7000-8000-000000000002",
    "turnId": "00000000-0000-7000-8000-000000000003",
    "itemId": "call_shell_1",
    "approvalId": "00000000-0000-7000-8000-000000000004",
    "startedAtMs": 1795487575442,
    "environmentId": "local",
    "reason": "needs the network",
    "command": "curl -sI https://example.com",
    "cwd": "/workspace",
    "commandActions": [{"type": "unknown", "command": "curl -sI https://example.com"}],
    "proposedExecpolicyAmendment": ["curl", "-sI"],
    "proposedNetworkPolicyAmendments": [{"action": "allow", "host": "example.com"}],
    "networkApprovalContext": {"host": "example.com", "protocol": "https"},
    "additionalPermissions": {"network": {"enabled": True}},
    "availableDecisions": ["accept", "decline", "cancel"],
}


def test_the_recorded_requests_include_a_command_approval_and_a_question() -> None:
    methods = {method for method, _ in _recorded_requests()}
    assert {"item/commandExecution/requestApproval", "item/tool/requestUserInput"} <= methods


@pytest.mark.parametrize("tool", ACTION_TOOLS)
def test_every_field_an_action_shows_is_declared_in_our_action_schema(tool: str) -> None:
    validator = _closed_action_validator(tool)
    shown = [_action(method, params) for method, params in _recorded_requests()]
    shown.append(_action("item/commandExecution/requestApproval", FULL_COMMAND_APPROVAL))
    for action in shown:
        assert error_texts(validator, action) == [], action["kind"]


def test_a_command_approval_shows_what_the_reference_shows_at_the_top_of_its_action() -> None:
    [recorded] = [
        params
        for method, params in _recorded_requests()
        if method == "item/commandExecution/requestApproval" and "commandActions" in params
    ][:1]
    action = _action("item/commandExecution/requestApproval", recorded)
    # "For command approvals, actions[] may include commandActions and proposedExecpolicyAmendment".
    assert action["commandActions"] == recorded["commandActions"]
    assert action["proposedExecpolicyAmendment"] == recorded["proposedExecpolicyAmendment"]
    assert action["command"] == recorded["command"]
    assert action["params"] == recorded


def test_every_param_an_action_copies_is_declared_alike_in_each_tool() -> None:
    full = _action("item/commandExecution/requestApproval", FULL_COMMAND_APPROVAL)
    assert set(ACTION_PARAMS) - {"questions"} <= set(full)
    copies = [tool_definition(tool)["outputSchema"]["$defs"]["Action"] for tool in ACTION_TOOLS]
    for name in ACTION_PARAMS:
        assert all(copy["properties"][name] == copies[0]["properties"][name] for copy in copies), name
