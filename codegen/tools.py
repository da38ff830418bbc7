"""Combine our tools' published schemas into one schema for the model generator."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from codegen.jsonwalk import JsonSchema, rewrite_refs

# Cross-field rules (`allOf` of if/then) are enforced by validating against the published schema;
# the generator cannot express them, so they are left out of the models.
_VALIDATION_ONLY_KEYS = ("allOf", "$schema")


@dataclass(frozen=True)
class ToolSpec:
    """One tool file: the MCP tool name and the titles of its input and output models."""

    name: str
    input_model: str
    output_model: str


def tool_files(tools_dir: Path) -> list[Path]:
    """The tool definition files (every `*.json` but the shared error shape), sorted."""
    return sorted(path for path in tools_dir.glob("*.json") if path.name != "error.json")


def build_codegen_schema(tools_dir: Path) -> tuple[JsonSchema, list[ToolSpec]]:
    """One schema holding every tool's input and output plus their shared definitions."""
    definitions: dict[str, JsonSchema] = {}
    specs: list[ToolSpec] = []
    for path in tool_files(tools_dir):
        tool = json.loads(path.read_text(encoding="utf-8"))
        titles: list[str] = []
        for key in ("inputSchema", "outputSchema"):
            schema = copy.deepcopy(tool[key])
            for name, shared in schema.pop("$defs", {}).items():
                if name in definitions and definitions[name] != shared:
                    raise SystemExit(f"{path.name}: $defs/{name} differs from another tool's copy")
                definitions[name] = shared
            for dropped in _VALIDATION_ONLY_KEYS:
                schema.pop(dropped, None)
            title = schema["title"]
            if title in definitions:
                raise SystemExit(f"{path.name}: {key} title {title!r} is already used")
            definitions[title] = schema
            titles.append(title)
        specs.append(ToolSpec(tool["name"], titles[0], titles[1]))
    combined: JsonSchema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "CodexMcpTools",
        "definitions": definitions,
    }
    rewrite_refs(combined, "#/$defs/", "#/definitions/")
    return combined, specs


def render_definitions_module(file_header: str, sources: list[Path]) -> str:
    """A module holding each tool file verbatim, so the installed package advertises exactly it."""
    lines = [
        file_header,
        '"""Our tools exactly as published in schemas/tools/. Generated; do not edit."""',
        "",
        "import json",
        "from typing import Any, Final",
        "",
        "TOOL_DEFINITIONS: Final[dict[str, dict[str, Any]]] = {",
    ]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        if '"""' in text or "\\\n" in text:
            raise SystemExit(f"{path.name}: cannot be embedded as a raw string")
        name = json.loads(text)["name"]
        lines.append(f'    {name!r}: json.loads(\n        r"""{text.rstrip()}"""\n    ),')
    lines += ["}", ""]
    return "\n".join(lines)
