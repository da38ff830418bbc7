"""Shared fixtures for every test tier: the anyio backend and the real-Codex bench (mock model, isolated
CODEX_HOME)."""

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
