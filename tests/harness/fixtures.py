"""Pytest fixtures for tests that run the real Codex against the mock model.

Import them into a ``conftest.py``::

    from tests.harness.fixtures import codex_env, codex_home, inner_codex, mock_model, npm_clients, workspace

``inner_codex`` is the Codex binary our server drives: the pinned PyPI 0.163.0 by default;
``CODEX_MCP_TEST_INNER_CODEX=npm`` swaps in the native binary of the pinned npm ``@openai/codex``
(0.171.0, from ``tests/clients/package-lock.json``) for every test that uses ``codex_env``, and a test
module can override the fixture to run its tests against that Codex on every run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from tests.harness.codex_env import CodexEnv, codex_binary, create_codex_env
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients, NpmClientsError, install_npm_clients

INNER_CODEX_CHOICES: Final = ("pinned", "npm")


@pytest.fixture(scope="session")
def npm_clients() -> NpmClients:
    """Claude Code, Codex and the MCP Inspector from npm, installed once per lock file (``npm ci``)."""
    try:
        return install_npm_clients()
    except NpmClientsError as exc:
        if os.environ.get("CI"):
            raise  # CI must run the real-client tests: a missing npm is a failure there
        pytest.skip(f"the real npm clients could not be installed here: {exc}")


@pytest.fixture
def inner_codex(request: pytest.FixtureRequest) -> Path:
    """The Codex binary our server runs (see the module docstring)."""
    choice = os.environ.get("CODEX_MCP_TEST_INNER_CODEX", "pinned")
    if choice == "pinned":
        return codex_binary()
    if choice == "npm":
        clients: NpmClients = request.getfixturevalue("npm_clients")
        return clients.codex_native
    expected = ", ".join(INNER_CODEX_CHOICES)
    raise pytest.UsageError(f"CODEX_MCP_TEST_INNER_CODEX={choice!r}: expected one of {expected}")


@pytest.fixture
def mock_model() -> Iterator[MockModelServer]:
    """A running mock Responses API server, stopped after the test."""
    with MockModelServer() as server:
        yield server


@pytest.fixture
def codex_env(tmp_path: Path, mock_model: MockModelServer, inner_codex: Path) -> CodexEnv:
    """An isolated Codex installation (CODEX_HOME, HOME, workspace) wired to ``mock_model``."""
    return create_codex_env(
        tmp_path / "codex",
        mock_model.base_url,
        proxy_url=f"http://127.0.0.1:{mock_model.port}",
        binary=inner_codex,
    )


@pytest.fixture
def codex_home(codex_env: CodexEnv) -> Path:
    """The isolated ``CODEX_HOME`` (with the mock ``config.toml``)."""
    return codex_env.codex_home


@pytest.fixture
def workspace(codex_env: CodexEnv) -> Path:
    """An empty workspace directory for Codex to work in."""
    return codex_env.workspace
