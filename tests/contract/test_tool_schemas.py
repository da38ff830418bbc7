"""Our published tool schemas are valid, consistent with each other, and agree with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from codegen import paths
from codex_mcp.errors import CODES, CodexMcpError
from codex_mcp.wire.tools import TOOL_NAMES, parse_input, tool_definition, tool_models, tool_rules
from tests.contract.schema_check import assert_valid, error_texts, objects_matching

TOOL_FILES = sorted(p for p in paths.TOOLS_DIR.glob("*.json") if p.name != "error.json")
EXPECTED_TOOLS = {"codex_setup", "codex", "codex_reply", "codex_session", "codex_check"}


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_there_are_exactly_the_five_tools_of_the_reference() -> None:
    assert {_load(p)["name"] for p in TOOL_FILES} == EXPECTED_TOOLS
    assert set(TOOL_NAMES) == EXPECTED_TOOLS


@pytest.mark.parametrize("path", TOOL_FILES, ids=lambda p: p.stem)
def test_each_tool_file_is_named_after_its_tool_and_holds_valid_object_schemas(path: Path) -> None:
    tool = _load(path)
    assert tool["name"] == path.stem
    assert tool["description"]
    for key in ("inputSchema", "outputSchema"):
        schema = tool[key]
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object", f"MCP requires an object {key}"


def test_the_error_shape_is_a_valid_schema_listing_every_error_code() -> None:
    schema = _load(paths.TOOLS_DIR / "error.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    codes = schema["properties"]["error"]["properties"]["code"]["enum"]
    assert codes == list(CODES)


def test_definitions_shared_between_tools_are_identical_copies() -> None:
    seen: dict[str, tuple[str, Any]] = {}
    for path in TOOL_FILES:
        tool = _load(path)
        for key in ("inputSchema", "outputSchema"):
            for name, definition in tool[key].get("$defs", {}).items():
                if name in seen:
                    assert definition == seen[name][1], (
                        f"$defs/{name} differs in {path.name} and {seen[name][0]}"
                    )
                seen[name] = (path.name, definition)
    assert len(seen) > 10


def test_the_packaged_definitions_are_the_schema_files_verbatim() -> None:
    for path in TOOL_FILES:
        assert tool_definition(path.stem) == _load(path)


# Examples from the reference README: its users' calls must keep validating.
REFERENCE_EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "codex",
        {
            "prompt": "Fix the failing tests in src/",
            "approvalPolicy": "on-request",
            "sandbox": "workspace-write",
            "effort": "high",
            "cwd": "/path/to/project",
            "model": "o4-mini",
        },
    ),
    (
        "codex",
        {
            "prompt": "Return a short health summary",
            "approvalPolicy": "on-failure",
            "sandbox": "workspace-write",
            "advanced": {
                "outputSchema": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}},
                    "required": ["ok"],
                }
            },
        },
    ),
    ("codex_reply", {"sessionId": "sess_abc123", "prompt": "Now add error handling for the edge cases"}),
    ("codex_session", {"action": "list"}),
    ("codex_session", {"action": "get", "sessionId": "sess_abc123", "includeSensitive": True}),
    ("codex_session", {"action": "cancel", "sessionId": "sess_abc123"}),
    ("codex_session", {"action": "interrupt", "sessionId": "sess_abc123"}),
    ("codex_session", {"action": "fork", "sessionId": "sess_abc123"}),
    ("codex_session", {"action": "clean", "statuses": ["cancelled"], "olderThanMs": 3600000}),
    ("codex_session", {"action": "clean_background_terminals", "sessionId": "sess_abc123"}),
    ("codex_check", {"action": "poll", "sessionId": "sess_abc123", "cursor": 0}),
    (
        "codex_check",
        {
            "action": "respond_permission",
            "sessionId": "sess_abc123",
            "requestId": "req_xyz",
            "decision": "accept",
        },
    ),
    (
        "codex_check",
        {
            "action": "respond_user_input",
            "sessionId": "sess_abc123",
            "requestId": "req_abc",
            "answers": {"question_id": {"answers": ["choice_1"]}},
        },
    ),
    ("codex", {"prompt": "x", "approvalPolicy": "never", "sandbox": "read-only", "effort": "max"}),
]


@pytest.mark.parametrize(("tool", "arguments"), REFERENCE_EXAMPLES)
def test_reference_readme_examples_validate_and_parse(tool: str, arguments: dict[str, Any]) -> None:
    assert_valid(jsonschema.Draft202012Validator(tool_definition(tool)["inputSchema"]), arguments)
    input_model, _ = tool_models(tool)
    parsed = input_model.model_validate(arguments)
    assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == arguments


REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("codex", {"prompt": "x", "approvalPolicy": "sometimes", "sandbox": "read-only"}, "approvalPolicy"),
    ("codex", {"prompt": "x", "approvalPolicy": "never", "sandbox": "read-only", "sanbox": 1}, "sanbox"),
    (
        "codex",
        {
            "prompt": "x",
            "approvalPolicy": "never",
            "sandbox": "read-only",
            "advanced": {"waitForResult": 300001},
        },
        "advanced.waitForResult",
    ),
    ("codex_check", {"action": "poll", "sessionId": "s", "decision": "accept"}, "decision"),
    (
        "codex_check",
        {
            "action": "respond_permission",
            "sessionId": "s",
            "requestId": "r",
            "decision": "acceptWithExecpolicyAmendment",
        },
        "execpolicy_amendment",
    ),
    ("codex_check", {"action": "respond_user_input", "sessionId": "s", "requestId": "r"}, "answers"),
    (
        "codex_check",
        {
            "action": "respond_user_input",
            "sessionId": "s",
            "requestId": "r",
            "answers": {},
            "decision": "accept",
        },
        "decision",
    ),
    (
        "codex_check",
        {
            "action": "respond_permission",
            "sessionId": "s",
            "requestId": "r",
            "decision": "decline",
            "answers": {},
        },
        "answers",
    ),
    (
        "codex_check",
        {
            "action": "respond_permission",
            "sessionId": "s",
            "requestId": "r",
            "decision": "applyNetworkPolicyAmendment",
        },
        "network_policy_amendment",
    ),
    ("codex_session", {"action": "get"}, "sessionId"),
    ("codex_session", {"action": "fork"}, "sessionId"),
]


@pytest.mark.parametrize(("tool", "arguments", "field"), REJECTED)
def test_invalid_arguments_are_rejected_by_the_published_schema_and_rules_naming_the_field(
    tool: str, arguments: dict[str, Any], field: str
) -> None:
    validators = [jsonschema.Draft202012Validator(tool_definition(tool)["inputSchema"])]
    rules = tool_rules(tool, "input")
    if rules is not None:
        validators.append(jsonschema.Draft202012Validator(rules))
    errors = [text for validator in validators for text in error_texts(validator, arguments)]
    assert errors
    assert any(field.rsplit(".", maxsplit=1)[-1] in error for error in errors), errors


_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("tool", sorted(EXPECTED_TOOLS))
def test_every_input_the_schema_accepts_parses_into_the_generated_model(tool: str) -> None:
    input_model, _ = tool_models(tool)

    @_SETTINGS
    @given(objects_matching(tool_definition(tool)["inputSchema"]))
    def check(arguments: dict[str, Any]) -> None:
        input_model.model_validate(arguments, strict=True)

    check()


@pytest.mark.parametrize("tool", sorted(EXPECTED_TOOLS))
def test_every_output_the_schema_accepts_round_trips_through_the_generated_model(tool: str) -> None:
    schema = tool_definition(tool)["outputSchema"]
    _, output_model = tool_models(tool)
    validator = jsonschema.Draft202012Validator(schema)

    @_SETTINGS
    @given(objects_matching(schema))
    def check(result: dict[str, Any]) -> None:
        dumped = output_model.model_validate(result).model_dump(
            by_alias=True, exclude_unset=True, mode="json"
        )
        assert_valid(validator, dumped)

    check()


@pytest.mark.parametrize(("tool", "arguments", "field"), REJECTED)
def test_parse_input_refuses_what_the_schema_refuses_naming_the_same_field(
    tool: str, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(CodexMcpError) as caught:
        parse_input(tool, arguments)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.field == field


@pytest.mark.parametrize(("tool", "arguments"), REFERENCE_EXAMPLES)
def test_parse_input_accepts_the_reference_examples(tool: str, arguments: dict[str, Any]) -> None:
    parse_input(tool, arguments)


def test_lax_coercions_are_refused_like_the_schema_refuses_them() -> None:
    with pytest.raises(CodexMcpError) as caught:
        parse_input("codex_check", {"action": "poll", "sessionId": "s", "cursor": "5"})
    assert caught.value.field == "cursor"


_START = {"approvalPolicy": "never", "sandbox": "read-only"}
# (tool, arguments, the field named, what the message says)
OVER_LIMITS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "codex",
        {**_START, "prompt": "p" * 1_048_577},
        "prompt",
        "1,048,577 characters, over the limit of 1,048,576",
    ),
    (
        "codex",
        {**_START, "prompt": "p", "advanced": {"baseInstructions": "b" * 1_048_577}},
        "advanced.baseInstructions",
        "1,048,577 characters, over the limit of 1,048,576",
    ),
    (
        "codex",
        {**_START, "prompt": "p", "advanced": {"config": {"a.b": ["x"] * 1025}}},
        "advanced.config.a.b",
        "1,025 items, over the limit of 1,024",
    ),
    (
        "codex",
        {**_START, "prompt": "p", "advanced": {"config": {"t": {f"k{i}": i for i in range(257)}}}},
        "advanced.config.t",
        "257 keys, over the limit of 256",
    ),
    (
        "codex",
        {**_START, "prompt": "p", "advanced": {"config": {"k" * 257: 1}}},
        "advanced.config",
        "has 257 characters, over the limit of 256",
    ),
    ("codex_setup", {"cwd": "/" * 4097}, "cwd", "4,097 characters, over the limit of 4,096"),
    (
        "codex_check",
        {
            "action": "respond_user_input",
            "sessionId": "s",
            "requestId": "r",
            "answers": {"q": {"answers": ["a"] * 65}},
        },
        "answers.q.answers",
        "65 items, over the limit of 64",
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "field", "says"), OVER_LIMITS)
def test_a_field_over_its_limit_is_refused_naming_the_field_and_the_limit(
    tool: str, arguments: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(CodexMcpError) as caught:
        parse_input(tool, arguments)
    assert (caught.value.code, caught.value.field) == ("INVALID_ARGUMENT", field)
    assert says in str(caught.value)
    assert len(str(caught.value)) < 500  # the value is never quoted whole


def test_every_free_text_field_of_every_tool_has_a_limit() -> None:
    unbounded: list[str] = []

    def walk(schema: Any, defs: dict[str, Any], where: str) -> None:
        if not isinstance(schema, dict):
            return
        node = cast(dict[str, Any], schema)
        ref = node.get("$ref")
        if isinstance(ref, str):
            walk(defs[ref.rsplit("/", 1)[1]], defs, where)
            return
        if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(where)
        for key, sub in cast(dict[str, Any], node.get("properties", {})).items():
            walk(sub, defs, f"{where}.{key}")
        for key in ("items", "additionalProperties"):
            walk(node.get(key), defs, f"{where}[{key}]")
        for index, option in enumerate(cast(list[Any], node.get("anyOf", []))):
            if "pattern" not in option:
                walk(option, defs, f"{where}|{index}")

    for tool in sorted(EXPECTED_TOOLS):
        schema = tool_definition(tool)["inputSchema"]
        walk(schema, schema.get("$defs", {}), tool)
    assert unbounded == []
