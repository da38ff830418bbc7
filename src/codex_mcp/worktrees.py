"""Git worktrees for sessions (`advanced.worktree`): each session edits its own checkout, on its own
branch, and the caller gets back what changed.

    create    a new worktree of `cwd`'s repository at `<state dir>/worktrees/<session id>`, on a new
              branch (`codex-mcp/<session id>` unless named) from the checkout's current HEAD
    fork      a worktree for a fork: a new branch at the parent's HEAD, its files the parent's as
              they are now (uncommitted changes included, as uncommitted changes)
    changes   the change summary of a finished turn: every file added, modified, deleted or renamed
              since the base commit, committed or not (untracked files included), with line counts
    patch     the same changes as one patch (`git diff --binary`)
    keep      commit what is uncommitted to the branch, remove the worktree, keep the branch
    remove    remove the worktree and the branch; refused when that loses work, unless forced

The state of a tree, uncommitted and untracked files included, is read through a temporary index
(`GIT_INDEX_FILE`): the worktree's own index and files are never touched by a read. A branch is
"merged" when no commit of it is missing from every other branch, tag and remote-tracking branch
(commits up to the base commit never count). Every git command runs with a timeout, without
the `GIT_DIR`-style variables of our own environment, and without a terminal prompt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any, Final, cast

import anyio
import anyio.to_thread

# Bound on one git command; a whole summary is bounded by `CHANGES_TIMEOUT_S`.
GIT_TIMEOUT_S: Final = 30.0
CHANGES_TIMEOUT_S: Final = 30.0
BRANCH_PREFIX: Final = "codex-mcp/"
# A summary lists at most this many files (`truncated` says when there were more).
MAX_LISTED_FILES: Final = 500
# Variables that would point git at another repository or index than the one we name.
_LOCATION_VARIABLES: Final = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
# The identity of the commits `keep` makes when git has none configured.
_FALLBACK_IDENTITY: Final = {
    "GIT_AUTHOR_NAME": "codex-mcp",
    "GIT_AUTHOR_EMAIL": "codex-mcp@localhost",
    "GIT_COMMITTER_NAME": "codex-mcp",
    "GIT_COMMITTER_EMAIL": "codex-mcp@localhost",
}
_STATUS_NAMES: Final = {
    "A": "added",
    "M": "modified",
    "D": "deleted",
    "R": "renamed",
    "C": "added",
    "T": "modified",
}


class WorktreeError(Exception):
    """A git command failed or timed out (`timed_out`), or the repository cannot have a worktree;
    says why."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Worktree:
    """A session's worktree, as its settings keep it (and the state directory, across restarts)."""

    path: str
    branch: str
    base_commit: str
    # The repository's common git directory: where branch and worktree commands run.
    git_dir: str
    # The worktree directory was removed (`keep`, `remove`, `clean`); the branch may remain.
    removed: bool = False
    branch_deleted: bool = False

    @classmethod
    def from_json(cls, value: object) -> Worktree | None:
        """The worktree `dataclasses.asdict` wrote, or None when `value` is not one."""
        if not isinstance(value, dict):
            return None
        entry = cast(dict[str, Any], value)
        texts = [entry.get(key) for key in ("path", "branch", "base_commit", "git_dir")]
        if not all(isinstance(text, str) for text in texts):
            return None
        path, branch, base, git_dir = cast(list[str], texts)
        return cls(
            path, branch, base, git_dir, entry.get("removed") is True, entry.get("branch_deleted") is True
        )


@dataclass(frozen=True)
class Snapshot:
    """A worktree's files as a tree object, and what its HEAD is."""

    tree: str
    head: str
    head_tree: str

    @property
    def clean(self) -> bool:
        """Nothing uncommitted (untracked files count as uncommitted)."""
        return self.tree == self.head_tree


# --- running git -----------------------------------------------------------------------


def _git_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARIABLES}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env.update(extra or {})
    return env


