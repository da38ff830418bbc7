"""A tool call as the server makes it, on a manager the test holds (usually on the fake backend):
arguments parsed as a client's are, the result read as the client reads it and checked against the
tool's published output schema."""

from __future__ import annotations

from typing import Any

import anyio

from codex_mcp.hosts import Host
from codex_mcp.server import handlers, results
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.wire.tools import output_json, output_model, output_problems, parse_input
from tests.harness.fake_backend import STEP_BOUND_S

Json = dict[str, Any]

_HANDLERS: dict[str, Any] = {
    "codex": handlers.codex,
    "codex_reply": handlers.codex_reply,
    "codex_check": handlers.codex_check,
    "codex_session": handlers.codex_session,
}


async def _no_progress(elapsed_s: float, message: str) -> None:
    return None


async def call_tool(
    manager: SessionManager, name: str, arguments: Json, hosts: tuple[Host, ...] = ()
) -> Json:
    """One tool call; the structured content a client gets."""
    call = handlers.Call(manager_or_error=manager, report_progress=_no_progress, hosts=hosts)
    with anyio.fail_after(STEP_BOUND_S):
        output = await _HANDLERS[name](parse_input(name, arguments), call)
    assert type(output) is output_model(name)
    content = results.success(output_json(output)).structured_content
    assert content is not None
    assert output_problems(name, content) == []
    return content
