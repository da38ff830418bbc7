"""The recursion guard's parts: which `[mcp_servers]` entries run codex-mcp, where they are found, and
the overrides that disable them (or, with nesting allowed, tell them their depth)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from codex_mcp.backends.exec_argv import ExecTurnSpec, build_exec_argv
from codex_mcp.errors import CodexMcpError
from codex_mcp.nesting import (
    NESTING_LEVEL_VARIABLE,
    NestingPolicy,
    guard_config,
    guard_table,
    nested_entries,
    runs_codex_mcp,
    with_guard,
)

GUARD_ON = NestingPolicy()


def _entry(command: str, *args: str, **extra: Any) -> dict[str, Any]:
    return {"command": command, "args": list(args), **extra}


RUNS_CODEX_MCP = [
    _entry("codex-mcp"),
    _entry("/home/me/.local/bin/codex-mcp"),
    _entry("C:\\Tools\\codex-mcp.exe"),
    _entry("uvx", "codex-mcp"),
    _entry("uvx", "codex-mcp@latest"),
    _entry("uvx", "codex-mcp==1.2.0"),
    _entry("/usr/local/bin/uvx", "--from", "codex-mcp[codex]", "codex-mcp"),
    _entry("uvx", "--from", "git+https://github.com/someone/codex-mcp", "codex-mcp"),
    _entry("uvx", "--python", "3.12", "--with", "rich", "codex-mcp"),
    _entry("uv", "tool", "run", "codex-mcp"),
    _entry("uv", "--quiet", "tool", "run", "--from", "codex-mcp", "codex-mcp"),
    _entry("uv", "run", "--project", "/src/codex-mcp", "python", "-m", "codex_mcp"),
    _entry("pipx", "run", "codex-mcp"),
    _entry("pipx", "run", "--spec", "codex-mcp==1.0", "codex-mcp"),
    _entry("python", "-m", "codex_mcp"),
    _entry("python3.11", "-u", "-X", "dev", "-m", "codex_mcp"),
    _entry("/opt/venv/bin/python", "-mcodex_mcp"),
    _entry("python3", "-Im", "codex_mcp.cli"),
    _entry("python3", "/opt/venv/bin/codex-mcp"),
    _entry("env", "FOO=1", "codex-mcp"),
    _entry("my-wrapper.sh", env={"CODEX_MCP_STATE_DIR": "/tmp/s"}),
    {"command": "codex-mcp"},
]

NOT_CODEX_MCP = [
    _entry("codex-mcp-server"),
    _entry("codex", "mcp-server"),
    _entry("npx", "-y", "codex-mcp-server"),
    _entry("uvx", "mcp-server-codex"),
    _entry("uvx", "--with", "codex-mcp", "other-server"),
    _entry("uvx", "--from", "codex-mcp", "other-tool"),
    _entry("python", "-m", "codex_mcp_helper"),
    _entry("python", "-c", "import codex_mcp"),
    _entry("python", "server.py", "codex-mcp"),
    _entry("pipx", "install", "codex-mcp"),
    _entry("codex-mcp-proxy", env={"CODEX_HOME": "/x", "OPENAI_API_KEY": "k"}),
    {"url": "https://example.com/codex-mcp"},
    {"command": 42},
]


@pytest.mark.parametrize(
    "entry", RUNS_CODEX_MCP, ids=lambda e: " ".join([str(e.get("command")), *e.get("args", [])])
)
def test_the_matcher_finds_each_way_of_running_codex_mcp(entry: dict[str, Any]) -> None:
    assert runs_codex_mcp(entry) is not None


@pytest.mark.parametrize(
    "entry", NOT_CODEX_MCP, ids=lambda e: " ".join([str(e.get("command", e.get("url"))), *e.get("args", [])])
)
def test_the_matcher_leaves_other_servers_alone(entry: dict[str, Any]) -> None:
    assert runs_codex_mcp(entry) is None


def test_the_matcher_says_why() -> None:
    assert runs_codex_mcp(_entry("python", "-m", "codex_mcp")) == "runs `python -m codex_mcp`"
    assert (
        runs_codex_mcp(_entry("x", env={"CODEX_MCP_LOG_LEVEL": "INFO"})) == "its env sets CODEX_MCP_LOG_LEVEL"
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_entries_are_found_in_codex_home_the_project_files_and_the_thread_config(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    _write(
        home / "config.toml",
        '[mcp_servers.cm]\ncommand = "codex-mcp"\n[mcp_servers.echo]\ncommand = "echo"\n',
    )
    repo = tmp_path / "repo"
    cwd = repo / "pkg"
    _write(repo / ".codex" / "config.toml", '[mcp_servers.proj]\ncommand = "uvx"\nargs = ["codex-mcp"]\n')
    cwd.mkdir()
    config = {"mcp_servers.mine.command": "python3", "mcp_servers.mine.args": ["-m", "codex_mcp"]}
    found = {entry.name: entry for entry in nested_entries(home, str(cwd), config)}
    assert set(found) == {"cm", "proj", "mine"}
    assert found["cm"].always_loaded
    assert found["mine"].always_loaded
    assert not found["proj"].always_loaded
    assert found["proj"].files == (str(repo / ".codex" / "config.toml"),)
    assert found["proj"].command == "uvx"


def test_an_entry_is_judged_on_its_layers_merged(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    _write(home / "config.toml", '[mcp_servers.cm]\ncommand = "python3"\n')
    _write(tmp_path / "w" / ".codex" / "config.toml", '[mcp_servers.cm]\nargs = ["-m", "codex_mcp"]\n')
    [entry] = nested_entries(home, str(tmp_path / "w"), None)
    assert entry.name == "cm"
    assert entry.always_loaded


def test_a_broken_config_file_is_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "codex-home"
    _write(home / "config.toml", "[mcp_servers.cm\ncommand = \n")
    _write(tmp_path / "w" / ".codex" / "config.toml", '[mcp_servers.cm]\ncommand = "codex-mcp"\n')
    with caplog.at_level(logging.WARNING, logger="codex_mcp.nesting"):
        found = nested_entries(home, str(tmp_path / "w"), None)
    assert [entry.name for entry in found] == ["cm"]
    assert any("cannot read" in r.getMessage() and "config.toml" in r.getMessage() for r in caplog.records)


def test_a_missing_codex_home_and_cwd_find_nothing(tmp_path: Path) -> None:
    assert nested_entries(tmp_path / "nope", str(tmp_path / "gone"), None) == []
    assert guard_config(tmp_path / "nope", None, {"model": "m"}, GUARD_ON) == {"model": "m"}
    assert guard_config(tmp_path / "nope", None, None, GUARD_ON) is None


def test_the_guard_disables_each_entry_and_gives_a_project_only_entry_its_command(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    _write(home / "config.toml", '[mcp_servers.cm]\ncommand = "codex-mcp"\nrequired = true\n')
    _write(tmp_path / "w" / ".codex" / "config.toml", '[mcp_servers.proj]\ncommand = "codex-mcp"\n')
    table = guard_table(nested_entries(home, str(tmp_path / "w"), None), GUARD_ON)
    # A name no loaded layer defines needs a transport, or Codex refuses the whole config.
    assert table == {"cm": {"enabled": False}, "proj": {"enabled": False, "command": "codex-mcp"}}


def test_allowed_nesting_hands_the_depth_down_through_the_entrys_env(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    _write(home / "config.toml", '[mcp_servers.cm]\ncommand = "codex-mcp"\n')
    _write(tmp_path / "w" / ".codex" / "config.toml", '[mcp_servers.proj]\ncommand = "codex-mcp"\n')
    entries = nested_entries(home, str(tmp_path / "w"), None)
    table = guard_table(entries, NestingPolicy(level=1, max_nesting=3))
    assert table["cm"] == {"env": {NESTING_LEVEL_VARIABLE: "2", "CODEX_MCP_MAX_NESTING": "3"}}
    assert table["proj"] == {"enabled": False, "command": "codex-mcp"}
    assert guard_table(entries, NestingPolicy(level=3, max_nesting=3))["cm"] == {"enabled": False}


def test_the_nesting_policy_reads_its_bound_and_level() -> None:
    assert not NestingPolicy.from_env({}).allows_nesting
    assert NestingPolicy.from_env({"CODEX_MCP_MAX_NESTING": "2"}).allows_nesting
    assert not NestingPolicy.from_env(
        {"CODEX_MCP_MAX_NESTING": "2", NESTING_LEVEL_VARIABLE: "2"}
    ).allows_nesting
    assert not NestingPolicy.from_env(
        {"CODEX_MCP_MAX_NESTING": "2", NESTING_LEVEL_VARIABLE: "x"}
    ).allows_nesting
    with pytest.raises(CodexMcpError, match="CODEX_MCP_MAX_NESTING=-1"):
        NestingPolicy.from_env({"CODEX_MCP_MAX_NESTING": "-1"})


def test_the_guard_goes_first_in_one_mcp_servers_table_merged_with_the_callers() -> None:
    config: dict[str, Any] = {
        "model": "m",
        "mcp_servers": {"cm": {"command": "codex-mcp"}, "echo": {"command": "echo"}},
    }
    guarded = with_guard(config, {"cm": {"enabled": False}})
    assert guarded == {
        "mcp_servers": {"cm": {"command": "codex-mcp", "enabled": False}, "echo": {"command": "echo"}},
        "model": "m",
    }
    assert guarded is not None
    assert next(iter(guarded)) == "mcp_servers"
    assert config["mcp_servers"]["cm"] == {"command": "codex-mcp"}


def test_exec_gets_the_guard_as_one_minus_c_table_with_quoted_names() -> None:
    guarded = with_guard(
        {"model_reasoning_effort": "low"}, {"c.m": {"enabled": False}, "cm": {"enabled": False}}
    )
    argv, warnings = build_exec_argv("codex", ExecTurnSpec(prompt="hi", cwd="/tmp", config=guarded), None)
    assert warnings == []
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    assert pairs == [
        'mcp_servers={"c.m" = {enabled = false}, cm = {enabled = false}}',
        'model_reasoning_effort="low"',
    ]
