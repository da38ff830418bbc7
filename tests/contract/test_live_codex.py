"""The suite drives the real pinned Codex through every scenario and checks each message it sends.

The committed transcripts pin what Codex said when they were recorded; these tests check what the
installed Codex says now, against the same schemas and models.
"""

from __future__ import annotations

import pytest

from tests.contract.record_transcripts import APP_SERVER_RECIPES, EXEC_RECIPES, record_app_server, record_exec
from tests.contract.test_transcripts import check_app_server_records, check_exec_records

pytestmark = pytest.mark.real_codex


@pytest.mark.parametrize("scenario", sorted(APP_SERVER_RECIPES))
def test_live_app_server_messages_match_the_schemas_and_models(scenario: str) -> None:
    counts = check_app_server_records(record_app_server(scenario, APP_SERVER_RECIPES[scenario]))
    assert counts["notification"] >= 3


@pytest.mark.parametrize("scenario", sorted(EXEC_RECIPES))
def test_live_exec_events_match_the_schemas_and_models(scenario: str) -> None:
    assert check_exec_records(record_exec(scenario, EXEC_RECIPES[scenario])) >= 3
