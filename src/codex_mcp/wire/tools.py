"""Our five tools: their published definitions and rules, validators, and generated models.

The handlers build each result as the tool's generated output model (`CodexCheckOutput`, ...)
from the generated parts (`Event`, `Action`, `TurnResult`, `SessionInfo`, ...), and the server
sends `output_json(result)`: the fields that were set, by their published names, in the published
order, an explicit null kept.

A tool's arguments must satisfy its published input schema and, for `codex_check` and
`codex_session`, its cross-field rules (schemas/tools/rules/), which are published apart because
clients rewrite a top-level `allOf`. Both are enforced here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any, cast

import jsonschema
from pydantic import BaseModel, ValidationError

from codex_mcp._generated._base import ToolOutputModel
from codex_mcp._generated.registry import TOOLS
from codex_mcp._generated.tool_definitions import TOOL_DEFINITIONS, TOOL_RULES
from codex_mcp._generated.tools import (
    Action,
    Auth,
    Backend,
    Codex,
    CodexCheckInput,
    CodexCheckOutput,
    CodexInput,
    CodexOutput,
    CodexReplyInput,
    CodexReplyOutput,
    CodexSessionInput,
    CodexSessionOutput,
    CodexSetupInput,
    CodexSetupOutput,
    ConfigFile,
    Digest,
    DigestCommand,
    DigestFile,
    Event,
    Execution,
    InteractionState,
    Problem,
    Progress,
    Protocol,
    RecommendedNextAction,
    SessionInfo,
    Steered,
    TokenUsage,
    TurnError,
    TurnResult,
    WaitEntry,
    WorktreeChanges,
    WorktreeCleanup,
    WorktreeFile,
    WorktreeInfo,
)
from codex_mcp._generated.tools import (
    Host as HostCheck,  # a host's state in codex_setup; `codex_mcp.hosts.Host` is its settings
)
from codex_mcp.errors import CodexMcpError

__all__ = [
    "TOOL_NAMES",
    "Action",
    "Auth",
    "Backend",
    "Codex",
    "CodexCheckInput",
    "CodexCheckOutput",
    "CodexInput",
    "CodexOutput",
    "CodexReplyInput",
    "CodexReplyOutput",
    "CodexSessionInput",
    "CodexSessionOutput",
    "CodexSetupInput",
    "CodexSetupOutput",
    "ConfigFile",
    "Digest",
    "DigestCommand",
    "DigestFile",
    "Event",
    "Execution",
    "HostCheck",
    "InteractionState",
    "Problem",
    "Progress",
    "Protocol",
    "RecommendedNextAction",
    "SessionInfo",
    "Steered",
    "TokenUsage",
    "ToolOutputModel",
    "TurnError",
    "TurnResult",
    "WaitEntry",
    "WorktreeChanges",
    "WorktreeCleanup",
    "WorktreeFile",
    "WorktreeInfo",
    "input_problems",
    "output_json",
    "output_model",
    "output_problems",
    "parse_input",
    "tool_definition",
    "tool_models",
    "tool_rules",
]

TOOL_NAMES: tuple[str, ...] = tuple(TOOL_DEFINITIONS)


def tool_definition(name: str) -> dict[str, Any]:
    """The tool exactly as schemas/tools/<name>.json publishes it (a copy: callers may change it)."""
    return copy.deepcopy(TOOL_DEFINITIONS[name])


def tool_rules(name: str, kind: str) -> dict[str, Any] | None:
    """The cross-field rules (a JSON Schema) a tool's `input` or `output` must also satisfy, as
    schemas/tools/rules/<name>.<kind>.json publishes them (a copy), or None when it has none."""
    rules = TOOL_RULES.get(name, {}).get(kind)
    return None if rules is None else copy.deepcopy(rules)


def tool_models(name: str) -> tuple[Any, Any]:
    """The generated (input model, output model) of a tool."""
    return TOOLS[name]


def output_model(name: str) -> type[ToolOutputModel]:
    """The generated output model of a tool: what its handler returns."""
    return TOOLS[name][1]


def output_json(output: ToolOutputModel) -> dict[str, Any]:
    """A result as the client gets it: the fields that were set (an explicit null included), by
    their published names. Python objects, not JSON text: a lone surrogate in a string from Codex
    stays for the server to replace, and a record built unchecked (`model_construct`) is dumped as
    it holds, without warnings about its types."""
    return output.model_dump(by_alias=True, exclude_unset=True, warnings=False)


@cache
def _validator(name: str, key: str) -> Any:
    """`rules`: what the models cannot hold; `input`/`output`: the published schema and its rules."""
    schema = TOOL_DEFINITIONS[name]
    if key == "rules":
        # What the models cannot hold: cheap to check on every call.
        inputs = schema["inputSchema"]
        blind = _model_blind(inputs, inputs.get("$defs", {}))
        rules = TOOL_RULES.get(name, {}).get("input", {})
        return jsonschema.Draft202012Validator(
            {"allOf": [*rules.get("allOf", []), *([blind] if blind else [])]}
        )
    published = jsonschema.Draft202012Validator(schema[f"{key}Schema"])
    rules = TOOL_RULES.get(name, {}).get(key)
    return _Both(published, None if rules is None else jsonschema.Draft202012Validator(rules))


class _Both:
    """A published schema and its rules as one validator; a rule's errors say `from_rules`."""

    def __init__(self, schema: Any, rules: Any) -> None:
        self._schema = schema
        self._rules = rules

    def iter_errors(self, instance: object) -> Iterator[Any]:
        yield from self._schema.iter_errors(instance)
        if self._rules is not None:
            for error in self._rules.iter_errors(instance):
                error.from_rules = True
                yield error


