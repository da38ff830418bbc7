"""codegen reproduces the committed models exactly, and notices any schema edit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codegen import paths

REPO = paths.REPO_ROOT


def _run_codegen(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )


def test_committed_generated_code_matches_the_schemas() -> None:
    completed = _run_codegen(REPO, "--check")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "up to date" in completed.stdout


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the parts codegen reads and writes, to edit without touching the real tree."""
    root = tmp_path_factory.mktemp("repo")
    for part in (
        "codegen",
        "schemas",
        "src/codex_mcp/_generated",
        "src/codex_mcp/resources/data",
        "src/codex_mcp/server/data",
    ):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(
    ("schema", "old", "new"),
    [
        ("schemas/tools/codex.json", '"Task or question for the Codex agent."', '"The task."'),
        ("schemas/exec/exec_events.schema.json", '"aggregated_output"', '"aggregated_text"'),
    ],
)
def test_editing_a_schema_makes_the_check_fail_with_a_diff(
    repo_copy: Path, schema: str, old: str, new: str
) -> None:
    target = repo_copy / schema
    original = target.read_text(encoding="utf-8")
    assert old in original
    target.write_text(original.replace(old, new), encoding="utf-8")
    try:
        completed = _run_codegen(repo_copy, "--check")
    finally:
        target.write_text(original, encoding="utf-8")
    assert completed.returncode == 1
    assert "drifted" in completed.stdout
    assert "+++ src/codex_mcp/_generated/" in completed.stdout


def test_an_edited_app_server_bundle_is_refused_by_its_pin(repo_copy: Path) -> None:
    bundle = repo_copy / "schemas/app-server/codex_app_server_protocol.schemas.json"
    original = bundle.read_bytes()
    bundle.write_bytes(original.replace(b'"turn/completed"', b'"turn/finished"', 1))
    try:
        completed = _run_codegen(repo_copy, "--check")
    finally:
        bundle.write_bytes(original)
    assert completed.returncode != 0
    assert "does not match PINNED.json" in completed.stderr
