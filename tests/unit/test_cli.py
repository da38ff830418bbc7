"""`codex-mcp` commands: doctor, schemas export, the log level, and serving's start-up refusals."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_mcp import cli, settings
from codex_mcp.resources.published import published_schemas


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Codex anywhere, an empty CODEX_HOME, and the root logger restored afterwards."""
    monkeypatch.setattr(settings, "_bundled_codex", lambda: None)
    for name in ("CODEX_MCP_PATH", "CODEX_MCP_COMMAND", "CODEX_MCP_MODE", "CODEX_MCP_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CODEX_MCP_STATE_DIR", str(tmp_path / "state"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_doctor_without_codex_exits_1_and_says_what_is_missing_and_how_to_fix_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["doctor", "--cwd", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("codex-mcp doctor: NOT READY (1 problem(s))")
    assert "  codex     not found" in out
    assert "CODEX_NOT_FOUND: no Codex executable" in out
    assert "fix: install Codex (npm i -g @openai/codex, or pip install 'codex-mcp[codex]')" in out
    assert f"state dir {tmp_path / 'state'}" in out


def test_doctor_json_prints_the_codex_setup_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["doctor", "--json", "--cwd", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ready"] is False
    assert [problem["code"] for problem in report["problems"]] == ["CODEX_NOT_FOUND"]


def test_doctor_names_a_setting_the_server_would_refuse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CODEX_MCP_IDLE_TTL_MS", "soon")
    assert cli.main(["doctor", "--json", "--cwd", str(tmp_path)]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    bad = [problem for problem in problems if problem["code"] == "BAD_SETTING"]
    assert [problem["message"] for problem in bad] == ["CODEX_MCP_IDLE_TTL_MS=soon: expected milliseconds"]


def test_schemas_export_writes_every_published_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "out"
    assert cli.main(["schemas", "export", str(target)]) == 0
    written = {p.relative_to(target).as_posix(): json.loads(p.read_text()) for p in target.rglob("*.json")}
    assert written == published_schemas()
    assert f"wrote {len(written)} schemas to {target}" in capsys.readouterr().out


def test_schemas_export_into_a_file_fails_naming_the_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    assert cli.main(["schemas", "export", str(blocker)]) == 1
    assert f"cannot write {blocker / 'tools'}" in capsys.readouterr().err


def test_schemas_without_export_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["schemas"])
    assert raised.value.code == 2


def test_an_unknown_log_level_stops_every_command_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_MCP_LOG_LEVEL", "chatty")
    assert cli.main(["doctor"]) == 2
    assert "CODEX_MCP_LOG_LEVEL=CHATTY: expected DEBUG, INFO" in capsys.readouterr().err


def test_the_log_level_applies_to_stderr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEX_MCP_LOG_LEVEL", "debug")
    logging.getLogger().handlers.clear()
    assert cli.main(["schemas", "export", str(tmp_path / "out")]) == 0
    assert logging.getLogger().level == logging.DEBUG


def test_serving_with_a_bad_setting_exits_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CODEX_MCP_PATH", str(tmp_path / "no-codex"))
    monkeypatch.setenv("CODEX_MCP_STDIO_MODE", "off")
    assert cli.main([]) == 2
    assert f"CODEX_MCP_PATH={tmp_path / 'no-codex'}: no such file" in capsys.readouterr().err
