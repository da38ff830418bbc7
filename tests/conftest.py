"""Shared fixtures: the real-Codex bench (mock model, isolated CODEX_HOME) for every test tier."""

from tests.harness.fixtures import codex_env, codex_home, inner_codex, mock_model, npm_clients, workspace

__all__ = ["codex_env", "codex_home", "inner_codex", "mock_model", "npm_clients", "workspace"]
