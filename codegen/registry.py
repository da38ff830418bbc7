"""Emit `_generated/registry.py`: protocol lookup tables, so no hand-written code branches on names."""

from __future__ import annotations

import re
from typing import Any

from codegen.app_server import ProtocolIndex
from codegen.tools import ToolSpec

JsonSchema = dict[str, Any]


def _check_defined(module_text: str, module: str, name: str) -> str:
    pattern = rf"^(class {re.escape(name)}\(|{re.escape(name)} = TypeAliasType\()"
    if not re.search(pattern, module_text, flags=re.MULTILINE):
        raise SystemExit(f"registry: {module}.{name} was not generated (renamed by the generator?)")
    return f"{module}.{name}"


def _params_with(definitions: dict[str, JsonSchema], params: str | None, key: str) -> bool:
    if params is None:
        return False
    schema = definitions.get(params, {})
    return key in schema.get("required", [])


def _exec_union(schema: JsonSchema, union: str) -> list[tuple[str, str]]:
    """(tag, definition) pairs of one of the exec schema's discriminated unions."""
    definitions: dict[str, JsonSchema] = schema["definitions"]
    holder = schema if union == "ExecEvent" else definitions[union]
    pairs: list[tuple[str, str]] = []
    for branch in holder["oneOf"]:
        name = branch["$ref"].rsplit("/", 1)[-1]
        tag = definitions[name]["properties"]["type"]
        value = tag["const"] if "const" in tag else tag["enum"][0]
        pairs.append((str(value), name))
    return pairs


def render_registry(
    *,
    file_header: str,
    index: ProtocolIndex,
    app_definitions: dict[str, JsonSchema],
    app_text: str,
    exec_schema: JsonSchema,
    exec_text: str,
    tool_specs: list[ToolSpec],
    tools_text: str,
) -> str:
    """Module text of the registry."""
    out: list[str] = [
        file_header,
        '"""Lookup tables from protocol names to generated models. Generated; do not edit."""',
        "",
        "from typing import Any, Final",
        "",
        "from codex_mcp._generated import app_server as app",
        "from codex_mcp._generated import exec_events as exe",
        "from codex_mcp._generated import tools",
        "",
        "# app-server notification method -> model of its params (None: it has none).",
        "SERVER_NOTIFICATIONS: Final[dict[str, Any]] = {",
    ]
    for entry in index.server_notifications:
        model = _check_defined(app_text, "app", entry.params) if entry.params else "None"
        out.append(f"    {entry.method!r}: {model},")
    out += [
        "}",
        "",
        "# app-server request to us: method -> (params model, response model).",
        "SERVER_REQUESTS: Final[dict[str, tuple[Any, Any]]] = {",
    ]
    for entry in index.server_requests:
        params = _check_defined(app_text, "app", entry.params) if entry.params else "None"
        out.append(f"    {entry.method!r}: ({params}, {_check_defined(app_text, 'app', entry.response)}),")
    out += [
        "}",
        "",
        "# Our requests to app-server that have generated models: method -> (params, response).",
        "CLIENT_REQUESTS: Final[dict[str, tuple[Any, Any]]] = {",
    ]
    for entry in index.client_requests:
        if entry.response == "<not generated>":
            continue
        params = _check_defined(app_text, "app", entry.params) if entry.params else "None"
        out.append(f"    {entry.method!r}: ({params}, {_check_defined(app_text, 'app', entry.response)}),")
    out += [
        "}",
        "",
        "# Every client request method the pinned protocol defines.",
        "ALL_CLIENT_METHODS: Final[frozenset[str]] = frozenset({",
    ]
    out += [f"    {entry.method!r}," for entry in index.client_requests]
    out += [
        "})",
        "",
        "# Client notifications the pinned protocol defines.",
        "CLIENT_NOTIFICATIONS: Final[frozenset[str]] = frozenset({",
    ]
    out += [f"    {entry.method!r}," for entry in index.client_notifications]
    for key, constant in (("threadId", "THREAD_ID"), ("turnId", "TURN_ID")):
        out += [
            "})",
            "",
            f"# Notifications whose params always carry `{key}`.",
            f"NOTIFICATIONS_WITH_{constant}: Final[frozenset[str]] = frozenset({{",
        ]
        out += [
            f"    {entry.method!r},"
            for entry in index.server_notifications
            if _params_with(app_definitions, entry.params, key)
        ]
    out += [
        "})",
        "",
        "# Requests to us whose params always carry `threadId`.",
        "REQUESTS_WITH_THREAD_ID: Final[frozenset[str]] = frozenset({",
    ]
    out += [
        f"    {entry.method!r},"
        for entry in index.server_requests
        if _params_with(app_definitions, entry.params, "threadId")
    ]
    out += ["})", "", "# `codex exec --json` event type -> model.", "EXEC_EVENTS: Final[dict[str, Any]] = {"]
    out += [
        f"    {tag!r}: {_check_defined(exec_text, 'exe', name)},"
        for tag, name in _exec_union(exec_schema, "ExecEvent")
    ]
    out += ["}", "", "# `codex exec --json` item type -> model.", "EXEC_ITEMS: Final[dict[str, Any]] = {"]
    out += [
        f"    {tag!r}: {_check_defined(exec_text, 'exe', name)},"
        for tag, name in _exec_union(exec_schema, "ThreadItem")
    ]
    out += [
        "}",
        "",
        "# Our MCP tools: name -> (input model, output model).",
        "TOOLS: Final[dict[str, tuple[Any, Any]]] = {",
    ]
    for spec in tool_specs:
        out.append(
            f"    {spec.name!r}: ({_check_defined(tools_text, 'tools', spec.input_model)}, "
            f"{_check_defined(tools_text, 'tools', spec.output_model)}),"
        )
    out += ["}", ""]
    return "\n".join(out)