# Keywords the generated models do not enforce (a `list` takes duplicates), and the size bounds of a
# schema without a type (the model holds it as `Any`: a config value may be a string, list or table).
_MODEL_BLIND_KEYWORDS = ("uniqueItems",)
_UNTYPED_BOUNDS = ("maxLength", "maxItems", "maxProperties")


def _model_blind(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` cut down to the keywords the models do not enforce and the structure leading to them."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = defs[ref.rsplit("/", 1)[1]]
    blind = _MODEL_BLIND_KEYWORDS if "type" in schema else (*_MODEL_BLIND_KEYWORDS, *_UNTYPED_BOUNDS)
    kept: dict[str, Any] = {key: schema[key] for key in blind if key in schema}
    properties = {
        name: sub
        for name, value in schema.get("properties", {}).items()
        if (sub := _model_blind(value, defs)) is not None
    }
    if properties:
        kept["properties"] = properties
    for key in ("items", "additionalProperties"):
        value = schema.get(key)
        if isinstance(value, dict) and (sub := _model_blind(cast(dict[str, Any], value), defs)) is not None:
            kept[key] = sub
    return kept or None


_MAX_LISTED_PROBLEMS = 3


def parse_input(name: str, arguments: dict[str, Any]) -> Any:
    """`arguments` as the tool's generated input model, or INVALID_ARGUMENT naming the field.

    The strict model check is the fast path (microseconds); it takes only the published names.
    Then the tool's published rules (schemas/tools/rules/) and the keywords the model cannot hold
    (`uniqueItems`) are checked, and the published schema words the error when the model refuses
    (an unknown field says where it belongs when the tool declares it elsewhere).

    Raises:
        CodexMcpError: INVALID_ARGUMENT with `field` set.
    """
    model = TOOLS[name][0]
    try:
        parsed = model.model_validate(arguments, strict=True)
    except ValidationError as exc:
        _raise_first(input_problems(name, arguments) or [_pydantic_problem(exc)])
        raise  # unreachable: _raise_first raised
    if _sets_null(parsed):
        # The models read null as an absent optional field; the published schema allows no null.
        _raise_first(input_problems(name, arguments))
    rules = _validator(name, "rules")
    _raise_first([_describe(error, arguments, name) for error in rules.iter_errors(arguments)])
    return parsed


def _raise_first(problems: list[tuple[str, str]]) -> None:
    if not problems:
        return
    field, message = problems[0]
    extra = [text for _, text in problems[1:_MAX_LISTED_PROBLEMS]]
    detail = message + (f" (also: {'; '.join(extra)})" if extra else "")
    raise CodexMcpError("INVALID_ARGUMENT", detail, field=field)


def _sets_null(value: object) -> bool:
    """Whether a parsed model, or a model nested in it, has a field explicitly set to null."""
    if isinstance(value, BaseModel):
        return any(
            getattr(value, field) is None or _sets_null(getattr(value, field))
            for field in value.model_fields_set
        )
    if isinstance(value, dict | list):
        items = (
            cast(dict[str, object], value).values() if isinstance(value, dict) else cast(list[object], value)
        )
        return any(_sets_null(item) for item in items if isinstance(item, BaseModel))
    return False


def _pydantic_problem(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    field = _json_path(list(first["loc"]))
    return field, f"{field}: {first['msg']}"


def input_problems(name: str, arguments: object) -> list[tuple[str, str]]:
    """(field, message) for each way `arguments` breaks the tool's published input schema or its
    rules, worst first."""
    errors = list(_validator(name, "input").iter_errors(arguments))
    if not errors:
        return []
    # The most useful error: a field's own before a cross-field rule's (`decision: 5` also breaks
    # the rule on `execpolicy_amendment`, but the fault is decision's), then the shallowest, then a
    # concrete one before "no branch of anyOf".
    best = min(
        errors,
        key=lambda e: (
            getattr(e, "from_rules", False),
            len(list(e.path)),
            e.validator in ("anyOf", "oneOf"),
        ),
    )
    ordered: list[Any] = [best, *(error for error in errors if error is not best)]
    return [_describe(error, arguments, name) for error in ordered]


def output_problems(name: str, result: object) -> list[tuple[str, str]]:
    """(field, message) for each way `result` breaks the tool's published output schema or rules."""
    return [_describe(error, result) for error in _validator(name, "output").iter_errors(result)]


_MAX_MESSAGE = 300


def _describe(error: Any, instance: object, tool: str | None = None) -> tuple[str, str]:
    path = [*error.path]
    where = _json_path(path)
    kind = error.validator
    if kind == "required":
        missing = str(error.message).split("'")[1]
        return _json_path(
            [*path, missing]
        ), f"{_json_path([*path, missing])} is required{_condition(error, tool)}"
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        field = _json_path([*path, extra[0]]) if extra else where
        return field, "; ".join(_unknown_field(tool, path, name) for name in extra)
    instance_value: object = error.instance
    if kind == "not" and isinstance(instance_value, dict):
        present = set(cast(dict[str, Any], instance_value))
        negated = error.validator_value
        forbidden = [
            key
            for option in negated.get("anyOf", [negated])
            for key in option.get("required", [])
            if key in present
        ]
        if forbidden:
            condition = _condition(error, tool)
            return _json_path([*path, forbidden[0]]), f"{forbidden[0]} is not allowed{condition}"
    if kind in _SIZE_UNITS:
        return where or "(arguments)", _over_limit(error, where or "arguments")
    message = str(error.message)
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    return where or "(arguments)", f"{where or 'arguments'}: {message}"


_SIZE_UNITS = {"maxLength": "characters", "maxItems": "items", "maxProperties": "keys"}


def _over_limit(error: Any, where: str) -> str:
    """`where: N units, over the limit of M` (the value itself may be megabytes: never quoted whole)."""
    size = len(error.instance)
    limit = f"over the limit of {error.validator_value:,}"
    if "propertyNames" in error.relative_schema_path:
        return f"{where}: the key {str(error.instance)[:40]!r}... has {size:,} characters, {limit}"
    return f"{where}: {size:,} {_SIZE_UNITS[error.validator]}, {limit}"


def _unknown_field(tool: str | None, path: list[Any], name: str) -> str:
    """`unknown field X`, and where X (or the field X misspells as snake_case) belongs instead."""
    text = f"unknown field {_json_path([*path, name])}"
    if tool is None:
        return text
    here = tuple(path)
    same_object: list[str] = []
    elsewhere: list[tuple[tuple[str, ...], str]] = []
    for declared, places in _declared_fields(tool).items():
        if declared != name and _snake(declared) != name:
            continue
        for place in places:
            if _at(place, here):
                if declared != name:
                    same_object.append(declared)
            else:
                elsewhere.append((place, declared))
    if same_object:
        return f"{text}: the field is {_json_path([*path, same_object[0]])}"
    if not elsewhere:
        return text
    if all(declared == name for _, declared in elsewhere):
        return f"{text}: it belongs {' or '.join(_place(place, declared) for place, declared in elsewhere)}"
    guesses = " or ".join(_json_path([*place, declared]) for place, declared in elsewhere)
    return f"{text}: did you mean {guesses}?"


_WILDCARD = "<key>"


def _at(place: tuple[str, ...], path: tuple[Any, ...]) -> bool:
    """Whether the object at `path` is one the declared `place` (with `<key>` wildcards) names."""
    return len(place) == len(path) and all(
        want in (_WILDCARD, str(got)) for want, got in zip(place, path, strict=True)
    )


def _place(place: tuple[str, ...], declared: str) -> str:
    full = _json_path([*place, declared])
    return f"at the top level ({full})" if not place else f"under {_json_path(list(place))} ({full})"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@cache
def _declared_fields(tool: str) -> dict[str, list[tuple[str, ...]]]:
    """Every property name of the tool's input schema -> the objects declaring it (paths, `<key>`
    standing for any key of a map, array items not distinguished from their array)."""
    schema = TOOL_DEFINITIONS[tool]["inputSchema"]
    defs: dict[str, Any] = schema.get("$defs", {})
    found: dict[str, list[tuple[str, ...]]] = {}
    stack: list[tuple[dict[str, Any], tuple[str, ...]]] = [(schema, ())]
    while stack:
        node, place = stack.pop()
        ref = node.get("$ref")
        if isinstance(ref, str):
            node = defs[ref.rsplit("/", 1)[1]]
        for key, sub in cast(dict[str, Any], node.get("properties", {})).items():
            found.setdefault(key, []).append(place)
            stack.append((sub, (*place, key)))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            stack.append((cast(dict[str, Any], extra), (*place, _WILDCARD)))
        items = node.get("items")
        if isinstance(items, dict):
            stack.append((cast(dict[str, Any], items), place))
    return found


def _condition(error: Any, tool: str | None) -> str:
    """` with action=poll` (or ` unless decision=...`): when the cross-field rule `error` broke applies."""
    parts = list(error.schema_path)
    if tool is None or len(parts) < 3 or parts[0] != "allOf" or parts[2] not in ("then", "else"):
        return ""
    entries: list[Any] = TOOL_RULES.get(tool, {}).get("input", {}).get("allOf", [])
    index = parts[1]
    if not isinstance(index, int) or index >= len(entries):
        return ""
    tested: dict[str, Any] = entries[index].get("if", {}).get("properties", {})
    instance: object = error.instance
    terms: list[str] = []
    for key, test in tested.items():
        if parts[2] == "then" and isinstance(instance, dict):
            terms.append(f"{key}={_said(cast(dict[str, Any], instance).get(key))}")
        else:
            values = [test["const"]] if "const" in test else test.get("enum", [])
            terms.append(f"{key}={'|'.join(_said(value) for value in values)}")
    return (" with " if parts[2] == "then" else " unless ") + ", ".join(terms)


def _said(value: object) -> str:
    """A rule's value as the caller writes it: `poll`, and booleans as JSON has them (`true`)."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _json_path(parts: list[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path
