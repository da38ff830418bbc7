"""Plans of tool calls that a scripted model follows, carried in the prompt itself.

Both scripted models (the Responses mock for Codex as a client, the Messages mock for Claude Code)
stay stateless: the user prompt holds ``<plan>[...]</plan>``, a JSON list of ``{"tool", "arguments"}``,
and the model makes call ``i`` when the conversation since that prompt holds ``i`` results of planned
calls, then answers :data:`PLAN_DONE`. A string argument equal to ``$SESSION`` (or containing it) is
filled with the first ``sess_…`` id found in the latest tool result that has one, so a plan can start
a session and then poll it without knowing its id in advance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, cast

PLAN_PATTERN: Final = re.compile(r"<plan>(.*?)</plan>", re.DOTALL)
SESSION_ID: Final = re.compile(r"sess_[0-9a-f]{12}")
SESSION_PLACEHOLDER: Final = "$SESSION"
PLAN_DONE: Final = "PLAN DONE"
PLAN_FAILED: Final = "PLAN FAILED"


class PlanError(ValueError):
    """A plan that cannot be followed (bad JSON, or a placeholder with nothing to fill it)."""


@dataclass(frozen=True)
class PlannedCall:
    """One tool call of a plan: our tool's own name (``codex``, ``codex_check``, …) and its arguments."""

    tool: str
    arguments: Mapping[str, object]

    def as_json(self) -> dict[str, object]:
        """The plan entry as it is written into a prompt."""
        return {"tool": self.tool, "arguments": dict(self.arguments)}


def call(tool: str, **arguments: object) -> PlannedCall:
    """A planned call of ``tool`` with keyword ``arguments``."""
    return PlannedCall(tool, arguments)


def plan_prompt(calls: Sequence[PlannedCall], preface: str = "") -> str:
    """A prompt that carries ``calls`` as a plan (after an optional ``preface``)."""
    body = json.dumps([c.as_json() for c in calls], separators=(",", ":"))
    return f"{preface} <plan>{body}</plan>".strip()


def find_plan(text: str) -> list[PlannedCall] | None:
    """The plan in ``text``, or None when it has none."""
    found = PLAN_PATTERN.search(text)
    if found is None:
        return None
    try:
        raw: object = json.loads(found.group(1))
    except ValueError as exc:
        raise PlanError(f"the plan is not JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise PlanError("the plan must be a JSON list")
    calls: list[PlannedCall] = []
    for entry in cast(list[object], raw):
        if not isinstance(entry, dict):
            raise PlanError(f"a plan entry must be an object: {entry!r}")
        item = cast(dict[str, object], entry)
        tool, arguments = item.get("tool"), item.get("arguments", {})
        if not isinstance(tool, str) or not isinstance(arguments, dict):
            raise PlanError(f"a plan entry needs a string 'tool' and an object 'arguments': {item!r}")
        calls.append(PlannedCall(tool, cast(dict[str, object], arguments)))
    return calls


def latest_session_id(results: Sequence[str]) -> str | None:
    """The first session id of the latest result that holds one."""
    for text in reversed(results):
        found = SESSION_ID.search(text)
        if found:
            return found.group(0)
    return None


def _fill(value: object, session_id: str | None) -> object:
    if isinstance(value, str) and SESSION_PLACEHOLDER in value:
        if session_id is None:
            raise PlanError(f"{SESSION_PLACEHOLDER} used before any tool result held a session id")
        return value.replace(SESSION_PLACEHOLDER, session_id)
    if isinstance(value, dict):
        return {k: _fill(v, session_id) for k, v in cast(dict[str, object], value).items()}
    if isinstance(value, list):
        return [_fill(v, session_id) for v in cast(list[object], value)]
    return value


def next_call(plan: Sequence[PlannedCall], results: Sequence[str]) -> PlannedCall | None:
    """The call to make after ``results`` (one per planned call made so far), or None when done."""
    if len(results) >= len(plan):
        return None
    planned = plan[len(results)]
    filled = _fill(dict(planned.arguments), latest_session_id(results))
    return PlannedCall(planned.tool, cast(dict[str, object], filled))


def final_text(results: Sequence[str]) -> str:
    """The model's closing answer once every planned call has its result."""
    return f"{PLAN_DONE} after {len(results)} calls."
