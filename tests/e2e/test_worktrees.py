"""`advanced.worktree` end to end: three real Codex sessions on one repository, each in its own
worktree, each editing the same file through the mock model's patch (`scenario:edit_shared`).

The main checkout stays untouched, each branch holds its own change, each turn's `changes` lists
exactly its files and line counts (as `git diff --numstat` counts them), and removing a worktree
with unmerged work is refused until `force` is given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.e2e.client import codex_args, running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import SHARED_FILE, SHARED_LINE

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

TAGS = ("alpha", "beta", "gamma")


def _git(env: dict[str, str], cwd: Path | str, *args: str) -> str:
    """git as the test runs it: Codex's isolated HOME, no system config, a test identity."""
    identity = ("-c", "user.name=Test", "-c", "user.email=test@example.com")
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def _exists(path: str) -> bool:
    return Path(path).exists()


def _numstat(env: dict[str, str], worktree: str, base: str) -> dict[str, tuple[int, int]]:
    """`git diff --numstat` of the worktree (untracked files included) against `base`."""
    index = {**env, "GIT_INDEX_FILE": str(Path(worktree) / ".." / f"{Path(worktree).name}.index")}
    _git(index, worktree, "read-tree", "HEAD")
    _git(index, worktree, "add", "-A")
    counts: dict[str, tuple[int, int]] = {}
    for line in _git(index, worktree, "diff", "--cached", "--numstat", base).splitlines():
        added, deleted, name = line.split("\t")
        counts[name] = (int(added), int(deleted))
    return counts


async def test_three_sessions_in_worktrees_edit_one_file_apart_and_unmerged_work_needs_force(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    env = {**codex_env.env(), "PATH": os.environ["PATH"]}
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(env, repo, "init", "--quiet", "--initial-branch=main")
    (repo / SHARED_FILE).write_text(f"{SHARED_LINE}\n", encoding="utf-8")
    _git(env, repo, "add", "-A")
    _git(env, repo, "commit", "--quiet", "-m", "base")
    base = _git(env, repo, "rev-parse", "HEAD").strip()

    async with running_server(codex_env) as mcp:
        started = [
            await mcp.call(
                "codex",
                codex_args(f"scenario:edit_shared tag:{tag}", cwd=str(repo), advanced={"worktree": True}),
            )
            for tag in TAGS
        ]
        results: dict[str, dict[str, Any]] = {}

        async def finish(session_id: str) -> None:
            poll, _ = await mcp.run_to_end(session_id)
            results[session_id] = poll

        async with anyio.create_task_group() as group:
            for out in started:
                group.start_soon(finish, out["sessionId"])

        for tag, out in zip(TAGS, started, strict=True):
            worktree = out["worktree"]
            assert worktree["baseCommit"] == base
            poll = results[out["sessionId"]]
            assert poll["status"] == "idle", poll
            changes: dict[str, Any] = poll["result"]["changes"]
            assert changes["branch"] == worktree["branch"] == f"codex-mcp/{out['sessionId']}"
            assert changes["baseCommit"] == base
            assert changes["clean"] is False
            files: list[dict[str, Any]] = changes["files"]
            listed = {f["path"]: (f["linesAdded"], f["linesDeleted"]) for f in files}
            assert listed == {SHARED_FILE: (1, 1), f"notes-{tag}.txt": (2, 0)}
            assert listed == _numstat(env, worktree["path"], base)
            statuses = {f["path"]: f["status"] for f in files}
            assert statuses == {SHARED_FILE: "modified", f"notes-{tag}.txt": "added"}
            shared = Path(worktree["path"]) / SHARED_FILE
            assert shared.read_text(encoding="utf-8") == f"edited by {tag}\n"
            # The patch is also a resource, and a digest lists the worktree's files with their counts.
            session_id = out["sessionId"]
            patched = await mcp.call("codex_session", {"action": "worktree_patch", "sessionId": session_id})
            patch_uri = f"codex-mcp:///sessions/{session_id}/patch"
            (content,) = (await mcp.session.read_resource(patch_uri)).contents
            assert isinstance(content, types.TextResourceContents)
            assert (content.mime_type, content.text) == ("text/x-diff", patched["patch"])
            digested = await mcp.call(
                "codex_check", {"action": "poll", "sessionId": session_id, "responseMode": "digest"}
            )
            digest = digested["digest"]
            assert digest["patchRecord"] == patch_uri
            assert {f["path"]: (f["linesAdded"], f["linesDeleted"]) for f in digest["files"]} == listed

        # The main checkout is as it was.
        assert _git(env, repo, "status", "--porcelain") == ""
        assert (repo / SHARED_FILE).read_text(encoding="utf-8") == f"{SHARED_LINE}\n"

        first, second, third = started
        # Uncommitted work: removing is refused, naming the flag.
        refused = await mcp.error(
            "codex_session", {"action": "worktree_remove", "sessionId": first["sessionId"]}
        )
        assert (refused.code, refused.field) == ("INVALID_ARGUMENT", "force")
        assert "force: true" in refused.message
        for out in (first, second):
            kept = await mcp.call("codex_session", {"action": "worktree_keep", "sessionId": out["sessionId"]})
            assert kept["worktree"]["removed"] is True
        # Each branch holds its own change.
        for tag, out in zip(TAGS[:2], (first, second), strict=True):
            branch = out["worktree"]["branch"]
            assert _git(env, repo, "show", f"{branch}:{SHARED_FILE}") == f"edited by {tag}\n"
            assert not _exists(out["worktree"]["path"])
        # A kept branch's commit is merged nowhere: deleting it is refused too, then forced.
        refused = await mcp.error(
            "codex_session", {"action": "worktree_remove", "sessionId": first["sessionId"]}
        )
        assert refused.field == "force"
        assert "on no other branch" in refused.message
        arguments = {"action": "worktree_remove", "sessionId": third["sessionId"], "force": True}
        removed = await mcp.call("codex_session", arguments)
        assert removed["worktree"]["branchDeleted"] is True
        assert _git(env, repo, "branch", "--list", third["worktree"]["branch"]) == ""
        assert _git(env, repo, "status", "--porcelain") == ""
