"""Our five tools: their published definitions and generated input/output models."""

from __future__ import annotations

from typing import Any

from codex_mcp._generated.registry import TOOLS
from codex_mcp._generated.tool_definitions import TOOL_DEFINITIONS

TOOL_NAMES: tuple[str, ...] = tuple(TOOL_DEFINITIONS)


def tool_definition(name: str) -> dict[str, Any]:
    """The tool exactly as schemas/tools/<name>.json publishes it."""
    return TOOL_DEFINITIONS[name]


def tool_models(name: str) -> tuple[Any, Any]:
    """The generated (input model, output model) of a tool."""
    return TOOLS[name]
