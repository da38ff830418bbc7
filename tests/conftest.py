"""Shared fixtures for every test tier: the anyio backend and the real-Codex bench (mock model, isolated
CODEX_HOME)."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.fixtures import codex_env, codex_home, inner_codex, mock_model, npm_clients, workspace

__all__ = [
    "anyio_backend",
    "codex_env",
    "codex_home",
    "inner_codex",
    "mock_model",
    "npm_clients",
    "workspace",
]


@pytest.fixture
def anyio_backend() -> str:
    """Every `@pytest.mark.anyio` test runs on asyncio (trio is not a dependency).

    A module that means to run on another backend overrides this fixture in that module.
    """
    return "asyncio"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files of tests/contract/test_golden_replays.py instead of comparing",
    )


_REPO = Path(__file__).resolve().parent.parent


def _repo_worktrees_and_branches() -> str | None:
    """This repository's worktrees and branches, as git lists them; None outside a git checkout."""
    try:
        listed = [
            subprocess.run(
                ["git", "-C", str(_REPO), *args], capture_output=True, text=True, check=True, timeout=30
            ).stdout
            for args in (["worktree", "list", "--porcelain"], ["branch", "--list", "codex-mcp/*"])
        ]
    except (OSError, subprocess.SubprocessError):
        return None
    return "\n".join(listed)


@pytest.fixture(scope="session", autouse=True)
def repository_untouched() -> Iterator[None]:
    """No test runs git in this repository: a session whose cwd defaults to ours with
    `worktree: true` would add worktrees and codex-mcp/* branches to it."""
    before = _repo_worktrees_and_branches()
    yield
    after = _repo_worktrees_and_branches()
    assert after == before, f"the test run changed this repository's worktrees or branches:\n{after}"
