"""Core end-to-end tests again, with our server driving the newest npm Codex (0.171.0) instead of the pin.

Each test below is one of the suite's own, collected a second time here with `inner_codex` overridden,
so every CI run checks that the Codex users get from npm today still works under us. The whole suite
runs against it with `CODEX_MCP_TEST_INNER_CODEX=npm` (tests/harness/fixtures.py). Known differences
from the pinned 0.163.0: it never sends `currentTime/read`, and it reports its own version (the tests
that check for the pinned version are left out here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import test_durability, test_sessions
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex, pytest.mark.real_clients]

test_newest_codex_runs_a_plain_session_to_idle = (
    test_sessions.test_a_plain_session_runs_to_idle_with_the_agents_answer
)
test_newest_codex_runs_a_command_once_approved = (
    test_sessions.test_an_accepted_command_approval_runs_the_command
)
test_newest_codex_asks_the_caller_a_question = (
    test_sessions.test_a_user_input_question_round_trips_to_the_model
)
test_newest_codex_interrupts_a_turn = (
    test_sessions.test_interrupt_ends_the_turn_as_interrupted_and_the_session_goes_idle
)
test_newest_codex_continues_a_thread_on_reply = (
    test_sessions.test_a_reply_continues_the_thread_with_its_context
)
test_newest_codex_forks_with_the_parents_context = test_sessions.test_a_fork_answers_with_the_parents_context


@pytest.fixture
def inner_codex(npm_clients: NpmClients) -> Path:
    """The native binary of npm @openai/codex 0.171.0, for every test of this module."""
    return npm_clients.codex_native


async def test_newest_codex_continues_an_idle_session_after_a_restart(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    # The app-server backend only: `thread/resume` in a new Codex process (exec resume is cheaper to skip).
    await test_durability.test_an_idle_session_continues_after_a_restart_with_its_context(
        codex_env, mock_model, "app-server"
    )
