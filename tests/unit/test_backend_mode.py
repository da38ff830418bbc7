"""The backend: CODEX_MCP_MODE when set, else app-server if the binary has it, else exec; probed on
first need, and a probe that gives no answer never picks exec."""

from __future__ import annotations

import logging
import stat
import uuid
from pathlib import Path

import anyio
import pytest

from codex_mcp.backend_mode import ModeChoice, ModeResolver, forced_mode, probe_app_server
from codex_mcp.errors import CodexMcpError
from tests.e2e.processes import live_processes_with_env

pytestmark = pytest.mark.anyio

# The stand-ins below answer at once or hang; a hang is cut at this bound.
_SHORT_S = 0.5


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _counting(tmp_path: Path, then: str) -> tuple[Path, Path]:
    """A stand-in that appends its argv to a log, then runs `then`."""
    log = tmp_path / "calls.log"
    return _script(tmp_path / "codex", f'echo "$*" >> "{log}"\n{then}'), log


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def test_a_codex_whose_app_server_help_works_runs_app_server(tmp_path: Path) -> None:
    codex = _script(tmp_path / "codex", 'echo "app-server help"; exit 0')
    choice = await ModeResolver(codex).resolve()
    assert (choice.mode, choice.assumed) == ("app-server", False)
    assert choice.source.startswith("detected")


async def test_a_codex_without_app_server_runs_exec_and_says_why_at_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    codex = _script(
        tmp_path / "codex-internal", "echo \"error: unrecognized subcommand 'app-server'\" >&2; exit 2"
    )
    with caplog.at_level(logging.WARNING, logger="codex_mcp.backend_mode"):
        choice = await ModeResolver(codex).resolve()
    assert choice.mode == "exec"
    assert "no app-server" in choice.source
    assert "exited 2" in choice.source
    assert "unrecognized subcommand 'app-server'" in choice.source
    assert any("backend exec" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


async def test_a_probe_that_gives_no_answer_assumes_app_server_and_kills_the_probe(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Unique on the machine: another test run at the same time has the same tmp_path names.
    marker = f"probe-{uuid.uuid4().hex}"
    codex = _script(tmp_path / "codex", f"PROBE_MARK={marker} exec sleep 60")
    with caplog.at_level(logging.WARNING, logger="codex_mcp.backend_mode"):
        choice = await ModeResolver(codex, probe_timeout_s=_SHORT_S).resolve()
    assert choice.mode == "app-server"
    assert choice.assumed
    assert "no answer within 0.5s" in choice.source
    assert any(r.levelno == logging.WARNING and "assumed" in r.getMessage() for r in caplog.records)
    assert live_processes_with_env(f"PROBE_MARK={marker}") == []


async def test_a_codex_that_cannot_run_is_not_taken_for_one_without_app_server(tmp_path: Path) -> None:
    not_executable = tmp_path / "codex"
    not_executable.write_text("not a program")
    probe = await probe_app_server(not_executable, _SHORT_S)
    assert probe.returncode is None
    assert "could not run it" in probe.detail
    assert (await ModeResolver(not_executable).resolve()).mode == "app-server"


async def test_codex_mcp_mode_forces_the_backend_without_probing(tmp_path: Path) -> None:
    never_run = tmp_path / "not-a-program"
    backend = ModeResolver.from_env(never_run, {"CODEX_MCP_MODE": "exec"})
    choice = await backend.resolve()
    assert choice.mode == "exec"
    assert choice.source == "CODEX_MCP_MODE"
    assert backend.probes == 0


def test_a_bad_codex_mcp_mode_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(CodexMcpError, match="CODEX_MCP_MODE=fast"):
        ModeResolver.from_env(tmp_path / "codex", {"CODEX_MCP_MODE": "fast"})
    assert forced_mode({}) is None


async def test_nothing_runs_until_the_backend_is_first_needed(tmp_path: Path) -> None:
    codex, log = _counting(tmp_path, "exit 0")
    backend = ModeResolver.from_env(codex, {})
    assert backend.current is None
    assert _calls(log) == []
    await backend.resolve()
    assert _calls(log) == ["app-server --help"]


async def test_two_calls_at_once_share_one_probe(tmp_path: Path) -> None:
    codex, log = _counting(tmp_path, "sleep 0.3; exit 0")
    backend = ModeResolver(codex)
    choices: list[ModeChoice] = []

    async def resolve() -> None:
        choices.append(await backend.resolve())

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(resolve)
    assert {choice.mode for choice in choices} == {"app-server"}
    assert _calls(log) == ["app-server --help"]
    assert backend.probes == 1


async def test_an_assumed_app_server_is_confirmed_by_its_first_spawn(tmp_path: Path) -> None:
    codex, log = _counting(tmp_path, "exec sleep 60")
    backend = ModeResolver(codex, probe_timeout_s=_SHORT_S)
    await backend.resolve()
    backend.spawn_worked()
    choice = await backend.resolve()
    assert (choice.mode, choice.assumed) == ("app-server", False)
    assert choice.source.startswith("confirmed: `codex app-server` started")
    assert _calls(log) == ["app-server --help"]


async def test_a_failed_spawn_of_an_assumed_app_server_falls_back_to_exec_when_a_second_probe_refutes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The first --help hangs (a cold binary), the second exits 2 (this Codex has no app-server).
    first = tmp_path / "first-done"
    codex, log = _counting(
        tmp_path,
        f'if [ ! -e "{first}" ]; then touch "{first}"; exec sleep 60; fi\n'
        "echo \"error: unrecognized subcommand 'app-server'\" >&2; exit 2",
    )
    backend = ModeResolver(codex, probe_timeout_s=_SHORT_S)
    assert (await backend.resolve()).assumed
    with caplog.at_level(logging.WARNING, logger="codex_mcp.backend_mode"):
        choice = await backend.spawn_failed("codex app-server did not start: exited with code 2")
    assert choice.mode == "exec"
    assert choice.source.startswith("fallback: `codex app-server` did not start")
    assert "no app-server" in choice.source
    assert any(r.levelno == logging.WARNING and "backend exec" in r.getMessage() for r in caplog.records)
    assert await backend.resolve() == choice
    assert _calls(log) == ["app-server --help", "app-server --help"]


async def test_a_failed_spawn_keeps_app_server_when_the_second_probe_says_it_exists(tmp_path: Path) -> None:
    first = tmp_path / "first-done"
    codex, _ = _counting(tmp_path, f'if [ ! -e "{first}" ]; then touch "{first}"; exec sleep 60; fi\nexit 0')
    backend = ModeResolver(codex, probe_timeout_s=_SHORT_S)
    await backend.resolve()
    choice = await backend.spawn_failed("codex app-server did not start: timed out")
    assert (choice.mode, choice.assumed) == ("app-server", False)


async def test_a_failed_spawn_probes_again_only_once_while_help_still_hangs(tmp_path: Path) -> None:
    codex, log = _counting(tmp_path, "exec sleep 60")
    backend = ModeResolver(codex, probe_timeout_s=_SHORT_S, recheck_timeout_s=_SHORT_S)
    await backend.resolve()
    for _ in range(3):
        choice = await backend.spawn_failed("codex app-server did not start")
        assert (choice.mode, choice.assumed) == ("app-server", True)
    assert len(_calls(log)) == 2


async def test_a_failed_spawn_of_a_detected_app_server_probes_nothing(tmp_path: Path) -> None:
    codex, log = _counting(tmp_path, "exit 0")
    backend = ModeResolver(codex)
    await backend.resolve()
    assert (await backend.spawn_failed("boom")).mode == "app-server"
    assert len(_calls(log)) == 1
