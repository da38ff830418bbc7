"""Our published schemas (each tool's input and output, the error shape) and the enums they accept."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final, cast

from codex_mcp.wire.tools import TOOL_NAMES, tool_definition, tool_rules

# Relative path (as in `codex-mcp:///schemas/<path>` and `schemas export DIR`) of the error shape.
ERROR_SCHEMA_PATH: Final = "tools/error.json"


# Relative paths of the session record schemas (codex-mcp:///sessions/<id>/…), from schemas/resources/.
RECORD_SCHEMA_PATHS: Final = ("resources/session-events-page.json", "resources/session-turns.json")


def _data_schema(name: str) -> dict[str, Any]:
    text = resources.files("codex_mcp.resources").joinpath("data", name).read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def _error_schema() -> dict[str, Any]:
    return _data_schema("error.schema.json")


@cache
def published_schemas() -> dict[str, dict[str, Any]]:
    """Relative path -> schema: `tools/<tool>.input.json`, `tools/<tool>.output.json`, the cross-field
    rules the server also enforces (`tools/<tool>.input-rules.json`, `….output-rules.json`), the error
    shape."""
    schemas: dict[str, dict[str, Any]] = {}
    for name in TOOL_NAMES:
        definition = tool_definition(name)
        schemas[f"tools/{name}.input.json"] = definition["inputSchema"]
        schemas[f"tools/{name}.output.json"] = definition["outputSchema"]
        for kind in ("input", "output"):
            rules = tool_rules(name, kind)
            if rules is not None:
                schemas[f"tools/{name}.{kind}-rules.json"] = rules
    schemas[ERROR_SCHEMA_PATH] = _error_schema()
    for path in RECORD_SCHEMA_PATHS:
        schemas[path] = _data_schema(path.removeprefix("resources/").replace(".json", ".schema.json"))
    return schemas


def _known_values(schema: dict[str, Any]) -> list[str]:
    """The enum of a closed enum, or of the known branch of an open one (`anyOf` enum | token)."""
    for option in [schema, *cast(list[dict[str, Any]], schema.get("anyOf", []))]:
        if "enum" in option:
            return [str(value) for value in option["enum"]]
    return []


def _definition(tool: str, name: str) -> dict[str, Any]:
    return cast(dict[str, Any], tool_definition(tool)["inputSchema"]["$defs"][name])


def _property(tool: str, name: str) -> dict[str, Any]:
    return cast(dict[str, Any], tool_definition(tool)["inputSchema"]["properties"][name])


def is_open(tool: str, definition: str) -> bool:
    """Whether an input `$defs` enum also takes values it does not list (passed through to Codex)."""
    return "anyOf" in _definition(tool, definition)


@cache
def accepted_values() -> dict[str, list[str]]:
    """The values our tools accept for each enumerated parameter (open enums: the known ones)."""
    return {
        "approvalPolicy": _known_values(_definition("codex", "ApprovalPolicy")),
        "sandbox": _known_values(_definition("codex", "SandboxMode")),
        "effort": _known_values(_definition("codex", "Effort")),
        "summary": _known_values(_definition("codex", "ReasoningSummary")),
        "personality": _known_values(_definition("codex", "Personality")),
        "collaborationMode": _known_values(_definition("codex", "CollaborationMode")),
        "responseMode": _known_values(_property("codex_check", "responseMode")),
        "decision": _known_values(_property("codex_check", "decision")),
        "codex_check.action": _known_values(_property("codex_check", "action")),
        "codex_session.action": _known_values(_property("codex_session", "action")),
    }
