"""The hosts file: what it takes, what it refuses (naming the field), and how tokens are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.host_health import host_version
from codex_mcp.hosts import Host, load_hosts
from codex_mcp.settings import Settings


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def test_hosts_are_read_with_their_token_files_relative_to_the_file(tmp_path: Path) -> None:
    token = tmp_path / "a.token"
    token.write_text("secret-a\n")
    token.chmod(0o600)
    path = _file(
        tmp_path,
        '[[hosts]]\nname = "a"\nurl = "ws://127.0.0.1:4500"\ntoken_file = "a.token"\n'
        '[[hosts]]\nname = "b"\nurl = "ws://localhost:4501"\n',
    )
    a, b = load_hosts(path)
    assert (a.name, a.url, a.token_file, a.key) == ("a", "ws://127.0.0.1:4500", token, "host:a")
    assert a.timeout_s == b.timeout_s == 30.0
    assert a.token() == "secret-a"
    assert b.token() is None
    assert Settings.from_env({"CODEX_MCP_HOSTS": str(path)}).hosts == (a, b)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[hosts]]\nname = "a b"\nurl = "ws://127.0.0.1:1"\n', "hosts[0].name: 1-64 letters"),
        (
            '[[hosts]]\nname = "a"\nurl = "ws://127.0.0.1:1"\n[[hosts]]\nname = "a"\nurl = "ws://127.0.0.1:2"\n',
            "hosts[1].name: 'a' is named twice",
        ),
        ('[[hosts]]\nname = "a"\nurl = "http://x:1"\n', "hosts[0].url:"),
        (
            '[[hosts]]\nname = "a"\nurl = "ws://10.1.2.3:4500"\n',
            "hosts[0].url: ws://10.1.2.3:4500 is not loopback: give it a token_file or token_env",
        ),
        ('[[hosts]]\nname = "a"\nurl = "ws://127.0.0.1:1"\ntoken = "x"\n', "hosts[0].token: unknown field"),
        (
            '[[hosts]]\nname = "a"\nurl = "ws://127.0.0.1:1"\ntoken_file = "f"\ntoken_env = "E"\n',
            "give token_file or token_env, not both",
        ),
        (
            '[[hosts]]\nname = "a"\nurl = "ws://127.0.0.1:1"\ntimeout_ms = 10\n',
            "hosts[0].timeout_ms: expected an integer from 1000 to 3600000",
        ),
        ("hosts = 3\n", "hosts: expected one or more [[hosts]] tables"),
        ("[[hosts]\n", "not TOML"),
    ],
)
def test_a_bad_hosts_file_is_refused_naming_the_variable_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(CodexMcpError) as caught:
        load_hosts(path)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.message.startswith(f"CODEX_MCP_HOSTS={path}: ")
    assert message in caught.value.message


def test_a_token_file_others_can_read_is_refused_and_no_error_quotes_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "open.token"
    token.write_text("secret-open")
    token.chmod(0o644)
    with pytest.raises(CodexMcpError) as caught:
        Host("a", "ws://127.0.0.1:1", token_file=token).token()
    assert "readable by others; chmod 600" in caught.value.message
    assert "secret-open" not in caught.value.message
    with pytest.raises(CodexMcpError, match="token_env A_TOKEN is not set"):
        Host("a", "ws://127.0.0.1:1", token_env="A_TOKEN").token()
    monkeypatch.setenv("A_TOKEN", "secret-env")
    assert Host("a", "ws://127.0.0.1:1", token_env="A_TOKEN").token() == "secret-env"


def test_a_host_s_timeout_is_read_in_milliseconds(tmp_path: Path) -> None:
    (host,) = load_hosts(
        _file(tmp_path, '[[hosts]]\nname = "a"\nurl = "ws://127.0.0.1:1"\ntimeout_ms = 2500\n')
    )
    assert host.timeout_s == 2.5


@pytest.mark.parametrize(
    ("user_agent", "version"),
    [
        ("codex_cli_rs/0.171.0 (Debian 12.0.0; x86_64) unknown (codex-mcp; 0.1.0)", "0.171.0"),
        ("codex-mcp-tests/0.163.0", "0.163.0"),
        ("no-version-here", None),
        (None, None),
    ],
)
def test_the_codex_version_of_a_host_is_read_from_its_user_agent(
    user_agent: object, version: str | None
) -> None:
    assert host_version(user_agent) == version
