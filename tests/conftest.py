"""Shared fixtures: the real-Codex bench (mock model, isolated CODEX_HOME) for every test tier."""

from tests.harness.fixtures import codex_env, codex_home, mock_model, workspace

__all__ = ["codex_env", "codex_home", "mock_model", "workspace"]
