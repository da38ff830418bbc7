"""What clients read is what we enforce: portable input schemas, the rules apart and said in words,
exactly the published field names, and unknown fields that say where they belong."""

from __future__ import annotations

import json
import re
import types as pytypes
import typing
from collections.abc import Iterator
from typing import Any, Final, cast

import pytest
from pydantic import BaseModel

from codegen.tools import portability_problems
from codex_mcp.errors import CodexMcpError
from codex_mcp.resources.published import published_schemas
from codex_mcp.wire.tools import TOOL_NAMES, parse_input, tool_definition, tool_models, tool_rules

Schema = dict[str, Any]

# Top-level keys that Claude Code rewrites (flattening an allOf/anyOf into "all listed parameters
# apply together" or "at least one of"), and the conditionals that only make sense inside them.
UNPORTABLE: Final = ("allOf", "anyOf", "oneOf", "if", "then", "else", "not")
# The smallest valid call of each tool: aliases are added to it (or to an object inside it).
MINIMAL: Final[dict[str, dict[str, Any]]] = {
    "codex_setup": {},
    "codex": {"prompt": "x", "approvalPolicy": "never", "sandbox": "read-only"},
    "codex_reply": {"sessionId": "sess_1", "prompt": "x"},
    "codex_session": {"action": "list"},
    "codex_check": {"action": "poll", "sessionId": "sess_1"},
}


def _refused(tool: str, arguments: dict[str, Any]) -> CodexMcpError:
    with pytest.raises(CodexMcpError) as caught:
        parse_input(tool, arguments)
    assert caught.value.code == "INVALID_ARGUMENT"
    return caught.value


# --- portable schemas ------------------------------------------------------------------------


def _input_schemas() -> Iterator[tuple[str, Schema]]:
    """Every input schema we publish: in tools/list (the tool files verbatim) and as resources and
    `schemas export` files."""
    for tool in TOOL_NAMES:
        yield f"tools/list {tool}", tool_definition(tool)["inputSchema"]
    for path, schema in published_schemas().items():
        if path.endswith(".input.json"):
            yield path, schema


def test_every_published_input_schema_is_an_object_schema_without_top_level_combinators() -> None:
    seen = 0
    for where, schema in _input_schemas():
        seen += 1
        assert schema.get("type") == "object", where
        assert [key for key in UNPORTABLE if key in schema] == [], where
    assert seen == 2 * len(TOOL_NAMES)


def test_codegen_refuses_a_tool_whose_input_schema_a_client_would_misread() -> None:
    tool = tool_definition("codex_check")
    assert portability_problems(tool) == []
    tool["inputSchema"]["allOf"] = [{"required": ["requestId"]}]
    del tool["inputSchema"]["type"]
    assert portability_problems(tool) == [
        'inputSchema must have type: "object"',
        "inputSchema must not have a top-level allOf",
    ]


# --- the rules, apart and in words -----------------------------------------------------------


def _conditions(entry: Schema) -> list[tuple[str, list[Any]]]:
    """(field, the values that make the rule apply) of a rule's `if`; booleans as JSON says them
    (`steer: true`), as the descriptions do."""
    tested = cast(dict[str, Schema], entry["if"]["properties"])
    found = [
        (name, [test["const"]] if "const" in test else list(test["enum"])) for name, test in tested.items()
    ]
    return [(name, [json.dumps(v) if isinstance(v, bool) else v for v in values]) for name, values in found]


def _effects(part: Schema | None) -> tuple[list[str], list[str]]:
    """(required, forbidden) fields of a rule's `then` or `else`."""
    if part is None:
        return [], []
    required = list(part.get("required", []))
    negated: Schema = part.get("not", {})
    options: list[Schema] = negated.get("anyOf", [negated] if negated else [])
    return required, [name for option in options for name in option["required"]]


def _input_rule_entries() -> list[tuple[str, Schema]]:
    return [
        (tool, entry)
        for tool in TOOL_NAMES
        if (rules := tool_rules(tool, "input")) is not None
        for entry in rules["allOf"]
    ]


def test_the_tools_with_per_action_rules_have_them_in_rules_files() -> None:
    assert {tool for tool, _ in _input_rule_entries()} == {"codex_check", "codex_session", "codex_reply"}


