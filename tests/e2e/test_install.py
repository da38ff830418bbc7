"""The README's install lines, run against the wheel this checkout builds (the package index does not
have it): `pip install codex-mcp`, the `[codex]` extra, and `uvx codex-mcp`.

uv comes from the dev environment (`scripts/dev.py` installs it); the dependencies come from uv's
cache, which `uv sync` has filled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from tests.harness.codex_env import CodexEnv

REPO: Final = Path(__file__).resolve().parents[2]
UV: Final = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")

pytestmark = pytest.mark.real_codex


def _run(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    assert completed.returncode == 0, f"{argv}: {completed.stdout}\n{completed.stderr}"
    return completed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert UV is not None, "uv is part of the dev environment (scripts/dev.py installs it)"
    out = tmp_path_factory.mktemp("wheel")
    _run([UV, "build", "--wheel", "--out-dir", str(out), str(REPO)])
    [built] = out.glob("codex_mcp-*.whl")
    return built


def _clean_env(tmp_path: Path, codex_env: CodexEnv) -> dict[str, str]:
    """Our environment (index and certificate settings) without any Codex on PATH, with a HOME of
    its own and the mock model's CODEX_HOME: only what the install brought can be found."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX")}
    env |= {
        "PATH": f"{tmp_path / 'venv' / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "CODEX_HOME": str(codex_env.codex_home),
        # A shared service (the default) would outlive the test by its idle period.
        "CODEX_MCP_APP_SERVER": "child",
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
    }
    return env


def test_pip_install_with_the_codex_extra_gives_a_ready_codex_mcp(
    wheel: Path, tmp_path: Path, codex_env: CodexEnv
) -> None:
    assert UV is not None
    venv = tmp_path / "venv"
    _run([UV, "venv", "-q", "--python", sys.executable, str(venv)])
    _run(
        [
            UV,
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            f"codex-mcp[codex] @ {wheel.as_uri()}",
        ]
    )
    env = _clean_env(tmp_path, codex_env)
    help_text = _run([str(venv / "bin" / "codex-mcp"), "--help"], env).stdout
    assert "CODEX_MCP_STATE_DIR" in help_text
    doctor = _run([str(venv / "bin" / "codex-mcp"), "doctor"], env).stdout
    # Found through the extra alone: nothing else on PATH has Codex.
    assert f"version {PINNED_CODEX_VERSION}" in doctor
    assert "(bundled)" in doctor
    assert doctor.startswith("codex-mcp doctor: ready")
    exported = tmp_path / "schemas"
    _run([str(venv / "bin" / "codex-mcp"), "schemas", "export", str(exported)], env)
    assert (exported / "tools" / "codex.input.json").is_file()


def test_uvx_runs_the_console_script(wheel: Path, tmp_path: Path, codex_env: CodexEnv) -> None:
    assert UV is not None
    env = {**_clean_env(tmp_path, codex_env), "UV_TOOL_DIR": str(tmp_path / "tools")}
    completed = _run([UV, "tool", "run", "--from", str(wheel), "codex-mcp", "--version"], env)
    assert completed.stdout.strip() == "codex-mcp 0.1.0"
