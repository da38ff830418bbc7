"""Drop-in output: every shape the reference README's "Returns:" lines list holds in our published
output schemas (and codex_session's per-action output rules), field for field.

The lines below are copied from the README of `@leo000001/codex-mcp` 2.1.7 (the `Returns:` line of
each tool, and of each `codex_session` action); `PublicSessionInfo` is spelled out from the
reference's `types.ts`. A field with `?` may be absent; every other field must be there.
"""

from __future__ import annotations

import re
from typing import Any, Final

import pytest

from codex_mcp.wire.tools import output_problems, tool_definition, tool_rules

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