def test_rules_name_only_fields_their_schema_declares() -> None:
    for tool in TOOL_NAMES:
        for kind in ("input", "output"):
            rules = tool_rules(tool, kind)
            if rules is None:
                continue
            declared = set(tool_definition(tool)[f"{kind}Schema"]["properties"])
            for entry in rules["allOf"]:
                named = {name for name, _ in _conditions(entry)}
                parts: list[Schema | None] = [entry.get("then"), entry.get("else")]
                for part in parts:
                    required, forbidden = _effects(part)
                    names: Schema = (part or {}).get("propertyNames", {})
                    allowed: list[str] = names.get("enum", [])
                    named |= {*required, *forbidden, *allowed}
                assert named <= declared, (tool, kind, named - declared)


def _description(tool: str, field: str) -> str:
    return str(tool_definition(tool)["inputSchema"]["properties"][field].get("description", ""))


def test_each_rule_is_said_in_the_description_of_every_field_it_requires_or_refuses() -> None:
    checked = 0
    for tool, entry in _input_rule_entries():
        values = [str(value) for _, allowed in _conditions(entry) for value in allowed]
        required, forbidden = _effects(entry["then"])
        for field in required:
            text = _description(tool, field)
            assert "Required" in text, (tool, field, text)
            assert all(value in text for value in values), (tool, field, values, text)
            checked += 1
        for field in forbidden:
            text = _description(tool, field)
            assert "ot allowed" in text, (tool, field, text)
            assert all(value in text for value in values), (tool, field, values, text)
            checked += 1
        _, otherwise = _effects(entry.get("else"))
        for field in otherwise:
            assert "not allowed otherwise" in _description(tool, field), (tool, field)
            checked += 1
    assert checked >= 15


def test_each_tool_with_rules_says_each_actions_required_fields_in_its_description() -> None:
    for tool, entry in _input_rule_entries():
        text = str(tool_definition(tool)["description"])
        required, _ = _effects(entry["then"])
        for field in required:
            assert field in text, (tool, field)
        for _, allowed in _conditions(entry):
            assert all(str(value) in text for value in allowed), (tool, allowed)


# --- exactly the published names -------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The model classes an annotation holds (`X | None`, `list[X]`, `dict[str, X]`, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, pytypes.UnionType) or typing.get_origin(annotation) is not None:
        for argument in typing.get_args(annotation):
            yield from _models_in(argument)


def _python_names(model: type[BaseModel]) -> dict[str, set[str]]:
    """Published name -> the Python field names a generated model (or one nested in it) gives it."""
    names: dict[str, set[str]] = {}
    stack, seen = [model], set[type[BaseModel]]()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        for python_name, info in current.model_fields.items():
            names.setdefault(info.alias or python_name, set()).add(python_name)
            stack.extend(_models_in(info.annotation))
    return names


def _resolve(schema: Schema, defs: dict[str, Schema]) -> Schema:
    ref = schema.get("$ref")
    return defs[str(ref).rsplit("/", 1)[1]] if isinstance(ref, str) else schema


def _objects(
    schema: Schema, defs: dict[str, Schema], where: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Schema]]:
    """(path, schema) of every object with declared properties, at every depth; a map's entries are
    reached through the key `q1`."""
    schema = _resolve(schema, defs)
    if "properties" in schema:
        yield where, schema
        for name, sub in cast(dict[str, Schema], schema["properties"]).items():
            yield from _objects(sub, defs, (*where, name))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _objects(cast(Schema, extra), defs, (*where, "q1"))


