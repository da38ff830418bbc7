"""codex_setup's report when no Codex can be found: not ready, what is missing, how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_mcp import readiness, settings
from codex_mcp.wire.tools import output_json


@pytest.mark.anyio
async def test_without_any_codex_the_report_says_what_is_missing_and_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "_bundled_codex", lambda: None)
    for name in ("CODEX_MCP_PATH", "CODEX_MCP_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "home"))
    report = output_json(await readiness.readiness_report(str(tmp_path), "unknown", "no Codex found"))
    assert report["ready"] is False
    assert report["codex"] == {"found": False}
    [problem] = report["problems"]
    assert problem["code"] == "CODEX_NOT_FOUND"
    assert "codex-mcp[codex]" in problem["fix"]
    assert report["configFiles"] == [
        {"path": str(tmp_path / "home" / "config.toml"), "scope": "user", "exists": False}
    ]
