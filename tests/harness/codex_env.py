"""Locate the pinned Codex binary and build isolated, offline Codex environments.

An isolated environment is a directory holding its own ``CODEX_HOME`` (whose
``config.toml`` points a custom provider at the mock model), its own ``HOME``
and a workspace. The child environment routes every proxy-aware HTTP client to
the mock server, which records and refuses CONNECTs, so nothing reaches the
network even if Codex tries.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.harness.procs import descendants, kill_process_group, kill_survivors

CODEX_PACKAGE: Final = "openai-codex-cli-bin"
# Our server from this checkout's environment, as the real-client tests configure it in each client.
CODEX_MCP_ARGV: Final = (sys.executable, "-m", "codex_mcp")
MOCK_MODEL: Final = "mock-model"
MOCK_PROVIDER: Final = "mock"
DUMMY_API_KEY: Final = "dummy"

# Placeholders the transcript recorder substitutes for machine paths.
WORKSPACE_PLACEHOLDER: Final = "/workspace"
CODEX_HOME_PLACEHOLDER: Final = "/codex-home"
HOME_PLACEHOLDER: Final = "/home/user"
ROOT_PLACEHOLDER: Final = "/sandbox-root"

# Variables kept from the parent environment; everything else (CODEX_*,
# OPENAI_*, proxies, credentials) is dropped.
_INHERITED_VARS: Final = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
    "USER",
    "LOGNAME",
)


class CodexBinaryMissingError(RuntimeError):
    """The pinned Codex binary package is not installed."""


def codex_binary() -> Path:
    """Return the Codex binary bundled by the ``openai-codex-cli-bin`` wheel."""
    try:
        import codex_cli_bin  # pyright: ignore[reportMissingTypeStubs]
    except ImportError as exc:
        raise CodexBinaryMissingError(
            f"the Codex test harness needs the PyPI package {CODEX_PACKAGE!r} "
            f"(pip install '{CODEX_PACKAGE}==0.163.0')"
        ) from exc
    path = Path(str(codex_cli_bin.bundled_codex_path()))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if not path.is_file():
        raise CodexBinaryMissingError(f"{CODEX_PACKAGE} is installed but its binary is missing: {path}")
    return path


def codex_version(binary: Path | None = None, timeout: float = 20.0) -> str:
    """The version string printed by ``codex --version`` (e.g. ``0.163.0``)."""
    out = subprocess.run(
        [str(binary or codex_binary()), "--version"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    return out.strip().split()[-1]


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def config_toml(base_url: str, *, model: str = MOCK_MODEL, extra: str = "", top_level: str = "") -> str:
    """The ``config.toml`` that points Codex at the mock model, offline.

    ``top_level`` holds extra top-level keys (e.g. ``sandbox_mode = "read-only"``);
    ``extra`` is appended at the end and must consist of tables (e.g. ``[mcp_servers.echo]``).
    """
    return (
        f"model = {_toml_string(model)}\n"
        f'model_provider = "{MOCK_PROVIDER}"\n'
        + (f"{top_level.strip()}\n" if top_level.strip() else "")
        + "\n"
        # Plugin sync and analytics would otherwise contact github.com and chatgpt.com.
        "[features]\n"
        "plugins = false\n"
        "\n"
        "[analytics]\n"
        "enabled = false\n"
        "\n"
        f"[model_providers.{MOCK_PROVIDER}]\n"
        f'name = "{MOCK_PROVIDER}"\n'
        f"base_url = {_toml_string(base_url)}\n"
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n" + (f"\n{extra.strip()}\n" if extra.strip() else "")
    )


@dataclass(frozen=True)
class CodexEnv:
    """One isolated Codex installation: binary, homes, workspace and mock address."""

    binary: Path
    root: Path
    codex_home: Path
    home: Path
    workspace: Path
    base_url: str
    proxy_url: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict[str, str])

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a Codex child process."""
        env = {k: os.environ[k] for k in _INHERITED_VARS if k in os.environ}
        env.update(
            {
                "HOME": str(self.home),
                "CODEX_HOME": str(self.codex_home),
                "OPENAI_API_KEY": DUMMY_API_KEY,
                "NO_COLOR": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_TERMINAL_PROMPT": "0",
                "RUST_LOG": os.environ.get("CODEX_TEST_RUST_LOG", "warn"),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                # Our servers default to the shared Codex service, which outlives them by its idle
                # period (10 min): a test that wants it says so (and sets a short idle period).
                "CODEX_MCP_APP_SERVER": "child",
            }
        )
        if self.proxy_url:
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
                env[name] = self.proxy_url
                env[name.lower()] = self.proxy_url
        env.update(self.extra_env)
        env.update(extra or {})
        return env

    def exec_argv(self, prompt: str, *options: str) -> list[str]:
        """``codex exec --json --skip-git-repo-check -C <workspace> [options] -- <prompt>``."""
        return [
            str(self.binary),
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-C",
            str(self.workspace),
            *options,
            # "--" stops multi-value options such as ``-i`` from eating the prompt.
            "--",
            prompt,
        ]

    def app_server_argv(self, *options: str) -> list[str]:
        """``codex app-server [options]``."""
        return [str(self.binary), "app-server", *options]

    def write_config(self, *, model: str = MOCK_MODEL, extra: str = "", top_level: str = "") -> Path:
        """(Re)write ``config.toml``; see :func:`config_toml` for ``extra`` and ``top_level``."""
        path = self.codex_home / "config.toml"
        text = config_toml(self.base_url, model=model, extra=extra, top_level=top_level)
        path.write_text(text, encoding="utf-8")
        return path

    def placeholders(self) -> list[tuple[str, str]]:
        """(real path, placeholder) pairs, longest first, for scrubbing recordings."""
        pairs: dict[str, str] = {}
        for real, placeholder in (
            (self.workspace, WORKSPACE_PLACEHOLDER),
            (self.codex_home, CODEX_HOME_PLACEHOLDER),
            (self.home, HOME_PLACEHOLDER),
            (self.root, ROOT_PLACEHOLDER),
        ):
            pairs[str(real)] = placeholder
            pairs[os.path.realpath(real)] = placeholder
        return sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)