def _alias_cases() -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(tool, path of an object, a name its schema does not declare but a client could send: the
    snake_case or Python name of one of its declared fields)."""
    for tool in TOOL_NAMES:
        schema = tool_definition(tool)["inputSchema"]
        python_names = _python_names(tool_models(tool)[0])
        for where, node in _objects(schema, schema.get("$defs", {})):
            declared = set(node["properties"])
            for name in declared:
                for alias in {_snake(name), *python_names.get(name, set())} - declared:
                    yield tool, where, alias


def _with(arguments: dict[str, Any], where: tuple[str, ...], key: str, value: object) -> dict[str, Any]:
    """`arguments` with `key: value` in the object at `where` (made, empty, when absent)."""
    root = dict(arguments)
    container = root
    for part in where:
        container[part] = dict(container.get(part, {}))
        container = container[part]
    container[key] = value
    return root


def test_aliases_are_found_at_every_depth_of_every_tool_that_has_them() -> None:
    found = {(tool, ".".join(where), alias) for tool, where, alias in _alias_cases()}
    assert ("codex_reply", "", "session_id") in found
    assert ("codex_session", "", "dry_run") in found
    assert ("codex_check", "pollOptions", "include_actions") in found
    assert ("codex", "advanced", "wait_for_result") in found
    assert len(found) >= 30


@pytest.mark.parametrize(("tool", "where", "alias"), sorted(_alias_cases()))
def test_a_declared_fields_snake_case_or_python_name_is_refused_naming_it(
    tool: str, where: tuple[str, ...], alias: str
) -> None:
    arguments = _with(MINIMAL[tool], where, alias, True)
    error = _refused(tool, arguments)
    field = ".".join((*where, alias))
    assert error.field == field
    assert error.message.startswith(f"unknown field {field}")
    model = tool_models(tool)[0]
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        model.model_validate(arguments, strict=True)


def test_the_three_reported_snake_case_names_are_refused() -> None:
    assert _refused("codex_session", {"action": "clean", "dry_run": True}).field == "dry_run"
    assert (
        _refused(
            "codex_check", {"action": "poll", "sessionId": "s", "pollOptions": {"include_actions": False}}
        ).field
        == "pollOptions.include_actions"
    )
    error = _refused("codex_reply", {"session_id": "sess_1", "prompt": "x"})
    assert error.field == "session_id"
    assert "the field is sessionId" in error.message


# --- unknown fields that say where they belong -----------------------------------------------


def test_wait_for_result_at_the_top_of_codex_says_it_belongs_under_advanced() -> None:
    error = _refused("codex", {**MINIMAL["codex"], "waitForResult": 5000})
    assert error.field == "waitForResult"
    assert error.message == "unknown field waitForResult: it belongs under advanced (advanced.waitForResult)"


def test_a_top_level_field_put_under_advanced_says_it_belongs_at_the_top_level() -> None:
    error = _refused("codex", {**MINIMAL["codex"], "advanced": {"cwd": "/tmp"}})
    assert error.field == "advanced.cwd"
    assert error.message == "unknown field advanced.cwd: it belongs at the top level (cwd)"


def _nested_places(tool: str) -> dict[str, tuple[str, ...]]:
    """Each field declared in exactly one nested object of the tool (no map) -> that object's path."""
    schema = tool_definition(tool)["inputSchema"]
    places: dict[str, list[tuple[str, ...]]] = {}
    for where, node in _objects(schema, schema.get("$defs", {})):
        for name in node["properties"]:
            places.setdefault(name, []).append(where)
    return {
        name: where[0]
        for name, where in places.items()
        if len(where) == 1 and where[0] and "q1" not in where[0]
    }


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_every_nested_field_sent_at_the_top_level_names_where_it_belongs(tool: str) -> None:
    for name, where in _nested_places(tool).items():
        parent = ".".join(where)
        error = _refused(tool, {**MINIMAL[tool], name: 1})
        assert error.field == name
        assert error.message == f"unknown field {name}: it belongs under {parent} ({parent}.{name})"


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_every_top_level_field_sent_inside_a_nested_object_names_where_it_belongs(tool: str) -> None:
    schema = tool_definition(tool)["inputSchema"]
    top = set(schema["properties"])
    parents = {where for where in _nested_places(tool).values() if len(where) == 1}
    for parent in parents:
        inner = set(_resolve(schema["properties"][parent[0]], schema.get("$defs", {}))["properties"])
        if {"action", "host"} == inner:
            continue  # network_policy_amendment: its required fields would be reported first
        for name in sorted(top - inner):
            error = _refused(tool, _with(MINIMAL[tool], parent, name, 1))
            assert error.field == f"{parent[0]}.{name}"
            # `or under ...` follows for a name that another nested object declares too.
            assert error.message.startswith(
                f"unknown field {parent[0]}.{name}: it belongs at the top level ({name})"
            )


def test_a_field_of_another_tool_gets_no_hint() -> None:
    error = _refused("codex_reply", {**MINIMAL["codex_reply"], "advanced": {"waitForResult": 5}})
    assert (error.field, error.message) == ("advanced", "unknown field advanced")
