"""Known traps of Codex settings: what the compat-report warns about, and when each applies."""

from __future__ import annotations

from typing import Any

from codex_mcp.backend_mode import ModeChoice
from codex_mcp.protocol_diff import JsonObject, type_enum


def known_traps(live: JsonObject | None, mode: ModeChoice | None) -> list[dict[str, Any]]:
    """Every known trap, with whether it applies to this Codex (`live`: its protocol summary) and backend."""
    policies = (type_enum(live, "AskForApproval") or []) if live is not None else []
    sandboxes = (type_enum(live, "SandboxMode") or []) if live is not None else []
    exec_mode = mode is not None and mode.mode == "exec"
    return [
        {
            "id": "never-with-workspace-write",
            "applies": "never" in policies and "workspace-write" in sandboxes,
            "when": 'approvalPolicy "never" with sandbox "workspace-write"',
            "effect": "nothing can ask to leave the sandbox: network access and writes outside the "
            "workspace fail instead of asking; some Codex builds were reported to treat the "
            "workspace as read-only then (openai/codex-plugin-cc#412)",
            "fix": 'use approvalPolicy "on-request" and answer approvals with codex_check respond_permission',
        },
        {
            "id": "on-failure-removed",
            "applies": live is not None and "on-failure" not in policies,
            "when": 'approvalPolicy "on-failure"',
            "effect": 'this Codex has no "on-failure": it is sent as "on-request", with a compatWarning',
            "fix": 'pass "on-request"',
        },
        {
            "id": "questions-need-plan-mode",
            "applies": live is not None and "plan" in (type_enum(live, "ModeKind") or []),
            "when": "expecting respond_user_input actions",
            "effect": "Codex asks the caller questions only in plan mode",
            "fix": 'pass advanced.collaborationMode "plan" (codex) or collaborationMode "plan" (codex_reply)',
        },
        {
            "id": "exec-never-asks",
            "applies": exec_mode,
            "when": "the exec backend (CODEX_MCP_MODE=exec, or a Codex without app-server)",
            "effect": 'codex exec cannot ask: every turn runs as approvalPolicy "never", with a '
            "compatWarning for other policies",
            "fix": "use a Codex with `codex app-server` and leave CODEX_MCP_MODE unset",
        },
        {
            "id": "exec-no-fork",
            "applies": exec_mode,
            "when": "codex_session fork or clean_background_terminals on the exec backend",
            "effect": "EXEC_NOT_SUPPORTED",
            "fix": "use a Codex with `codex app-server`",
        },
    ]
