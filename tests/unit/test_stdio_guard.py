"""The stdio guard: a terminal on stdin/stdout blocks a strict start and warns otherwise."""

from __future__ import annotations

import io
import os
from collections.abc import Generator
from contextlib import contextmanager
from typing import TextIO

from codex_mcp.stdio_guard import check_stdio


@contextmanager
def _terminal() -> Generator[TextIO]:
    """A real pseudo-terminal as a text stream."""
    leader, follower = os.openpty()
    stream = os.fdopen(follower, "w")
    try:
        yield stream
    finally:
        stream.close()
        os.close(leader)


def test_pipes_pass_in_every_mode() -> None:
    for mode in ("auto", "strict", "off"):
        report = check_stdio({"CODEX_MCP_STDIO_MODE": mode}, io.StringIO(), io.StringIO())
        assert report.blocking == []
        assert report.warnings == []


def test_a_terminal_on_stdout_is_a_blocking_risk_unless_the_guard_is_off() -> None:
    with _terminal() as tty:
        strict = check_stdio({"CODEX_MCP_STDIO_MODE": "strict"}, io.StringIO(), tty)
        auto = check_stdio({}, io.StringIO(), tty)
        off = check_stdio({"CODEX_MCP_STDIO_MODE": "off"}, io.StringIO(), tty)
    assert strict.mode == "strict"
    assert ["stdout" in reason for reason in strict.blocking] == [True]
    assert auto.mode == "auto"
    assert len(auto.blocking) == 1
    assert off.blocking == []


def test_an_unknown_mode_falls_back_to_auto_with_a_note() -> None:
    report = check_stdio({"CODEX_MCP_STDIO_MODE": "paranoid"}, io.StringIO(), io.StringIO())
    assert report.mode == "auto"
    assert "paranoid" in report.warnings[0]


def test_powershell_on_windows_is_a_warning() -> None:
    report = check_stdio({"PSModulePath": "C:\\ps"}, io.StringIO(), io.StringIO(), platform="win32")
    assert report.blocking == []
    assert "NoProfile" in report.warnings[0]
