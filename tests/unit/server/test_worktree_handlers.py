"""`advanced.worktree` through the handlers, on a fake backend and real git repositories in tmp_path:
the session's thread runs in its worktree, each finished turn's result carries the change summary,
replies stay there, forks get their own, and finishing or cleaning never loses unmerged work unless
forced. Outputs are checked against the published schemas, as a client reads them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.hosts import Host
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.settings import Settings
from tests.harness.fake_backend import FakeBackend, open_on_fake
from tests.harness.tool_calls import call_tool
from tests.unit.test_worktrees import exists, isolated_git, repo, run_git

pytestmark = pytest.mark.anyio

__all__ = ["isolated_git", "repo"]  # fixtures, used by name

Json = dict[str, Any]


@pytest.fixture
async def on_fake(tmp_path: Path) -> AsyncGenerator[tuple[SessionManager, FakeBackend]]:
    settings = Settings.from_env(
        {"CODEX_MCP_DRAIN_TIMEOUT_MS": "1", "CODEX_MCP_STATE_DIR": str(tmp_path / "state")}
    )
    async with open_on_fake(settings) as opened:
        yield opened


_tool = call_tool


async def _refused(manager: SessionManager, name: str, arguments: Json) -> CodexMcpError:
    with pytest.raises(CodexMcpError) as caught:
        await _tool(manager, name, arguments)
    return caught.value


def _start(cwd: Path, worktree: bool | str = True) -> Json:
    return {
        "prompt": "edit",
        "cwd": str(cwd),
        "approvalPolicy": "never",
        "sandbox": "workspace-write",
        "advanced": {"worktree": worktree},
    }


async def _finish_turn(manager: SessionManager, fake: FakeBackend, session_id: str) -> Json:
    """Codex ends the running turn; the poll that reads its result."""
    session = await manager.get(session_id)
    fake.complete_turn(session, "done")
    return await _tool(manager, "codex_check", {"action": "poll", "sessionId": session_id, "maxEvents": 100})


async def test_a_worktree_session_runs_there_and_its_result_lists_its_changes(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path, tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _tool(manager, "codex", _start(repo / "sub"))
    session_id = started["sessionId"]
    path = tmp_path / "state" / "worktrees" / session_id
    assert started["worktree"] == {
        "path": str(path),
        "branch": f"codex-mcp/{session_id}",
        "baseCommit": run_git(repo, "rev-parse", "HEAD").strip(),
        "removed": False,
    }
    assert fake.started[0].cwd == str(path / "sub")
    (path / "shared.txt").write_text("one\nTWO\nthree\nfour\n", encoding="utf-8")
    (path / "sub" / "new.txt").write_text("n\n", encoding="utf-8")
    polled = await _finish_turn(manager, fake, session_id)
    changes = polled["result"]["changes"]
    assert changes["clean"] is False
    assert changes["files"] == [
        {"path": "shared.txt", "status": "modified", "linesAdded": 2, "linesDeleted": 1},
        {"path": "sub/new.txt", "status": "added", "linesAdded": 1, "linesDeleted": 0},
    ]
    assert any(e["data"].get("method") == "codex-mcp/worktree_changes" for e in polled["events"])
    assert run_git(repo, "status", "--porcelain") == ""
    got = await _tool(manager, "codex_session", {"action": "get", "sessionId": session_id})
    assert got["worktree"]["branch"] == f"codex-mcp/{session_id}"
    assert "path" not in got["worktree"]


async def test_a_named_branch_is_used_and_a_taken_one_refused(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path
) -> None:
    manager, _ = on_fake
    started = await _tool(manager, "codex", _start(repo, "feature/one"))
    assert started["worktree"]["branch"] == "feature/one"
    refused = await _refused(manager, "codex", _start(repo, "feature/one"))
    assert (refused.code, refused.field) == ("INVALID_ARGUMENT", "advanced.worktree")
    assert "already exists" in refused.message


async def test_a_worktree_outside_a_repository_or_on_remote_hosts_is_refused_naming_the_field(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    plain = tmp_path / "plain"
    plain.mkdir()
    refused = await _refused(manager, "codex", _start(plain))
    assert (refused.code, refused.field) == ("INVALID_ARGUMENT", "advanced.worktree")
    assert "not inside a git repository" in refused.message
    with pytest.raises(CodexMcpError) as caught:
        await _tool(manager, "codex", _start(plain), hosts=(Host("h1", "ws://127.0.0.1:1"),))
    assert caught.value.field == "advanced.worktree"
    assert fake.threads == []


async def test_a_reply_stays_in_the_worktree_and_a_cwd_outside_it_is_refused(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path
) -> None:
    manager, fake = on_fake
    started = await _tool(manager, "codex", _start(repo))
    session_id = started["sessionId"]
    await _finish_turn(manager, fake, session_id)
    refused = await _refused(
        manager, "codex_reply", {"sessionId": session_id, "prompt": "p", "cwd": str(repo)}
    )
    assert (refused.code, refused.field) == ("INVALID_ARGUMENT", "cwd")
    await _tool(manager, "codex_reply", {"sessionId": session_id, "prompt": "again"})
    session = await manager.get(session_id)
    assert session.settings.cwd == started["worktree"]["path"]
    (Path(session.settings.cwd) / "later.txt").write_text("l\n", encoding="utf-8")
    polled = await _finish_turn(manager, fake, session_id)
    assert [f["path"] for f in polled["result"]["changes"]["files"]] == ["later.txt"]


async def test_a_fork_gets_its_own_worktree_from_the_parents_files(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path
) -> None:
    manager, fake = on_fake
    started = await _tool(manager, "codex", _start(repo))
    parent = Path(started["worktree"]["path"])
    (parent / "shared.txt").write_text("parent\n", encoding="utf-8")
    await _finish_turn(manager, fake, started["sessionId"])
    forked = await _tool(manager, "codex_session", {"action": "fork", "sessionId": started["sessionId"]})
    fork = await manager.get(forked["sessionId"])
    assert fork.settings.worktree is not None
    child = Path(fork.settings.worktree.path)
    assert child != parent
    assert fork.settings.cwd == str(child)
    assert fork.settings.worktree.branch == f"codex-mcp/{forked['sessionId']}"
    assert (child / "shared.txt").read_text(encoding="utf-8") == "parent\n"
    await _tool(manager, "codex_reply", {"sessionId": forked["sessionId"], "prompt": "go"})
    (child / "shared.txt").write_text("fork\n", encoding="utf-8")
    polled = await _finish_turn(manager, fake, forked["sessionId"])
    assert polled["result"]["changes"]["files"][0]["path"] == "shared.txt"
    assert (parent / "shared.txt").read_text(encoding="utf-8") == "parent\n"


async def test_remove_is_refused_naming_force_then_keep_keeps_the_branch_and_ends_replies(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path
) -> None:
    manager, fake = on_fake
    started = await _tool(manager, "codex", _start(repo))
    session_id, branch = started["sessionId"], started["worktree"]["branch"]
    (Path(started["worktree"]["path"]) / "work.txt").write_text("w\n", encoding="utf-8")
    await _finish_turn(manager, fake, session_id)
    patch = await _tool(manager, "codex_session", {"action": "worktree_patch", "sessionId": session_id})
    assert "+w" in patch["patch"]
    assert patch["changes"]["files"][0]["path"] == "work.txt"
    refused = await _refused(manager, "codex_session", {"action": "worktree_remove", "sessionId": session_id})
    assert (refused.code, refused.field) == ("INVALID_ARGUMENT", "force")
    assert "force: true" in refused.message
    assert "1 uncommitted file" in refused.message
    kept = await _tool(manager, "codex_session", {"action": "worktree_keep", "sessionId": session_id})
    assert kept["worktree"]["removed"] is True
    assert kept["worktree"]["changesCommitted"] == kept["worktree"]["headCommit"]
    assert not exists(started["worktree"]["path"])
    assert run_git(repo, "show", f"{branch}:work.txt") == "w\n"
    refused = await _refused(manager, "codex_reply", {"sessionId": session_id, "prompt": "p"})
    assert (refused.code, refused.field) == ("INVALID_ARGUMENT", "sessionId")
    # The kept branch has a commit merged nowhere: deleting it needs force too.
    refused = await _refused(manager, "codex_session", {"action": "worktree_remove", "sessionId": session_id})
    assert "1 commit on no other branch" in refused.message
    arguments = {"action": "worktree_remove", "sessionId": session_id, "force": True}
    removed = await _tool(manager, "codex_session", arguments)
    assert removed["worktree"]["branchDeleted"] is True
    assert run_git(repo, "branch", "--list", branch) == ""


async def test_remove_of_an_untouched_worktree_needs_no_force_and_a_plain_session_has_none(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path, tmp_path: Path
) -> None:
    manager, fake = on_fake
    started = await _tool(manager, "codex", _start(repo))
    await _finish_turn(manager, fake, started["sessionId"])
    arguments = {"action": "worktree_remove", "sessionId": started["sessionId"]}
    removed = await _tool(manager, "codex_session", arguments)
    assert removed["worktree"] == {**started["worktree"], "removed": True, "branchDeleted": True} | {
        "headCommit": started["worktree"]["baseCommit"]
    }
    plain = await _tool(manager, "codex", {**_start(tmp_path), "advanced": {}})
    refused = await _refused(
        manager, "codex_session", {"action": "worktree_patch", "sessionId": plain["sessionId"]}
    )
    assert (refused.code, refused.field) == ("INVALID_ARGUMENT", "sessionId")


async def test_finishing_a_running_session_is_refused_as_busy(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path
) -> None:
    manager, _ = on_fake
    started = await _tool(manager, "codex", _start(repo))
    refused = await _refused(
        manager, "codex_session", {"action": "worktree_keep", "sessionId": started["sessionId"]}
    )
    assert refused.code == "SESSION_BUSY"


async def test_clean_lists_the_worktrees_it_would_remove_then_removes_them_keeping_work(
    on_fake: tuple[SessionManager, FakeBackend], repo: Path
) -> None:
    manager, fake = on_fake
    busy = await _tool(manager, "codex", _start(repo))
    idle = await _tool(manager, "codex", _start(repo))
    (Path(busy["worktree"]["path"]) / "a.txt").write_text("a\n", encoding="utf-8")
    for started in (busy, idle):
        await _finish_turn(manager, fake, started["sessionId"])
    arguments = {"action": "clean", "statuses": ["idle"], "dryRun": True}
    planned = await _tool(manager, "codex_session", arguments)
    by_id = {entry["sessionId"]: entry for entry in planned["worktrees"]}
    assert by_id[busy["sessionId"]] == {
        "sessionId": busy["sessionId"],
        "path": busy["worktree"]["path"],
        "branch": busy["worktree"]["branch"],
        "commitsChanges": True,
        "keepsBranch": True,
    }
    assert by_id[idle["sessionId"]]["keepsBranch"] is False
    assert exists(busy["worktree"]["path"])
    cleaned = await _tool(manager, "codex_session", {"action": "clean", "statuses": ["idle"]})
    assert cleaned["worktrees"] == planned["worktrees"]
    assert not exists(busy["worktree"]["path"])
    assert not exists(idle["worktree"]["path"])
    assert run_git(repo, "show", f"{busy['worktree']['branch']}:a.txt") == "a\n"
    assert run_git(repo, "branch", "--list", idle["worktree"]["branch"]) == ""