async def git(
    args: Sequence[str], cwd: str, *, env: Mapping[str, str] | None = None, timeout_s: float = GIT_TIMEOUT_S
) -> str:
    """git's standard output for `args` run in `cwd`.

    Raises:
        WorktreeError: git could not run, failed (its message), or took longer than `timeout_s`.
    """
    try:
        with anyio.fail_after(timeout_s):
            done = await anyio.run_process(
                ["git", *args], cwd=cwd, env=_git_env(env), check=False, stdin=subprocess.DEVNULL
            )
    except TimeoutError:
        raise WorktreeError(f"git {args[0]} took longer than {timeout_s:.0f}s", timed_out=True) from None
    except OSError as exc:
        raise WorktreeError(f"git could not run: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = "; ".join(line for line in lines[-3:] if line.strip()) or f"exit code {done.returncode}"
        raise WorktreeError(f"git {args[0]} failed: {why}")
    return done.stdout.decode("utf-8", "replace")


_locks: dict[str, anyio.Lock] = {}


@asynccontextmanager
async def _repository_lock(git_dir: str) -> AsyncGenerator[None]:
    """One change at a time to a repository's worktrees and branches (git's own locks refuse a
    second writer of the same file rather than wait)."""
    lock = _locks.setdefault(git_dir, anyio.Lock())
    async with lock:
        yield


# --- creating ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    """Where `cwd` sits in its repository."""

    top: str
    git_dir: str
    # `cwd` relative to `top` ('' at the top).
    prefix: str


async def checkout_of(cwd: str) -> Checkout:
    """The repository checkout holding `cwd`.

    Raises:
        WorktreeError: `cwd` is not inside a git work tree.
    """
    try:
        out = await git(["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir"], cwd)
        prefix = (await git(["rev-parse", "--show-prefix"], cwd)).strip()
    except WorktreeError as exc:
        raise WorktreeError(f"{cwd} is not inside a git repository's work tree ({exc})") from None
    top, git_dir = out.splitlines()[:2]
    return Checkout(top, git_dir, prefix.rstrip("/"))


async def _head(cwd: str) -> str:
    try:
        return (await git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd)).strip()
    except WorktreeError:
        raise WorktreeError("the repository has no commit yet: a worktree starts from HEAD") from None


async def _check_new_branch(git_dir: str, branch: str) -> None:
    try:
        await git(["check-ref-format", "--branch", branch], git_dir)
    except WorktreeError:
        raise WorktreeError(f"{branch!r} is not a valid branch name") from None
    if await _branch_exists(git_dir, branch):
        raise WorktreeError(f"branch {branch!r} already exists: name a new one")


async def _branch_exists(git_dir: str, branch: str) -> bool:
    try:
        await git(["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"], git_dir)
    except WorktreeError:
        return False
    return True


async def _session_cwd(path: Path, prefix: str) -> str:
    """The directory of the worktree that stands for the caller's `cwd` (made if git has none)."""
    cwd = path / prefix if prefix else path
    await anyio.Path(cwd).mkdir(parents=True, exist_ok=True)
    return str(cwd)


async def create(cwd: str, root: Path, session_id: str, branch: str | None) -> tuple[Worktree, str]:
    """A new worktree of `cwd`'s repository at `root/<session_id>` on a new branch (`branch`, or
    `codex-mcp/<session_id>`) from the checkout's HEAD; and the session's cwd in it.

    Raises:
        WorktreeError: no repository, no commit, a bad or taken branch name, or git failed.
    """
    checkout = await checkout_of(cwd)
    base = await _head(checkout.top)
    name = branch or BRANCH_PREFIX + session_id
    path = root / session_id
    async with _repository_lock(checkout.git_dir):
        await _check_new_branch(checkout.git_dir, name)
        await anyio.Path(root).mkdir(parents=True, exist_ok=True)
        await git(["worktree", "add", "--quiet", "-b", name, str(path), base], checkout.git_dir)
    worktree = Worktree(str(path), name, base, checkout.git_dir)
    return worktree, await _session_cwd(path, checkout.prefix)


