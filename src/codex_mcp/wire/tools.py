"""Our five tools: their published definitions, validators, and generated input models."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, cast

import jsonschema
from pydantic import BaseModel, ValidationError

from codex_mcp._generated.registry import TOOLS
from codex_mcp._generated.tool_definitions import TOOL_DEFINITIONS
from codex_mcp._generated.tools import (
    CodexCheckInput,
    CodexInput,
    CodexReplyInput,
    CodexSessionInput,
    CodexSetupInput,
)
from codex_mcp.errors import CodexMcpError

__all__ = [
    "TOOL_NAMES",
    "CodexCheckInput",
    "CodexInput",
    "CodexReplyInput",
    "CodexSessionInput",
    "CodexSetupInput",
    "input_problems",
    "output_problems",
    "parse_input",
    "tool_definition",
    "tool_models",
]

TOOL_NAMES: tuple[str, ...] = tuple(TOOL_DEFINITIONS)


def tool_definition(name: str) -> dict[str, Any]:
    """The tool exactly as schemas/tools/<name>.json publishes it (a copy: callers may change it)."""
    return copy.deepcopy(TOOL_DEFINITIONS[name])


def tool_models(name: str) -> tuple[Any, Any]:
    """The generated (input model, output model) of a tool."""
    return TOOLS[name]


@cache
def _validator(name: str, key: str) -> Any:
    schema = TOOL_DEFINITIONS[name]
    if key == "rules":
        # What the models cannot hold: cheap to check on every call.
        inputs = schema["inputSchema"]
        blind = _model_blind(inputs, inputs.get("$defs", {}))
        return jsonschema.Draft202012Validator(
            {"allOf": [*inputs.get("allOf", []), *([blind] if blind else [])]}
        )
    return jsonschema.Draft202012Validator(schema[key])


# Keywords the generated models do not enforce (a `list` takes duplicates).
_MODEL_BLIND_KEYWORDS = ("uniqueItems",)


def _model_blind(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` cut down to the keywords the models do not enforce and the structure leading to them."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = defs[ref.rsplit("/", 1)[1]]
    kept: dict[str, Any] = {key: schema[key] for key in _MODEL_BLIND_KEYWORDS if key in schema}
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

    The strict model check is the fast path (microseconds); the published schema is consulted for
    the cross-field rules and the keywords the model cannot hold (`uniqueItems`), and to word the
    error when the model refuses.

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
    _raise_first([_describe(error, arguments) for error in rules.iter_errors(arguments)])
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
    """(field, message) for each way `arguments` breaks the tool's published input schema, worst first."""
    errors = list(_validator(name, "inputSchema").iter_errors(arguments))
    if not errors:
        return []
    # The most useful error: a field's own before a cross-field rule's (`decision: 5` also breaks
    # the rule on `execpolicy_amendment`, but the fault is decision's), then the shallowest, then a
    # concrete one before "no branch of anyOf".
    best = min(
        errors,
        key=lambda e: (
            list(e.schema_path)[:1] == ["allOf"],
            len(list(e.path)),
            e.validator in ("anyOf", "oneOf"),
        ),
    )
    ordered: list[Any] = [best, *(error for error in errors if error is not best)]
    return [_describe(error, arguments) for error in ordered]


def output_problems(name: str, result: object) -> list[tuple[str, str]]:
    """(field, message) for each way `result` breaks the tool's published output schema."""
    return [_describe(error, result) for error in _validator(name, "outputSchema").iter_errors(result)]


_MAX_MESSAGE = 300


def _describe(error: Any, instance: object) -> tuple[str, str]:
    path = [*error.path]
    where = _json_path(path)
    kind = error.validator
    if kind == "required":
        missing = str(error.message).split("'")[1]
        return _json_path([*path, missing]), f"{_json_path([*path, missing])} is required"
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        field = _json_path([*path, extra[0]]) if extra else where
        return field, f"unknown field(s) {', '.join(_json_path([*path, e]) for e in extra)}"
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
            context = _context(instance)
            return _json_path([*path, forbidden[0]]), f"{forbidden[0]} is not allowed{context}"
    message = str(error.message)
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    return where or "(arguments)", f"{where or 'arguments'}: {message}"


def _context(instance: object) -> str:
    if isinstance(instance, dict):
        parts = [f"{key}={instance[key]}" for key in ("action",) if isinstance(instance.get(key), str)]  # pyright: ignore[reportUnknownMemberType,reportUnknownArgumentType]
        if parts:
            return " with " + ", ".join(parts)
    return ""


def _json_path(parts: list[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path
