"""Pytest fixtures for tests that run the real Codex against the mock model.

Import them into a ``conftest.py``::

    from tests.harness.fixtures import codex_env, codex_home, mock_model, workspace  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.codex_env import CodexEnv, create_codex_env
from tests.harness.mock_model import MockModelServer


@pytest.fixture
def mock_model() -> Iterator[MockModelServer]:
    """A running mock Responses API server, stopped after the test."""
    with MockModelServer() as server:
        yield server


@pytest.fixture
def codex_env(tmp_path: Path, mock_model: MockModelServer) -> CodexEnv:
    """An isolated Codex installation (CODEX_HOME, HOME, workspace) wired to ``mock_model``."""
    return create_codex_env(
        tmp_path / "codex",
        mock_model.base_url,
        proxy_url=f"http://127.0.0.1:{mock_model.port}",
    )


@pytest.fixture
def codex_home(codex_env: CodexEnv) -> Path:
    """The isolated ``CODEX_HOME`` (with the mock ``config.toml``)."""
    return codex_env.codex_home


@pytest.fixture
def workspace(codex_env: CodexEnv) -> Path:
    """An empty workspace directory for Codex to work in."""
    return codex_env.workspace