async def fork(parent: Worktree, parent_cwd: str, root: Path, session_id: str) -> tuple[Worktree, str]:
    """A worktree for a fork of `parent`'s session: branch `codex-mcp/<session_id>` at the parent's
    HEAD, its files the parent's files as they are now (what the parent has not committed stays
    uncommitted here), the same base commit; and the fork's cwd in it (`parent_cwd`'s place).

    A parent whose worktree is gone forks from its branch.

    Raises:
        WorktreeError: git failed.
    """
    name = BRANCH_PREFIX + session_id
    path = root / session_id
    inside = PurePath(parent_cwd).is_relative_to(parent.path)
    prefix = str(PurePath(parent_cwd).relative_to(parent.path)) if inside else ""
    prefix = "" if prefix == "." else prefix
    async with _repository_lock(parent.git_dir):
        await _check_new_branch(parent.git_dir, name)
        await anyio.Path(root).mkdir(parents=True, exist_ok=True)
        if parent.removed:
            start = f"refs/heads/{parent.branch}"
            await git(["worktree", "add", "--quiet", "-b", name, str(path), start], parent.git_dir)
        else:
            state = await snapshot(parent)
            await git(["worktree", "add", "--quiet", "-b", name, str(path), state.head], parent.git_dir)
            # The parent's files, then the index back at HEAD: its changes stay changes here.
            await git(["read-tree", "-u", "--reset", state.tree], str(path))
            await git(["reset", "--quiet"], str(path))
    worktree = Worktree(str(path), name, parent.base_commit, parent.git_dir)
    return worktree, await _session_cwd(path, prefix)


# --- reading -----------------------------------------------------------------------------


async def snapshot(worktree: Worktree) -> Snapshot:
    """The worktree's files (tracked, changed and untracked; not ignored ones) as a tree object,
    written through a temporary copy of its index."""
    cwd = worktree.path
    head = (await git(["rev-parse", "HEAD"], cwd)).strip()
    head_tree = (await git(["rev-parse", "HEAD^{tree}"], cwd)).strip()
    index = Path((await git(["rev-parse", "--path-format=absolute", "--git-path", "index"], cwd)).strip())
    with tempfile.TemporaryDirectory(prefix="codex-mcp-index-") as scratch:
        temporary = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if await anyio.Path(index).is_file():
            # Its stat data spares hashing every unchanged file again.
            await anyio.to_thread.run_sync(shutil.copyfile, index, temporary["GIT_INDEX_FILE"])
        else:
            await git(["read-tree", "HEAD"], cwd, env=temporary)
        await git(["add", "--all", "--", "."], cwd, env=temporary)
        tree = (await git(["write-tree"], cwd, env=temporary)).strip()
    return Snapshot(tree, head, head_tree)


def _fields(raw: str) -> list[str]:
    parts = raw.split("\0")
    return parts[:-1] if parts and parts[-1] == "" else parts


def _parse_name_status(raw: str) -> list[tuple[str, str, str | None]]:
    """(status letter, path, old path of a rename) of `--name-status -z` output."""
    parts = _fields(raw)
    found: list[tuple[str, str, str | None]] = []
    index = 0
    while index < len(parts):
        letter = parts[index][:1]
        if letter in ("R", "C"):
            found.append((letter, parts[index + 2], parts[index + 1]))
            index += 3
        else:
            found.append((letter, parts[index + 1], None))
            index += 2
    return found


def _parse_numstat(raw: str) -> dict[str, tuple[int | None, int | None]]:
    """path -> (lines added, lines deleted), None for a binary file, of `--numstat -z` output."""
    parts = _fields(raw)
    counts: dict[str, tuple[int | None, int | None]] = {}
    index = 0
    while index < len(parts):
        added, deleted, path = parts[index].split("\t", 2)
        index += 1
        if path == "":  # a rename: old and new path follow
            path = parts[index + 1]
            index += 2
        counts[path] = (None if added == "-" else int(added), None if deleted == "-" else int(deleted))
    return counts


