"""`claude -p` (2026-07-28, answers every elicitation cancel) with `advanced.approvals: "elicit"`.

Claude Code gets our input-required result, answers cancel at once and retries the same `codex`
call with our `requestState`; the retry continues the same session, so the model sees the session
with its approval still in `actions`. The approval stays pollable, and its timer declines it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.client import server_env
from tests.harness.claude_code import run_claude
from tests.harness.codex_env import CodexEnv
from tests.harness.messages_model import TOOL_SEARCH, MessagesModelServer
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients
from tests.harness.plans import call, final_text, plan_prompt

pytestmark = [pytest.mark.real_codex, pytest.mark.real_clients]

APPROVAL_TIMEOUT_MS: Final = 3000
PLAN: Final = (
    call(
        "codex",
        prompt="scenario:shell make the file",
        approvalPolicy="untrusted",
        sandbox="workspace-write",
        advanced={"approvals": "elicit", "waitForResult": 30000, "approvalTimeoutMs": APPROVAL_TIMEOUT_MS},
    ),
    call("codex_check", action="poll", sessionId="$SESSION", cursor=0, maxEvents=50),
    # A second session whose slow turn outlasts the first one's approval timeout.
    call(
        "codex",
        prompt="scenario:slow take your time",
        approvalPolicy="never",
        sandbox="read-only",
        advanced={"waitForResult": 20000},
    ),
    call("codex_session", action="list"),
)


def test_claude_p_cancels_the_elicitation_and_the_approval_stays_pollable_until_its_timer(
    npm_clients: NpmClients,
    messages_model: MessagesModelServer,
    mock_model: MockModelServer,
    codex_env: CodexEnv,
    tmp_path: Path,
) -> None:
    run = run_claude(
        npm_clients.claude,
        messages_model,
        plan_prompt(PLAN, "Call the tools of this plan in order."),
        root=tmp_path / "claude",
        server_env=server_env(codex_env),
        cwd=codex_env.workspace,
    )
    assert run.returncode == 0, run.stderr
    assert run.result.get("result") == final_text(["x"] * len(PLAN)), run.stdout[-2000:]
    last = messages_model.planned_requests()[-1]
    uses = [u for u in last.tool_uses() if u.name != TOOL_SEARCH]
    assert [u.is_error for u in uses] == [False] * len(PLAN), [u.result for u in uses]
    started, polled, _, listed = (json.loads(u.result or "") for u in uses)
    # The retry (after Claude Code's cancel) answered with the session, its approval pending.
    session_id = started["sessionId"]
    assert started["execution"]["reason"] == "needs_input"
    (action,) = started["actions"]
    assert action["kind"] == "command"
    # Still pollable: the same request, nothing answered it.
    assert [a["requestId"] for a in polled["actions"]] == [action["requestId"]]
    assert "approval_result" not in [e["type"] for e in polled["events"]]
    # ... until its timer declined it: the turn went on without running the command.
    sessions: dict[str, Any] = {s["sessionId"]: s for s in listed["sessions"]}
    assert sessions[session_id]["status"] == "idle", sessions[session_id]
    assert len(sessions) == 2  # the retry started no session
    assert not (codex_env.workspace / "made.txt").exists()
    assert messages_model.connects() == []
