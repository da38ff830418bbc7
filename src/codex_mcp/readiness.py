"""The `codex_setup` readiness report: can Codex run here, and what to fix if not."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Final, Literal

from codex_mcp.codex_probe import CodexRun, parse_version, run_codex
from codex_mcp.errors import CodexMcpError
from codex_mcp.host_health import HostHealth, check_hosts
from codex_mcp.hosts import Host
from codex_mcp.profiles import codex_home
from codex_mcp.settings import CodexExecutable, resolve_codex
from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from codex_mcp.wire.tools import (
    Auth,
    Backend,
    Codex,
    CodexSetupOutput,
    ConfigFile,
    HostCheck,
    Problem,
    Protocol,
)

# `codex --version` and `codex login status` answer at once; this only bounds a broken binary.
_PROBE_TIMEOUT_S: Final = 15.0


async def _run(codex: Path, args: tuple[str, ...], env: dict[str, str]) -> CodexRun:
    """A short probe command; exit code -1 and why on stderr when it timed out or could not run."""
    try:
        run = await run_codex(codex, args, timeout_s=_PROBE_TIMEOUT_S, env=env)
    except OSError as exc:  # gone since it was found, or not executable any more
        return CodexRun(-1, "", f"could not run: {exc.strerror or exc}")
    if run.returncode is None:
        return CodexRun(-1, "", f"timed out after {_PROBE_TIMEOUT_S:.0f}s")
    return run


def _project_configs(cwd: Path) -> list[Path]:
    return [directory / ".codex" / "config.toml" for directory in (cwd, *cwd.parents)]


def _provider(config_path: Path) -> str:
    try:
        config: dict[str, Any] = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return "openai"
    return str(config.get("model_provider", "openai"))


def _local_facts(cwd: str | None, env: dict[str, str]) -> tuple[Path, bool, list[ConfigFile]]:
    """The target directory, whether it exists, and the config.toml files Codex would read there."""
    target = Path(cwd).expanduser() if cwd else Path.cwd()
    home = codex_home(env)
    files = [
        ConfigFile(path=str(home / "config.toml"), scope="user", exists=(home / "config.toml").is_file())
    ]
    files += [
        ConfigFile(path=str(p), scope="project", exists=True) for p in _project_configs(target) if p.is_file()
    ]
    return target, target.is_dir(), files


def _host_check(health: HostHealth) -> HostCheck:
    check = HostCheck(name=health.name, url=health.url, ready=health.ready, detail=health.detail)
    if health.version is not None:
        check.version = health.version
        check.matches_pinned = health.matches_pinned
    return check


async def readiness_report(
    cwd: str | None,
    backend_mode: Literal["app-server", "exec", "unknown"],
    backend_source: str,
    hosts: tuple[Host, ...] = (),
) -> CodexSetupOutput:
    """The CodexSetupOutput for `cwd` (default: the server's cwd), with each of `hosts` checked."""
    env = dict(os.environ)
    problems: list[Problem] = []
    target, target_is_dir, config_files = _local_facts(cwd, env)
    if not target_is_dir:
        problems.append(
            Problem(
                code="CWD_MISSING", message=f"{target} is not a directory", fix="pass an existing directory"
            )
        )
    found = Codex(found=False)
    protocol: Protocol | None = None
    auth: Auth | None = None
    codex: CodexExecutable | None = None
    try:
        codex = resolve_codex(env)
    except CodexMcpError as exc:
        problems.append(
            Problem(
                code="CODEX_NOT_FOUND",
                message=exc.message,
                fix="install Codex (npm i -g @openai/codex, or pip install 'codex-mcp[codex]'), "
                "or point CODEX_MCP_PATH at it",
            )
        )
    if codex is not None:
        version_run = await _run(codex.path, ("--version",), env)
        version = parse_version(version_run)
        version_text = version_run.stdout or version_run.stderr
        found = Codex(found=True, path=str(codex.path), source=codex.source)
        if version is not None:
            found.version = version
            protocol = Protocol(
                pinned_codex_version=PINNED_CODEX_VERSION, matches_pinned=version == PINNED_CODEX_VERSION
            )
        else:
            problems.append(
                Problem(
                    code="CODEX_BROKEN",
                    message=f"`codex --version` failed: {version_text[:200]}",
                    fix="reinstall Codex or point CODEX_MCP_PATH at a working binary",
                )
            )
        home = codex_home(env)
        provider = _provider(home / "config.toml")
        status = await _run(codex.path, ("login", "status"), env)
        status_text = status.stdout or status.stderr
        logged_in = status.returncode == 0
        auth = Auth(logged_in=logged_in, provider=provider)
        if status_text:
            auth.detail = status_text.splitlines()[0][:200]
        has_key = bool(env.get("OPENAI_API_KEY") or env.get("CODEX_API_KEY"))
        if has_key:
            auth.method = "api-key environment variable"
        if not logged_in and not has_key and provider == "openai":
            problems.append(
                Problem(
                    code="NOT_LOGGED_IN",
                    message="Codex is not logged in and no OPENAI_API_KEY is set",
                    fix="run `codex login` (or set OPENAI_API_KEY in the MCP server's env)",
                )
            )
    host_health = await check_hosts(hosts) if hosts else []
    for health in host_health:
        if health.problem is not None:
            code, message, fix = health.problem
            problems.append(Problem(code=code, message=message, fix=fix))
    report = CodexSetupOutput(
        backend=Backend(mode=backend_mode, source=backend_source),
        codex=found,
        config_files=config_files,
        problems=problems,
        ready=not problems,
    )
    if protocol is not None:
        report.protocol = protocol
    if auth is not None:
        report.auth = auth
    if host_health:
        report.hosts = [_host_check(health) for health in host_health]
    return report
