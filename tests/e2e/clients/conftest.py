"""Fixtures of the real-client tests: the scripted Messages model and the plan every client follows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.messages_model import MessagesModelServer


@pytest.fixture
def messages_model() -> Iterator[MessagesModelServer]:
    """A running scripted Messages API (Claude Code's model), stopped after the test."""
    with MessagesModelServer() as server:
        yield server
