"""Every recorded app-server transcript, replayed through ingest, shows what its golden file holds.

The golden files (`golden/app_server/<transcript>.json`) are what `replay.replay` makes of each
transcript: the sessions' events as `codex_check` `full` mode shows them, their status and result,
and what we answered Codex. They change only when asked to: run

    CODEX_MCP_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/contract/test_golden_replays.py

(or pass `--update-golden`), then read the diff before committing it.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, Final

import pytest

from tests.contract.replay import replay

HERE: Final = Path(__file__).parent
TRANSCRIPTS: Final = sorted((HERE / "transcripts" / "app_server").glob("*.jsonl"))
GOLDEN: Final = HERE / "golden" / "app_server"
UPDATE_ENV: Final = "CODEX_MCP_UPDATE_GOLDEN"


def _updating(config: pytest.Config) -> bool:
    return os.environ.get(UPDATE_ENV) == "1" or bool(config.getoption("--update-golden"))


def _golden(transcript: Path) -> Path:
    return GOLDEN / f"{transcript.stem}.json"


def _text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.anyio
@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda path: path.stem)
async def test_a_replayed_transcript_shows_what_its_golden_file_holds(
    transcript: Path, request: pytest.FixtureRequest
) -> None:
    shown = await replay(transcript)
    # Never bless an empty replay: every transcript has a session whose turn Codex ended.
    assert shown["sessions"], "the replay made no session"
    assert all(session["events"] for session in shown["sessions"]), "a session recorded nothing"
    assert any(session["result"] for session in shown["sessions"]), "no turn ended"
    golden = _golden(transcript)
    if _updating(request.config):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(_text(shown), encoding="utf-8")
        return
    if not golden.exists():
        pytest.fail(f"{golden.relative_to(HERE)} is missing: write it with {UPDATE_ENV}=1", pytrace=False)
    expected = json.loads(golden.read_text(encoding="utf-8"))
    if shown != expected:
        diff = difflib.unified_diff(
            _text(expected).splitlines(keepends=True),
            _text(shown).splitlines(keepends=True),
            fromfile=f"{golden.name} (golden)",
            tofile=f"{golden.name} (replayed now)",
        )
        pytest.fail(
            f"the replay of {transcript.name} differs from its golden file; if the change is meant, "
            f"rewrite it with {UPDATE_ENV}=1 and review the diff:\n{''.join(diff)}",
            pytrace=False,
        )


def test_every_golden_file_has_its_transcript() -> None:
    stale = sorted({path.stem for path in GOLDEN.glob("*.json")} - {path.stem for path in TRANSCRIPTS})
    assert stale == [], f"golden files without a transcript (delete them): {stale}"
