"""The backend: CODEX_MCP_MODE when set, else app-server if the binary has it, else exec."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from codex_mcp.backend_mode import choose_mode
from codex_mcp.errors import CodexMcpError


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_codex_whose_app_server_help_works_runs_app_server(tmp_path: Path) -> None:
    codex = _script(tmp_path / "codex", 'echo "app-server help"; exit 0')
    assert choose_mode(codex, {}).mode == "app-server"


def test_a_codex_without_app_server_runs_exec(tmp_path: Path) -> None:
    codex = _script(tmp_path / "codex-internal", 'echo "error: unrecognized subcommand" >&2; exit 2')
    choice = choose_mode(codex, {})
    assert choice.mode == "exec"
    assert "no app-server" in choice.source


def test_codex_mcp_mode_forces_the_backend_without_probing(tmp_path: Path) -> None:
    never_run = tmp_path / "not-a-program"
    choice = choose_mode(never_run, {"CODEX_MCP_MODE": "exec"})
    assert choice.mode == "exec"
    assert choice.source == "CODEX_MCP_MODE"


def test_a_bad_codex_mcp_mode_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(CodexMcpError, match="CODEX_MCP_MODE=fast"):
        choose_mode(tmp_path / "codex", {"CODEX_MCP_MODE": "fast"})
