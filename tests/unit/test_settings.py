"""Which Codex the server runs: CODEX_MCP_PATH > CODEX_MCP_COMMAND > PATH > the bundled wheel."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.nesting import NESTING_LEVEL_VARIABLE
from codex_mcp.profiles import profile_config
from codex_mcp.settings import Settings, resolve_codex


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho codex-cli 9.9.9\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_codex_mcp_path_wins_over_path(tmp_path: Path) -> None:
    chosen = _executable(tmp_path / "opt" / "codex")
    _executable(tmp_path / "bin" / "codex")
    found = resolve_codex({"CODEX_MCP_PATH": str(chosen), "PATH": str(tmp_path / "bin")})
    assert found.path == chosen.resolve()
    assert found.source == "CODEX_MCP_PATH"


def test_codex_mcp_command_is_looked_up_on_path(tmp_path: Path) -> None:
    internal = _executable(tmp_path / "bin" / "codex-internal")
    _executable(tmp_path / "bin" / "codex")
    found = resolve_codex({"CODEX_MCP_COMMAND": "codex-internal", "PATH": str(tmp_path / "bin")})
    assert found.path == internal
    assert found.source == "CODEX_MCP_COMMAND"


def test_codex_then_codex_internal_are_tried_on_path(tmp_path: Path) -> None:
    internal = _executable(tmp_path / "bin" / "codex-internal")
    assert resolve_codex({"PATH": str(tmp_path / "bin")}).path == internal
    codex = _executable(tmp_path / "bin" / "codex")
    assert resolve_codex({"PATH": str(tmp_path / "bin")}).path == codex


def test_the_bundled_codex_is_the_last_resort(tmp_path: Path) -> None:
    found = resolve_codex({"PATH": str(tmp_path / "empty")})
    assert found.source == "bundled"
    assert found.path.name == "codex"


def test_setting_both_variables_is_an_error_naming_them(tmp_path: Path) -> None:
    with pytest.raises(CodexMcpError, match="CODEX_MCP_PATH and CODEX_MCP_COMMAND"):
        resolve_codex({"CODEX_MCP_PATH": "/x", "CODEX_MCP_COMMAND": "codex"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CODEX_MCP_PATH": "/no/such/codex"}, "CODEX_MCP_PATH=/no/such/codex: no such file"),
        (
            {"CODEX_MCP_COMMAND": "no-such-codex", "PATH": "/nonexistent"},
            "CODEX_MCP_COMMAND=no-such-codex: not found",
        ),
        ({"CODEX_MCP_COMMAND": "bin/codex"}, "give a bare name"),
    ],
)
def test_bad_settings_say_which_variable_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(CodexMcpError) as caught:
        resolve_codex(env)
    assert message in caught.value.message


def test_a_path_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "codex"
    plain.write_text("not a program")
    with pytest.raises(CodexMcpError, match="not executable"):
        resolve_codex({"CODEX_MCP_PATH": str(plain)})


def test_durations_are_read_in_milliseconds_and_bad_values_name_the_variable() -> None:
    settings = Settings.from_env({"CODEX_MCP_RECONNECT_TIMEOUT_MS": "1500", "CODEX_MCP_HEARTBEAT_MS": "200"})
    assert settings.reconnect_timeout_s == 1.5
    assert settings.heartbeat_s == 0.2
    with pytest.raises(CodexMcpError, match="CODEX_MCP_HEARTBEAT_MS=soon"):
        Settings.from_env({"CODEX_MCP_HEARTBEAT_MS": "soon"})


def test_the_nesting_bound_defaults_to_the_guard_on_and_a_bad_one_names_the_variable() -> None:
    assert not Settings.from_env({}).nesting.allows_nesting
    assert Settings.from_env({"CODEX_MCP_MAX_NESTING": "2"}).nesting.max_nesting == 2
    with pytest.raises(CodexMcpError, match="CODEX_MCP_MAX_NESTING=deep"):
        Settings.from_env({"CODEX_MCP_MAX_NESTING": "deep"})


def test_a_profile_is_read_from_its_own_file_or_the_legacy_table(tmp_path: Path) -> None:
    env = {"CODEX_HOME": str(tmp_path)}
    (tmp_path / "config.toml").write_text('model = "base"\n[profiles.old]\nmodel = "legacy-model"\n')
    (tmp_path / "fast.config.toml").write_text(
        'model = "fast-model"\n[sandbox_workspace_write]\nnetwork_access = true\n'
    )
    assert profile_config("fast", env) == {
        "model": "fast-model",
        "sandbox_workspace_write": {"network_access": True},
    }
    assert profile_config("old", env) == {"model": "legacy-model"}
    with pytest.raises(CodexMcpError) as caught:
        profile_config("missing", env)
    assert caught.value.field == "profile"
    assert "missing.config.toml" in caught.value.message


@pytest.mark.parametrize("name", ["../outside", "/etc/codex", "a/b", "..", ".hidden", "x" * 65, "a\x00b"])
def test_a_profile_name_cannot_name_a_file_outside_codex_home(tmp_path: Path, name: str) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "outside.config.toml").write_text('model = "stolen"\n')
    with pytest.raises(CodexMcpError) as caught:
        profile_config(name, {"CODEX_HOME": str(tmp_path / "home")})
    assert caught.value.field == "profile"
    assert "letters, digits" in caught.value.message


def test_the_app_server_placement_defaults_to_the_shared_service_and_a_bad_one_names_the_variable() -> None:
    assert Settings.from_env({}).app_server == "shared"
    assert Settings.from_env({"CODEX_MCP_APP_SERVER": "child"}).app_server == "child"
    # A server a Codex turn started lives for that turn: a service of its own would outlive it.
    nested = {NESTING_LEVEL_VARIABLE: "1", "CODEX_MCP_MAX_NESTING": "1"}
    assert Settings.from_env(nested).app_server == "child"
    shared = Settings.from_env({"CODEX_MCP_APP_SERVER": "shared", "CODEX_MCP_SERVICE_IDLE_MS": "2500"})
    assert (shared.app_server, shared.service_idle_s) == ("shared", 2.5)
    with pytest.raises(CodexMcpError, match="CODEX_MCP_APP_SERVER=cluster: expected child or shared"):
        Settings.from_env({"CODEX_MCP_APP_SERVER": "cluster"})


def test_the_app_server_memory_bound_is_read_in_mib_and_a_bad_one_names_the_variable() -> None:
    assert Settings.from_env({}).app_server_max_rss_mb == 2048
    assert Settings.from_env({"CODEX_MCP_APP_SERVER_MAX_RSS_MB": "512"}).app_server_max_rss_mb == 512
    with pytest.raises(CodexMcpError, match="CODEX_MCP_APP_SERVER_MAX_RSS_MB=lots: expected a whole number"):
        Settings.from_env({"CODEX_MCP_APP_SERVER_MAX_RSS_MB": "lots"})