def _file_entry(
    letter: str, path: str, old: str | None, counts: tuple[int | None, int | None]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": path, "status": _STATUS_NAMES.get(letter, "modified")}
    if old is not None and letter == "R":
        entry["oldPath"] = old
    added, deleted = counts
    if added is None or deleted is None:
        entry["binary"] = True
    else:
        entry["linesAdded"], entry["linesDeleted"] = added, deleted
    return entry


async def changed_files(worktree: Worktree, tree: str) -> list[dict[str, Any]]:
    """Every file that differs between the base commit and `tree` (renames found), as the
    `WorktreeFile` entries of a summary, sorted by path."""
    args = ["diff-tree", "-r", "-M", "-z", "--no-commit-id", worktree.base_commit, tree]
    names = _parse_name_status(await git([*args[:-2], "--name-status", *args[-2:]], worktree.path))
    counts = _parse_numstat(await git([*args[:-2], "--numstat", *args[-2:]], worktree.path))
    files = [_file_entry(letter, path, old, counts.get(path, (0, 0))) for letter, path, old in names]
    return sorted(files, key=lambda entry: str(entry["path"]))


def identity(worktree: Worktree) -> dict[str, Any]:
    """What every summary of the worktree says of it: path, branch, base commit."""
    return {"path": worktree.path, "branch": worktree.branch, "baseCommit": worktree.base_commit}


async def changes(worktree: Worktree) -> dict[str, Any]:
    """The `WorktreeChanges` summary of `worktree` now (its published JSON): the files changed
    since the base commit with line counts and totals, the HEAD commit, commits ahead of the base,
    and whether nothing is uncommitted. A summary that could not be made says why in `error`."""
    summary = identity(worktree)
    if worktree.removed:
        summary["removed"] = True
        return summary
    try:
        with anyio.fail_after(CHANGES_TIMEOUT_S):
            state = await snapshot(worktree)
            files = await changed_files(worktree, state.tree)
            ahead = await git(["rev-list", "--count", f"{worktree.base_commit}..{state.head}"], worktree.path)
    except (WorktreeError, TimeoutError, OSError) as exc:
        summary["error"] = str(exc) or f"the summary took longer than {CHANGES_TIMEOUT_S:.0f}s"
        return summary
    summary.update(
        headCommit=state.head,
        commitsAhead=int(ahead.strip() or 0),
        clean=state.clean,
        filesChanged=len(files),
        linesAdded=sum(int(entry.get("linesAdded", 0)) for entry in files),
        linesDeleted=sum(int(entry.get("linesDeleted", 0)) for entry in files),
        files=files[:MAX_LISTED_FILES],
    )
    if len(files) > MAX_LISTED_FILES:
        summary["truncated"] = True
    return summary


async def patch(worktree: Worktree) -> str:
    """Everything that differs from the base commit (committed, uncommitted, untracked) as one
    patch `git apply` takes (binary files included)."""
    if worktree.branch_deleted:
        raise WorktreeError(f"the worktree and its branch {worktree.branch} were removed: there is no patch")
    if worktree.removed:
        tip = "refs/heads/" + worktree.branch
        args = ["diff-tree", "-p", "--binary", "-M", worktree.base_commit, tip]
        return await git(args, worktree.git_dir)
    state = await snapshot(worktree)
    return await git(["diff-tree", "-p", "--binary", "-M", worktree.base_commit, state.tree], worktree.path)


async def unmerged_commits(worktree: Worktree) -> int:
    """How many commits of the branch past the base are on no other branch, tag or remote."""
    if worktree.branch_deleted:
        return 0
    name = worktree.branch
    args = ["rev-list", "--count", f"refs/heads/{name}", f"^{worktree.base_commit}"]
    args += ["--not", f"--exclude={name}", "--branches", "--tags", "--remotes"]
    return int((await git(args, worktree.git_dir)).strip() or 0)


# --- finishing ---------------------------------------------------------------------------


async def _commit_identity(cwd: str) -> dict[str, str]:
    """git's own identity when it has one, else codex-mcp's."""
    try:
        await git(["var", "GIT_COMMITTER_IDENT"], cwd)
        await git(["var", "GIT_AUTHOR_IDENT"], cwd)
    except WorktreeError:
        return dict(_FALLBACK_IDENTITY)
    return {}


async def commit_uncommitted(worktree: Worktree, message: str) -> str | None:
    """Commit what the worktree has uncommitted (untracked files too) onto its branch, leaving its
    index and files alone; the new commit, or None when there was nothing to commit."""
    state = await snapshot(worktree)
    if state.clean:
        return None
    env = await _commit_identity(worktree.path)
    args = ["commit-tree", state.tree, "-p", state.head, "-m", message]
    commit = (await git(args, worktree.path, env=env)).strip()
    await git(["update-ref", f"refs/heads/{worktree.branch}", commit, state.head], worktree.path)
    return commit


@dataclass(frozen=True)
class Finished:
    """What `keep`, `remove` or `clean` did (or, planned, would do) to a session's worktree."""

    worktree: Worktree
    # The commit made of what was uncommitted (`keep`, `clean`).
    committed: str | None = None
    # The branch's tip (before it was deleted, when it was).
    head: str | None = None


async def _remove_directory(worktree: Worktree) -> None:
    if await anyio.Path(worktree.path).exists():
        await git(["worktree", "remove", "--force", worktree.path], worktree.git_dir)
    else:
        await git(["worktree", "prune"], worktree.git_dir)


async def _tip(worktree: Worktree) -> str | None:
    if worktree.branch_deleted:
        return None
    try:
        return (
            await git(["rev-parse", "--verify", "--quiet", f"refs/heads/{worktree.branch}"], worktree.git_dir)
        ).strip()
    except WorktreeError:
        return None


async def keep(worktree: Worktree, message: str) -> Finished:
    """Commit what is uncommitted onto the branch, remove the worktree directory, keep the branch."""
    async with _repository_lock(worktree.git_dir):
        committed = None if worktree.removed else await commit_uncommitted(worktree, message)
        if not worktree.removed:
            await _remove_directory(worktree)
        head = await _tip(worktree)
    return Finished(replace(worktree, removed=True), committed, head)


@dataclass(frozen=True)
class Losses:
    """What removing a worktree and its branch would lose."""

    uncommitted_files: int
    unmerged: int

    def __bool__(self) -> bool:
        return bool(self.uncommitted_files or self.unmerged)

    def describe(self, worktree: Worktree) -> str:
        """`... has 2 uncommitted files and branch B has 1 commit not merged anywhere`."""
        parts: list[str] = []
        if self.uncommitted_files:
            plural = "s" if self.uncommitted_files != 1 else ""
            parts.append(f"the worktree has {self.uncommitted_files} uncommitted file{plural}")
        if self.unmerged:
            plural = "s" if self.unmerged != 1 else ""
            where = "on no other branch, tag or remote"
            parts.append(f"branch {worktree.branch} has {self.unmerged} commit{plural} {where}")
        return " and ".join(parts)


async def losses(worktree: Worktree) -> Losses:
    """What `remove` would lose: uncommitted files, and commits merged nowhere."""
    uncommitted = 0
    if not worktree.removed and await anyio.Path(worktree.path).exists():
        state = await snapshot(worktree)
        if not state.clean:
            raw = await git(
                ["diff-tree", "-r", "-z", "--name-only", state.head_tree, state.tree], worktree.path
            )
            uncommitted = len(_fields(raw))
    unmerged = 0 if await _tip(worktree) is None else await unmerged_commits(worktree)
    return Losses(uncommitted, unmerged)


async def remove(worktree: Worktree) -> Finished:
    """Remove the worktree directory and delete the branch, whatever they hold (the caller checked
    `losses`, or was told to force)."""
    async with _repository_lock(worktree.git_dir):
        if not worktree.removed:
            await _remove_directory(worktree)
        head = await _tip(worktree)
        if head is not None:
            await git(["branch", "--quiet", "-D", worktree.branch], worktree.git_dir)
    return Finished(replace(worktree, removed=True, branch_deleted=True), None, head)


@dataclass(frozen=True)
class CleanPlan:
    """What `clean` does to a removed session's worktree: the directory goes; what was uncommitted
    is committed to the branch first; the branch stays unless it holds nothing merged nowhere."""

    worktree: Worktree
    commits_changes: bool
    keeps_branch: bool


async def plan_clean(worktree: Worktree) -> CleanPlan:
    """What `clean_up` would do to `worktree`."""
    lost = await losses(worktree)
    return CleanPlan(worktree, lost.uncommitted_files > 0, bool(lost) and not worktree.branch_deleted)


async def clean_up(worktree: Worktree, message: str) -> CleanPlan:
    """Keep the worktree's work on its branch (`keep`), then delete the branch if it holds no
    commit merged nowhere; what was done."""
    kept = await keep(worktree, message)
    keeps_branch = kept.head is not None and await unmerged_commits(kept.worktree) > 0
    final = kept.worktree
    if kept.head is not None and not keeps_branch:
        final = (await remove(kept.worktree)).worktree
    return CleanPlan(final, kept.committed is not None, keeps_branch)
