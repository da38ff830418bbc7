"""Every tool's handler returns its tool's generated output model, never a dict, on each of its
paths (the sessions in memory, a stand-in for the session manager), and its JSON is what the
published schema allows; the server refuses a handler result that is not the model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import mcp_types as types
import pytest

from codex_mcp import settings, worktrees
from codex_mcp.errors import CodexMcpError
from codex_mcp.server import app, elicit, handlers
from codex_mcp.server.startup import Startup
from codex_mcp.sessions.ingest import finish_turn, ingest_notification
from codex_mcp.sessions.manager import SessionManager, TurnRequest
from codex_mcp.sessions.session import ActionType, PendingRequest, Session, ThreadSettings
from codex_mcp.sessions.worktree_sessions import CleanEntry, Patch
from codex_mcp.settings import Settings
from codex_mcp.wire.tools import TOOL_NAMES, output_json, output_model, output_problems, parse_input
from codex_mcp.worktrees import Finished, Worktree

pytestmark = pytest.mark.anyio

_TIME = "2026-01-01T00:00:00.000Z"


def _session(
    session_id: str = "sess_1",
    *,
    pending: bool = False,
    finished: bool = False,
    worktree: Worktree | None = None,
) -> Session:
    settings = ThreadSettings(
        approval_policy="never", sandbox="read-only", cwd="/w", model="m", worktree=worktree
    )
    session = Session(
        session_id=session_id, thread_id=f"thr_{session_id}", settings=settings, connection_key="k"
    )
    session.begin_turn(has_output_schema=False)
    thread = session.thread_id
    ingest_notification(session, "turn/started", {"threadId": thread, "turn": {"id": "t1", "items": []}})
    ingest_notification(
        session,
        "item/completed",
        {"threadId": thread, "turnId": "t1", "item": {"type": "agentMessage", "id": "a", "text": "hi"}},
    )
    if pending:
        requests: list[tuple[str, str, ActionType, str]] = [
            ("req_1", "item/commandExecution/requestApproval", "approval", "command"),
            ("req_2", "item/tool/requestUserInput", "user_input", "user_input"),
        ]
        for request_id, method, action_type, kind in requests:
            session.pending[request_id] = PendingRequest(
                request_id=request_id,
                codex_id=1,
                method=method,
                action_type=action_type,
                kind=kind,
                params={"threadId": thread, "itemId": "i", "command": "ls", "questions": [{"id": "q"}]},
                created_at=_TIME,
                expires_at=_TIME,
                available_decisions=["accept", "decline"],
            )
        session.refresh_status()
    if finished:
        finish_turn(session, status="completed", turn_id="t1")
        if worktree is not None:
            assert session.result is not None
            session.result["changes"] = {**worktrees.identity(worktree), "clean": True, "files": [_FILE]}
    return session


_WORKTREE = Worktree("/state/worktrees/sess_2", "codex-mcp/sess_2", "b" * 40, "/repo/.git")
_FILE = {"path": "f", "status": "modified", "linesAdded": 1, "linesDeleted": 0}


class _Manager:
    """What the handlers ask of the session manager, answered from sessions in memory."""

    def __init__(self) -> None:
        self.sessions = {
            "sess_1": _session("sess_1", pending=True),
            "sess_2": _session("sess_2", finished=True, worktree=_WORKTREE),
        }

    async def start(
        self,
        settings: ThreadSettings,
        turn: TurnRequest,
        warnings: list[str],
        begun: Any,
        *,
        worktree: bool | str = False,
    ) -> Session:
        warnings.append("a warning")
        return self.sessions["sess_1"]

    async def reply(self, session_id: str, turn: TurnRequest, warnings: list[str], begun: Any) -> Session:
        return self.sessions[session_id]

    async def get(self, session_id: str) -> Session:
        return self.sessions[session_id]

    async def lookup(self, session_id: str) -> Session:
        return self.sessions[session_id]

    async def wait_for_news(self, session: Session, timeout_s: float) -> Session:
        return session

    def all_sessions(self) -> list[Session]:
        return list(self.sessions.values())

    async def clean(
        self, statuses: list[str], older_than_ms: int | None, *, dry_run: bool, include_disk: bool
    ) -> tuple[list[str], int, list[CleanEntry]]:
        return ["sess_2"], 1, [CleanEntry("sess_2", _WORKTREE, commits_changes=True, keeps_branch=True)]

    async def worktree_patch(self, session_id: str) -> Patch:
        summary = {**worktrees.identity(_WORKTREE), "clean": False, "files": [_FILE], "filesChanged": 1}
        return Patch(summary, "diff --git a/f b/f\n", truncated=True)

    async def worktree_keep(self, session_id: str) -> Finished:
        return Finished(replace(_WORKTREE, removed=True), committed="c" * 40, head="c" * 40)

    async def worktree_remove(self, session_id: str, *, force: bool) -> Finished:
        return Finished(replace(_WORKTREE, removed=True, branch_deleted=True), head="d" * 40)

    async def cancel(self, session_id: str) -> Session:
        return self.sessions[session_id]

    async def interrupt(self, session_id: str) -> Session:
        return self.sessions[session_id]

    async def fork(self, session_id: str) -> Session:
        fork = _session("sess_3", finished=True)
        self.sessions[fork.session_id] = fork
        return fork

    async def clean_background_terminals(self, session_id: str) -> Session:
        return self.sessions[session_id]

    async def respond_permission(self, session_id: str, request_id: str, **answer: Any) -> Session:
        return self.sessions[session_id]

    async def respond_user_input(self, session_id: str, request_id: str, answers: dict[str, Any]) -> Session:
        return self.sessions[session_id]


_START = {"prompt": "p", "approvalPolicy": "never", "sandbox": "read-only"}
# (tool, arguments): every tool, every codex_session and codex_check action, with and without the
# optional parts of their results.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("codex", _START),
    ("codex", {**_START, "advanced": {"waitForResult": 10}}),
    ("codex_reply", {"sessionId": "sess_2", "prompt": "p", "waitForResult": 10}),
    ("codex_session", {"action": "list"}),
    ("codex_session", {"action": "get", "sessionId": "sess_1", "includeSensitive": True}),
    ("codex_session", {"action": "cancel", "sessionId": "sess_1"}),
    ("codex_session", {"action": "interrupt", "sessionId": "sess_1"}),
    ("codex_session", {"action": "fork", "sessionId": "sess_2"}),
    ("codex_session", {"action": "clean", "dryRun": True}),
    ("codex_session", {"action": "clean_background_terminals", "sessionId": "sess_1"}),
    ("codex_session", {"action": "get", "sessionId": "sess_2"}),
    ("codex_session", {"action": "worktree_patch", "sessionId": "sess_2"}),
    ("codex_session", {"action": "worktree_keep", "sessionId": "sess_2"}),
    ("codex_session", {"action": "worktree_remove", "sessionId": "sess_2", "force": True}),
    ("codex_check", {"action": "poll", "sessionId": "sess_1", "cursor": 0, "maxEvents": 10}),
    ("codex_check", {"action": "poll", "sessionId": "sess_2", "pollOptions": {"maxBytes": 256}}),
    ("codex_check", {"action": "poll", "sessionId": "sess_2", "pollOptions": {"finalOnly": True}}),
    (
        "codex_check",
        {"action": "respond_permission", "sessionId": "sess_1", "requestId": "req_1", "decision": "accept"},
    ),
    (
        "codex_check",
        {
            "action": "respond_user_input",
            "sessionId": "sess_1",
            "requestId": "req_2",
            "answers": {"q": {"answers": ["yes"]}},
        },
    ),
    ("codex_setup", {}),
]
HANDLERS: dict[str, app.Handler] = {
    "codex": handlers.codex,
    "codex_reply": handlers.codex_reply,
    "codex_session": handlers.codex_session,
    "codex_check": handlers.codex_check,
    "codex_setup": handlers.codex_setup,
}


async def _no_progress(elapsed_s: float, message: str) -> None:
    return None


def test_every_tool_is_called_here() -> None:
    assert {tool for tool, _ in CALLS} == set(TOOL_NAMES) == set(HANDLERS)


@pytest.fixture(autouse=True)
def _no_codex_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """codex_setup reports on a machine without Codex (it runs nothing)."""
    monkeypatch.setattr(settings, "_bundled_codex", lambda: None)
    for name in ("CODEX_MCP_PATH", "CODEX_MCP_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize(
    ("tool", "arguments"),
    CALLS,
    ids=[f"{tool}-{arguments.get('action', '')}-{index}" for index, (tool, arguments) in enumerate(CALLS)],
)
async def test_each_handler_returns_its_tools_output_model(tool: str, arguments: dict[str, Any]) -> None:
    call = handlers.Call(manager_or_error=cast(SessionManager, _Manager()), report_progress=_no_progress)
    output = await HANDLERS[tool](parse_input(tool, arguments), call)
    assert type(output) is output_model(tool)
    assert output_problems(tool, output_json(output)) == []


async def test_the_server_refuses_a_handler_result_that_is_not_the_output_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def as_a_dict(args: Any, call: handlers.Call) -> Any:
        return {"ready": True, "codex": {"found": False}, "backend": {"mode": "unknown"}, "problems": []}

    monkeypatch.setitem(app._TOOLS, "codex_setup", as_a_dict)  # pyright: ignore[reportPrivateUsage]
    no_codex = CodexMcpError("APP_SERVER_START_FAILED", "no codex")
    startup = Startup(Settings.from_env({}), no_codex, None)
    context = SimpleNamespace(
        lifespan_context=app.AppState(no_codex, startup, elicit.StateSigner(bytes(32))), session=None
    )
    params = types.CallToolRequestParams(name="codex_setup", arguments={})
    result = await app._call_tool(cast(Any, context), params)  # pyright: ignore[reportPrivateUsage]
    assert isinstance(result, types.CallToolResult)
    assert result.is_error
    assert result.structured_content == {
        "error": {"code": "INTERNAL", "message": "codex_setup failed unexpectedly; see the server log"}
    }
