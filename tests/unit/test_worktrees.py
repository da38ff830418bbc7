"""The git side of `advanced.worktree` on real repositories in tmp_path: creating, forking,
summarising, patching, keeping and removing worktrees. Git runs with an isolated HOME and no
system config, so nothing of this machine's git setup counts."""

from __future__ import annotations

import os
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from codex_mcp import worktrees
from codex_mcp.worktrees import Worktree, WorktreeError

pytestmark = pytest.mark.anyio

IDENTITY = ("-c", "user.name=Test", "-c", "user.email=test@example.com")


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.delenv(name, raising=False)


def run_git(cwd: Path, *args: str) -> str:
    """git in `cwd` as a test sets a repository up (with an identity for its commits)."""
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    return done.stdout


def exists(path: str) -> bool:
    """Whether `path` exists (a check too quick to hand to a thread)."""
    return Path(path).exists()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit: shared.txt (3 lines), sub/keep.txt, and an ignored build/."""
    path = tmp_path / "repo"
    (path / "sub").mkdir(parents=True)
    run_git(path, "init", "--quiet", "--initial-branch=main")
    (path / "shared.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (path / "sub" / "keep.txt").write_text("keep\n", encoding="utf-8")
    (path / ".gitignore").write_text("build/\n", encoding="utf-8")
    run_git(path, "add", "-A")
    run_git(path, "commit", "--quiet", "-m", "base")
    return path


def numstat(worktree: Worktree) -> dict[str, tuple[int, int]]:
    """`git diff --numstat` of everything in the worktree against its base, as a reviewer runs it."""
    path = Path(worktree.path)
    run_git(path, "add", "-A")
    out = run_git(path, "diff", "--cached", "--numstat", worktree.base_commit)
    run_git(path, "reset", "--quiet")
    counts: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        added, deleted, name = line.split("\t")
        counts[name] = (int(added), int(deleted))
    return counts


async def test_a_worktree_is_made_on_a_new_branch_from_head_and_the_checkout_is_untouched(
    repo: Path, tmp_path: Path
) -> None:
    head = run_git(repo, "rev-parse", "HEAD").strip()
    worktree, cwd = await worktrees.create(str(repo / "sub"), tmp_path / "wts", "sess_1", None)
    assert worktree.path == str(tmp_path / "wts" / "sess_1")
    assert cwd == str(tmp_path / "wts" / "sess_1" / "sub")
    assert worktree.branch == "codex-mcp/sess_1"
    assert worktree.base_commit == head
    assert run_git(Path(worktree.path), "branch", "--show-current").strip() == "codex-mcp/sess_1"
    (Path(cwd) / "keep.txt").write_text("changed\n", encoding="utf-8")
    assert run_git(repo, "status", "--porcelain") == ""


async def test_create_refuses_outside_a_repository_without_commits_and_a_taken_or_bad_branch(
    repo: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(WorktreeError, match="not inside a git repository"):
        await worktrees.create(str(plain), tmp_path / "wts", "sess_1", None)
    empty = tmp_path / "empty"
    empty.mkdir()
    run_git(empty, "init", "--quiet")
    with pytest.raises(WorktreeError, match="no commit yet"):
        await worktrees.create(str(empty), tmp_path / "wts", "sess_1", None)
    with pytest.raises(WorktreeError, match="already exists"):
        await worktrees.create(str(repo), tmp_path / "wts", "sess_1", "main")
    with pytest.raises(WorktreeError, match="not a valid branch name"):
        await worktrees.create(str(repo), tmp_path / "wts", "sess_1", "bad..name")


async def test_the_summary_lists_added_modified_deleted_renamed_and_untracked_files_with_line_counts(
    repo: Path, tmp_path: Path
) -> None:
    worktree, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", "feature/x")
    path = Path(worktree.path)
    (path / "shared.txt").write_text("one\n2\nthree\nfour\n", encoding="utf-8")
    (path / "new.txt").write_text("a\nb\n", encoding="utf-8")  # untracked
    (path / "sub" / "keep.txt").unlink()
    (path / "build").mkdir()
    (path / "build" / "out.bin").write_text("ignored\n", encoding="utf-8")
    (path / "blob.bin").write_bytes(b"\0\1\2")
    summary = await worktrees.changes(worktree)
    assert summary["branch"] == "feature/x"
    assert summary["baseCommit"] == worktree.base_commit
    assert summary["clean"] is False
    assert summary["commitsAhead"] == 0
    files = {entry["path"]: entry for entry in summary["files"]}
    assert files == {
        "blob.bin": {"path": "blob.bin", "status": "added", "binary": True},
        "new.txt": {"path": "new.txt", "status": "added", "linesAdded": 2, "linesDeleted": 0},
        "shared.txt": {"path": "shared.txt", "status": "modified", "linesAdded": 2, "linesDeleted": 1},
        "sub/keep.txt": {"path": "sub/keep.txt", "status": "deleted", "linesAdded": 0, "linesDeleted": 1},
    }
    assert (summary["filesChanged"], summary["linesAdded"], summary["linesDeleted"]) == (4, 4, 2)
    # A read leaves the worktree's own index alone.
    assert "?? new.txt" in run_git(path, "status", "--porcelain")


async def test_a_rename_and_committed_work_count_and_the_summary_matches_git_numstat(
    repo: Path, tmp_path: Path
) -> None:
    worktree, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", None)
    path = Path(worktree.path)
    run_git(path, "mv", "shared.txt", "moved.txt")
    run_git(path, "commit", "--quiet", "-m", "move")
    (path / "more.txt").write_text("x\n", encoding="utf-8")
    summary = await worktrees.changes(worktree)
    files = {entry["path"]: entry for entry in summary["files"]}
    assert files["moved.txt"]["status"] == "renamed"
    assert files["moved.txt"]["oldPath"] == "shared.txt"
    assert summary["commitsAhead"] == 1
    assert summary["headCommit"] == run_git(path, "rev-parse", "HEAD").strip()
    assert {name: (e["linesAdded"], e["linesDeleted"]) for name, e in files.items()} == {
        "more.txt": (1, 0),
        "moved.txt": (0, 0),
    }
    assert numstat(worktree)["more.txt"] == (1, 0)


async def test_a_clean_worktree_says_so_and_its_patch_is_empty(repo: Path, tmp_path: Path) -> None:
    worktree, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", None)
    summary = await worktrees.changes(worktree)
    assert summary["clean"] is True
    assert summary["files"] == []
    assert await worktrees.patch(worktree) == ""


async def test_the_patch_applies_to_the_base_and_gives_the_worktrees_files(
    repo: Path, tmp_path: Path
) -> None:
    worktree, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", None)
    path = Path(worktree.path)
    (path / "shared.txt").write_text("one\nTWO\nthree\n", encoding="utf-8")
    (path / "added.txt").write_text("new\n", encoding="utf-8")
    text = await worktrees.patch(worktree)
    assert "+TWO" in text
    assert "added.txt" in text
    (tmp_path / "p.diff").write_text(text, encoding="utf-8")
    run_git(repo, "apply", str(tmp_path / "p.diff"))
    assert (repo / "added.txt").read_text(encoding="utf-8") == "new\n"
    assert (repo / "shared.txt").read_text(encoding="utf-8") == "one\nTWO\nthree\n"


async def test_a_fork_starts_from_the_parents_files_on_its_own_branch(repo: Path, tmp_path: Path) -> None:
    parent, parent_cwd = await worktrees.create(str(repo / "sub"), tmp_path / "wts", "sess_1", None)
    ppath = Path(parent.path)
    (ppath / "shared.txt").write_text("parent\n", encoding="utf-8")
    (ppath / "untracked.txt").write_text("u\n", encoding="utf-8")
    run_git(ppath, "rm", "--quiet", "sub/keep.txt")
    fork, fork_cwd = await worktrees.fork(parent, parent_cwd, tmp_path / "wts", "sess_2")
    fpath = Path(fork.path)
    assert fork.branch == "codex-mcp/sess_2"
    assert fork.base_commit == parent.base_commit
    assert fork_cwd == str(fpath / "sub")
    assert (fpath / "shared.txt").read_text(encoding="utf-8") == "parent\n"
    assert (fpath / "untracked.txt").read_text(encoding="utf-8") == "u\n"
    assert not (fpath / "sub" / "keep.txt").exists()
    # The parent's changes are the fork's uncommitted changes; the parent is as it was.
    assert run_git(fpath, "rev-parse", "HEAD") == run_git(ppath, "rev-parse", "HEAD")
    assert (await worktrees.changes(fork))["files"] == (await worktrees.changes(parent))["files"]
    (fpath / "shared.txt").write_text("fork\n", encoding="utf-8")
    assert (ppath / "shared.txt").read_text(encoding="utf-8") == "parent\n"


async def test_keep_commits_what_is_uncommitted_removes_the_directory_and_keeps_the_branch(
    repo: Path, tmp_path: Path
) -> None:
    worktree, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", None)
    (Path(worktree.path) / "work.txt").write_text("work\n", encoding="utf-8")
    kept = await worktrees.keep(worktree, "codex-mcp: session sess_1")
    assert kept.committed is not None
    assert kept.worktree.removed
    assert not exists(worktree.path)
    assert run_git(repo, "show", f"{worktree.branch}:work.txt") == "work\n"
    # With no identity configured, the commit is codex-mcp's.
    assert run_git(repo, "log", "-1", "--format=%an", worktree.branch).strip() == "codex-mcp"
    assert "sess_1" not in run_git(repo, "worktree", "list")
    # The branch's work is still there for the patch and the summary.
    assert "+work" in await worktrees.patch(kept.worktree)


async def test_losses_count_uncommitted_files_and_commits_merged_nowhere(repo: Path, tmp_path: Path) -> None:
    worktree, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", None)
    path = Path(worktree.path)
    assert not await worktrees.losses(worktree)
    (path / "a.txt").write_text("a\n", encoding="utf-8")
    (path / "shared.txt").write_text("x\n", encoding="utf-8")
    lost = await worktrees.losses(worktree)
    assert (lost.uncommitted_files, lost.unmerged) == (2, 0)
    run_git(path, "add", "-A")
    run_git(path, "commit", "--quiet", "-m", "work")
    lost = await worktrees.losses(worktree)
    assert (lost.uncommitted_files, lost.unmerged) == (0, 1)
    assert "1 commit on no other branch" in lost.describe(worktree)
    # Merged into main (or tagged, or on any other branch): nothing is lost any more.
    run_git(repo, "merge", "--quiet", "--ff-only", worktree.branch)
    assert not await worktrees.losses(worktree)


async def test_remove_deletes_the_directory_and_the_branch(repo: Path, tmp_path: Path) -> None:
    worktree, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", None)
    (Path(worktree.path) / "a.txt").write_text("a\n", encoding="utf-8")
    done = await worktrees.remove(worktree)
    assert done.worktree.removed
    assert done.worktree.branch_deleted
    assert not exists(worktree.path)
    assert run_git(repo, "branch", "--list", worktree.branch) == ""
    with pytest.raises(WorktreeError, match="no patch"):
        await worktrees.patch(done.worktree)


async def test_clean_up_keeps_a_branch_with_work_and_deletes_an_empty_one(repo: Path, tmp_path: Path) -> None:
    busy, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_1", None)
    idle, _ = await worktrees.create(str(repo), tmp_path / "wts", "sess_2", None)
    (Path(busy.path) / "a.txt").write_text("a\n", encoding="utf-8")
    planned = await worktrees.plan_clean(busy)
    assert (planned.commits_changes, planned.keeps_branch) == (True, True)
    assert (await worktrees.plan_clean(idle)).keeps_branch is False
    done = await worktrees.clean_up(busy, "codex-mcp: session sess_1")
    assert (done.commits_changes, done.keeps_branch) == (True, True)
    assert run_git(repo, "show", f"{busy.branch}:a.txt") == "a\n"
    done = await worktrees.clean_up(idle, "codex-mcp: session sess_2")
    assert (done.commits_changes, done.keeps_branch) == (False, False)
    assert run_git(repo, "branch", "--list", idle.branch) == ""
    assert not exists(busy.path)
    assert not exists(idle.path)


def test_a_worktree_round_trips_through_its_saved_form() -> None:
    worktree = Worktree("/w/p", "codex-mcp/s", "abc", "/r/.git", removed=True)
    assert Worktree.from_json(asdict(worktree)) == worktree
    assert Worktree.from_json({"path": 1}) is None
    assert Worktree.from_json("x") is None
