#!/usr/bin/env python3
"""Bootstrap the locked environment in `.venv` (only Python 3.11+ needed), then run one task.

    python3 scripts/dev.py serve   run the MCP server on stdio
    python3 scripts/dev.py test    run the whole test suite (extra args go to pytest)
    python3 scripts/dev.py lint    codegen drift check, ruff format/lint, pyright strict

Everything this script prints goes to stderr: with `serve`, stdout is the MCP wire.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
UV_VERSION = "0.13.9"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    # stdout of set-up steps is sent to stderr so that `serve` keeps stdout clean.
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=sys.stderr, check=False)
    if completed.returncode != 0:
        _say(f"failed ({completed.returncode}): {' '.join(command)}")
        sys.exit(completed.returncode)


def _python() -> Path:
    return BIN / ("python.exe" if os.name == "nt" else "python")


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    env["UV_PROJECT_ENVIRONMENT"] = str(VENV)
    env.pop("VIRTUAL_ENV", None)
    return env


def bootstrap(*, dev: bool) -> None:
    """Create `.venv`, install the pinned uv into it, and sync the locked dependencies."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run under any python3
        _say(f"Python 3.11+ is required; this is {sys.version.split()[0]}")
        sys.exit(2)
    if not _python().exists():
        _say(f"creating {VENV.name} with Python {sys.version.split()[0]}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / ("uv.exe" if os.name == "nt" else "uv")
    if not uv.exists():
        _run([str(_python()), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"])
    sync = [str(uv), "sync", "--frozen", "--quiet", "--python", str(_python())]
    # `serve` must not uninstall the dev tools of a developer's checkout.
    sync += [] if dev else ["--no-dev", "--inexact"]
    _run(sync, env=_uv_env())
    # Compiled bytecode for the checkout: importing the generated models from source costs ~3x more.
    _run([str(_python()), "-m", "compileall", "-q", "src"])


def main(argv: list[str]) -> int:
    """Dispatch one task."""
    task, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if task == "serve":
        bootstrap(dev=False)
        os.execv(str(BIN / "codex-mcp"), [str(BIN / "codex-mcp"), *rest])  # noqa: S606 - argv, no shell
    if task == "test":
        bootstrap(dev=True)
        return subprocess.run([str(_python()), "-m", "pytest", *rest], cwd=ROOT, check=False).returncode
    if task == "lint":
        bootstrap(dev=True)
        python = str(_python())
        for command in (
            [python, "-m", "codegen", "--check"],
            [python, "-m", "ruff", "format", "--check", "."],
            [python, "-m", "ruff", "check", "."],
            [python, "-m", "pyright"],
        ):
            _say(" ".join(command[1:]))
            if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
                return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 0 if task in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