def create_codex_env(
    root: Path,
    base_url: str,
    *,
    proxy_url: str | None = None,
    model: str = MOCK_MODEL,
    config_extra: str = "",
    config_top_level: str = "",
    binary: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> CodexEnv:
    """Create ``root/{codex-home,home,workspace}`` and write the mock ``config.toml``.

    ``proxy_url`` should be the mock server's own address
    (``f"http://127.0.0.1:{mock.port}"``) so stray internet traffic is caught.
    """
    root.mkdir(parents=True, exist_ok=True)
    codex_env = CodexEnv(
        binary=binary or codex_binary(),
        root=root,
        codex_home=root / "codex-home",
        home=root / "home",
        workspace=root / "workspace",
        base_url=base_url,
        proxy_url=proxy_url,
        extra_env=dict(extra_env or {}),
    )
    for directory in (codex_env.codex_home, codex_env.home, codex_env.workspace):
        directory.mkdir(parents=True, exist_ok=True)
    codex_env.write_config(model=model, extra=config_extra, top_level=config_top_level)
    return codex_env


def run_exec(
    codex_env: CodexEnv,
    prompt: str,
    options: Sequence[str] = (),
    *,
    argv: Sequence[str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``codex exec --json`` to completion with stdin closed (exec reads stdin to EOF)."""
    command = list(argv) if argv is not None else codex_env.exec_argv(prompt, *options)
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=codex_env.env(),
        cwd=codex_env.workspace,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            family = descendants(proc.pid)
            kill_process_group(proc)
            kill_survivors(family)
            raise
        kill_process_group(proc)
        return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
