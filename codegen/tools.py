"""Our tools' published schemas and rules: checked, combined for the model generator, embedded."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from codegen.jsonwalk import JsonSchema, objects_in, refs_in, rewrite_refs
from codegen.render import TOOL_OUTPUT_BASE

# Keys the generator has no use for.
_VALIDATION_ONLY_KEYS = ("$schema",)
# Top-level keys a published input schema must not have: clients rewrite them. Claude Code flattens
# a top-level allOf/anyOf into its parameter list and tells the model "all listed parameters apply
# together", the opposite of per-action rules; those rules live in rules/ instead.
_UNPORTABLE_KEYS = ("allOf", "anyOf", "oneOf", "if", "then", "else", "not")
RULE_KINDS = ("input", "output")

# The tool models hold a `format: date-time` string as the text we send (`2026-01-02T03:04:05.678Z`,
# from `sessions.events.now_iso`), not as a datetime: pydantic's AwareDatetime would re-render it
# (`...05.678000Z`, `+00:00`) and change what clients read. The published schemas keep the format.
GENERATOR_FLAGS: tuple[str, ...] = ("--type-mappings", "string+date-time=string")
# What the models check of such a string instead: RFC 3339's date-time (jsonschema treats `format`
# as an annotation, so the published schema checks no more than this).
DATE_TIME = "DateTime"
DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


@dataclass(frozen=True)
class ToolSpec:
    """One tool file: the MCP tool name and the titles of its input and output models."""

    name: str
    input_model: str
    output_model: str


def tool_files(tools_dir: Path) -> list[Path]:
    """The tool definition files (every `*.json` but the shared error shape), sorted."""
    return sorted(path for path in tools_dir.glob("*.json") if path.name != "error.json")


def rule_files(tools_dir: Path) -> list[Path]:
    """The cross-field rule files, `rules/<tool>.<input|output>.json`, sorted."""
    return sorted((tools_dir / "rules").glob("*.json"))


def portability_problems(tool: JsonSchema) -> list[str]:
    """Why a tool's input schema would be misread by a client (empty when it is portable).

    One tool whose `inputSchema` lacks `type: "object"` makes Claude Code drop every tool of the
    server; a top-level combinator is flattened into a parameter list that says the opposite.
    """
    schema: JsonSchema = tool.get("inputSchema", {})
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append('inputSchema must have type: "object"')
    problems += [f"inputSchema must not have a top-level {key}" for key in _UNPORTABLE_KEYS if key in schema]
    return problems


def load_rules(tools_dir: Path) -> dict[str, dict[str, JsonSchema]]:
    """tool -> {"input"|"output": rules schema}, from `rules/`; every file must name a tool and a kind."""
    tools = {json.loads(path.read_text(encoding="utf-8"))["name"] for path in tool_files(tools_dir)}
    rules: dict[str, dict[str, JsonSchema]] = {}
    for path in rule_files(tools_dir):
        tool, _, kind = path.name.removesuffix(".json").partition(".")
        if tool not in tools or kind not in RULE_KINDS:
            raise SystemExit(f"rules/{path.name}: name it <tool>.input.json or <tool>.output.json")
        rules.setdefault(tool, {})[kind] = json.loads(path.read_text(encoding="utf-8"))
    return rules


def build_codegen_schema(tools_dir: Path) -> tuple[JsonSchema, list[ToolSpec]]:
    """One schema holding every tool's input and output plus their shared definitions."""
    definitions: dict[str, JsonSchema] = {}
    specs: list[ToolSpec] = []
    for path in tool_files(tools_dir):
        tool = json.loads(path.read_text(encoding="utf-8"))
        problems = portability_problems(tool)
        if problems:
            raise SystemExit(f"{path.name}: {'; '.join(problems)} (cross-field rules go in rules/)")
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
    _name_date_times(definitions)
    _base_outputs_on(TOOL_OUTPUT_BASE, definitions, [spec.output_model for spec in specs])
    return combined, specs


def _base_outputs_on(base: str, definitions: dict[str, JsonSchema], outputs: list[str]) -> None:
    """Give every object of the outputs' `$ref` closure, inline ones too, the base class `base`.

    Nothing an input uses is reached: no input model gets it.
    """
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(refs_in(definitions[name]))
        for node in objects_in(definitions[name]):
            if node.get("type") == "object":
                node["customBasePath"] = base


def _name_date_times(definitions: dict[str, JsonSchema]) -> None:
    """Point every `format: date-time` string at one `DateTime` definition (a string of that
    pattern), so the models spell the check once."""
    if DATE_TIME in definitions:
        raise SystemExit(f"$defs/{DATE_TIME} is the name codegen gives date-time strings; rename it")
    found = False
    for node in objects_in(definitions):
        if node.get("format") == "date-time" and node.get("type") == "string" and "pattern" not in node:
            del node["type"], node["format"]
            node["$ref"] = f"#/definitions/{DATE_TIME}"
            found = True
    if found:
        definitions[DATE_TIME] = {
            "title": DATE_TIME,
            "description": "An RFC 3339 date-time, e.g. 2026-01-02T03:04:05.678Z.",
            "type": "string",
            "format": "date-time",
            "pattern": DATE_TIME_PATTERN,
        }


def _embedded(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if '"""' in text or "\\\n" in text:
        raise SystemExit(f"{path.name}: cannot be embedded as a raw string")
    return f'json.loads(\n        r"""{text.rstrip()}"""\n    )'


def render_definitions_module(file_header: str, sources: list[Path], tools_dir: Path) -> str:
    """A module holding each tool file and rule file verbatim, so the installed package advertises
    and enforces exactly them."""
    lines = [
        file_header,
        '"""Our tools exactly as published in schemas/tools/, and their rules. Generated; do not edit."""',
        "",
        "import json",
        "from typing import Any, Final",
        "",
        "TOOL_DEFINITIONS: Final[dict[str, dict[str, Any]]] = {",
    ]
    for path in sources:
        name = json.loads(path.read_text(encoding="utf-8"))["name"]
        lines.append(f"    {name!r}: {_embedded(path)},")
    lines += [
        "}",
        "",
        "# tool -> kind -> the cross-field rules (schemas/tools/rules/<tool>.<kind>.json) its",
        "# arguments (input) or results (output) must satisfy besides the tool's own schema.",
        "TOOL_RULES: Final[dict[str, dict[str, dict[str, Any]]]] = {",
    ]
    load_rules(tools_dir)  # checks the names
    by_tool: dict[str, list[Path]] = {}
    for path in rule_files(tools_dir):
        by_tool.setdefault(path.name.partition(".")[0], []).append(path)
    for tool, paths in by_tool.items():
        lines.append(f"    {tool!r}: {{")
        for path in paths:
            kind = path.name.removesuffix(".json").partition(".")[2]
            lines.append(f"        {kind!r}: {_embedded(path)},")
        lines.append("    },")
    lines += ["}", ""]
    return "\n".join(lines)
