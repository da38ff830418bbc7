"""`codex-mcp doctor`: the `codex_setup` report for a human, plus the settings the server would refuse."""

from __future__ import annotations

import json
from typing import Any

from codex_mcp.backend_mode import ModeChoice, ModeResolver
from codex_mcp.errors import CodexMcpError
from codex_mcp.hosts import Host
from codex_mcp.readiness import readiness_report
from codex_mcp.settings import Settings, resolve_codex
from codex_mcp.wire.tools import Problem, output_json

_SETTING_FIX = "fix or unset that variable: the server refuses to start with it (exit code 2)"


async def _backend(env: dict[str, str]) -> tuple[ModeChoice | None, CodexMcpError | None]:
    try:
        codex = resolve_codex(env)
    except CodexMcpError:
        return None, None  # the readiness report explains a missing or misnamed Codex
    try:
        backend = ModeResolver.from_env(codex.path, env)
    except CodexMcpError as exc:
        return None, exc
    return await backend.resolve(), None


async def doctor_report(env: dict[str, str], cwd: str | None) -> dict[str, Any]:
    """The CodexSetupOutput for `cwd`, with a BAD_SETTING problem for each setting the server refuses."""
    setting_errors: list[CodexMcpError] = []
    state_dir: str | None = None
    hosts: tuple[Host, ...] = ()
    try:
        settings = Settings.from_env(env)
        state_dir, hosts = str(settings.state_dir), settings.hosts
    except CodexMcpError as exc:
        setting_errors.append(exc)
    mode, mode_error = await _backend(env)
    if mode_error is not None:
        setting_errors.append(mode_error)
    report = await readiness_report(
        cwd, mode.mode if mode else "unknown", mode.source if mode else "no backend chosen", hosts
    )
    for error in setting_errors:
        report.problems.append(Problem(code="BAD_SETTING", message=error.message, fix=_SETTING_FIX))
    report.ready = not report.problems
    shown = output_json(report)
    if state_dir is not None:
        shown["stateDir"] = state_dir
    return shown


def _codex_line(report: dict[str, Any]) -> str:
    codex: dict[str, Any] = report.get("codex", {})
    if not codex.get("found"):
        return "not found"
    line = f"{codex['path']} ({codex['source']})"
    protocol: dict[str, Any] | None = report.get("protocol")
    if "version" in codex and protocol is not None:
        pinned = protocol["pinnedCodexVersion"]
        relation = "= pinned" if protocol["matchesPinned"] else f"!= pinned {pinned}: see compat-report"
        line += f", version {codex['version']} ({relation})"
    return line


def _auth_line(report: dict[str, Any]) -> str:
    auth: dict[str, Any] | None = report.get("auth")
    if auth is None:
        return "-"
    state = "logged in" if auth["loggedIn"] else "not logged in"
    line = f"{state}, provider {auth['provider']}"
    if "method" in auth:
        line += f", {auth['method']}"
    return line


def _host_line(host: dict[str, Any]) -> str:
    state = "ready" if host["ready"] else "NOT READY"
    line = f"{host['name']} {host['url']}: {state}, {host['detail']}"
    if "version" in host:
        line += f", version {host['version']}" + (
            "" if host["matchesPinned"] else " (!= pinned: see compat-report)"
        )
    return line


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned lines for a terminal."""
    problems: list[dict[str, str]] = report["problems"]
    head = "ready" if report["ready"] else f"NOT READY ({len(problems)} problem(s))"
    backend: dict[str, str] = report["backend"]
    rows = [
        ("codex", _codex_line(report)),
        ("backend", f"{backend['mode']} ({backend['source']})"),
        ("auth", _auth_line(report)),
    ]
    for index, config in enumerate(report["configFiles"]):
        exists = "" if config["exists"] else ", missing"
        rows.append(("config" if index == 0 else "", f"{config['path']} ({config['scope']}{exists})"))
    for index, host in enumerate(report.get("hosts", [])):
        rows.append(("hosts" if index == 0 else "", _host_line(host)))
    if "stateDir" in report:
        rows.append(("state dir", report["stateDir"]))
    lines = [f"codex-mcp doctor: {head}", ""]
    lines += [f"  {label:<10}{value}" for label, value in rows]
    if problems:
        lines += ["", "problems:"]
        for problem in problems:
            lines.append(f"  {problem['code']}: {problem['message']}")
            lines.append(f"    fix: {problem['fix']}")
    return "\n".join(lines)


async def run(env: dict[str, str], cwd: str | None, *, as_json: bool) -> tuple[int, str]:
    """(exit code, text to print): 0 when ready, 1 when not."""
    report = await doctor_report(env, cwd)
    text = json.dumps(report, indent=2) if as_json else format_report(report)
    return (0 if report["ready"] else 1), text
