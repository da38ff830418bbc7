"""The plan both real clients follow: every tool of ours once, and what each answer must show."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, cast

from tests.harness.plans import PlannedCall, call
from tests.harness.scenarios import PLAIN_TEXT, REASONING_ANSWER

# Bounded below the clients' tool timeouts (Codex: tool_timeout_sec = 60 in the test config).
WAIT_MS: Final = 30000
UNKNOWN_SESSION: Final = "sess_ffffffffffff"

ALL_TOOLS: Final[tuple[PlannedCall, ...]] = (
    call("codex_setup"),
    call(
        "codex",
        prompt="scenario:plain first turn",
        approvalPolicy="never",
        sandbox="read-only",
        advanced={"waitForResult": WAIT_MS},
    ),
    call("codex_check", action="poll", sessionId="$SESSION", cursor=0, maxEvents=50),
    call("codex_reply", sessionId="$SESSION", prompt="scenario:reasoning second turn", waitForResult=WAIT_MS),
    call("codex_session", action="list"),
    call("codex_session", action="get", sessionId="$SESSION"),
    call("codex_session", action="cancel", sessionId="$SESSION"),
    call("codex_session", action="get", sessionId="$SESSION"),
    call("codex_session", action="get", sessionId=UNKNOWN_SESSION),
)


def session_fields(got: dict[str, Any]) -> dict[str, Any]:
    """A `get` answer's session, whether nested under `session` or at the top level (drop-in shape)."""
    nested = got.get("session")
    return cast(dict[str, Any], nested) if isinstance(nested, dict) else got


def check_all_tools_answers(seen: Sequence[str]) -> str:
    """Assert what the model saw of each call of ALL_TOOLS (JSON texts, the last an error); the session id."""
    assert len(seen) == len(ALL_TOOLS), seen
    error_text = seen[-1]
    setup, started, poll, reply, listed, got, cancelled, after = (json.loads(text) for text in seen[:8])
    assert setup["codex"]["found"] is True
    assert setup["backend"]["mode"] == "app-server"
    session_id = started["sessionId"]
    assert started["status"] == "idle"
    assert started["execution"]["mode"] == "foreground"
    assert started["result"]["text"] == PLAIN_TEXT
    assert poll["status"] == "idle"
    assert "result" in [event["type"] for event in poll["events"]]
    assert reply["status"] == "idle"
    assert reply["result"]["text"] == REASONING_ANSWER
    assert session_id in [s["sessionId"] for s in listed["sessions"]]
    assert session_fields(got)["sessionId"] == session_id
    assert session_fields(got)["status"] == "idle"
    assert cancelled["action"] == "cancel"
    assert cancelled["success"] is True
    assert session_fields(after)["status"] == "cancelled"
    assert "SESSION_NOT_FOUND" in error_text
    assert UNKNOWN_SESSION in error_text
    return session_id
