"""Emit `_generated/registry.py`: protocol lookup tables, so no hand-written code branches on names."""

from __future__ import annotations

import re
from typing import Any

from codegen.app_server import NOT_GENERATED, NotificationEntry, ProtocolIndex, RequestEntry
from codegen.tools import ToolSpec

JsonSchema = dict[str, Any]

_ITEM_DELTA_KEYS = ("delta", "itemId", "turnId")

# Appended to the registry: ids for routing, read only where the id tables say the schema declares them.
_ROUTING_FUNCTIONS = '''

def _string_at(params: Mapping[str, object] | None, key: str) -> str | None:
    value = params.get(key) if params is not None else None
    return value if isinstance(value, str) else None


def notification_thread_id(method: str, params: Mapping[str, object] | None) -> str | None:
    """The `threadId` of a notification's params, for a method whose schema declares one."""
    if method in NOTIFICATIONS_WITH_THREAD_ID or method in NOTIFICATIONS_WITH_OPTIONAL_THREAD_ID:
        return _string_at(params, "threadId")
    return None


def notification_turn_id(method: str, params: Mapping[str, object] | None) -> str | None:
    """The `turnId` of a notification's params, for a method whose schema declares one."""
    if method in NOTIFICATIONS_WITH_TURN_ID or method in NOTIFICATIONS_WITH_OPTIONAL_TURN_ID:
        return _string_at(params, "turnId")
    return None


def request_thread_id(method: str, params: Mapping[str, object] | None) -> str | None:
    """The `threadId` of a request's params, for a method whose schema declares one."""
    if method in REQUESTS_WITH_THREAD_ID or method in REQUESTS_WITH_OPTIONAL_THREAD_ID:
        return _string_at(params, "threadId")
    return None
'''


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


def _params_may_have(definitions: dict[str, JsonSchema], params: str | None, key: str) -> bool:
    """Whether the params declare `key` without requiring it."""
    if params is None:
        return False
    schema = definitions.get(params, {})
    return key in schema.get("properties", {}) and key not in schema.get("required", [])


def _is_item_delta(definitions: dict[str, JsonSchema], params: str | None) -> bool:
    """A streaming piece of a turn's item: params require a string `delta`, `itemId` and `turnId`.

    That is exactly what ingest merges per item; realtime transcript deltas (no `turnId`) and
    `command/exec` output (`deltaBase64`, outside any turn) are not.
    """
    if params is None or not all(_params_with(definitions, params, key) for key in _ITEM_DELTA_KEYS):
        return False
    return definitions[params]["properties"]["delta"].get("type") == "string"


def exec_union(schema: JsonSchema, union: str) -> list[tuple[str, str]]:
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


def _table(comment: str, name: str, value_type: str, rows: list[tuple[str, str]]) -> list[str]:
    lines = ["", f"# {comment}", f"{name}: Final[dict[str, {value_type}]] = {{"]
    lines += [f"    {key!r}: {value}," for key, value in rows]
    return [*lines, "}"]


def _set(comment: str, name: str, members: list[str]) -> list[str]:
    if not members:
        return ["", f"# {comment}", f"{name}: Final[frozenset[str]] = frozenset()"]
    lines = ["", f"# {comment}", f"{name}: Final[frozenset[str]] = frozenset({{"]
    lines += [f"    {member!r}," for member in members]
    return [*lines, "})"]


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
    pinned_codex_version: str,
) -> str:
    """Module text of the registry."""

    def app(name: str | None) -> str:
        return _check_defined(app_text, "app", name) if name else "None"

    def exe(name: str) -> str:
        return _check_defined(exec_text, "exe", name)

    def pair(params: str | None, response: str) -> str:
        return f"({app(params)}, {app(response)})"

    def carrying(key: str, entries: list[NotificationEntry] | list[RequestEntry]) -> list[str]:
        return [entry.method for entry in entries if _params_with(app_definitions, entry.params, key)]

    def maybe_carrying(key: str, entries: list[NotificationEntry] | list[RequestEntry]) -> list[str]:
        return [entry.method for entry in entries if _params_may_have(app_definitions, entry.params, key)]

    out: list[str] = [
        file_header,
        '"""Lookup tables from protocol names to generated models. Generated; do not edit."""',
        "",
        "from collections.abc import Mapping",
        "from typing import Any, Final",
        "",
        "from codex_mcp._generated import app_server as app",
        "from codex_mcp._generated import exec_events as exe",
        "from codex_mcp._generated import tools",
        "",
        "# The Codex version whose app-server protocol the models were generated from.",
        f"PINNED_CODEX_VERSION: Final = {pinned_codex_version!r}",
    ]
    out += _table(
        "app-server notification method -> model of its params (None: it has none).",
        "SERVER_NOTIFICATIONS",
        "Any",
        [(entry.method, app(entry.params)) for entry in index.server_notifications],
    )
    out += _table(
        "app-server request to us: method -> (params model, response model).",
        "SERVER_REQUESTS",
        "tuple[Any, Any]",
        [(entry.method, pair(entry.params, entry.response)) for entry in index.server_requests],
    )
    out += _table(
        "Our requests to app-server that have generated models: method -> (params, response).",
        "CLIENT_REQUESTS",
        "tuple[Any, Any]",
        [
            (entry.method, pair(entry.params, entry.response))
            for entry in index.client_requests
            if entry.response != NOT_GENERATED
        ],
    )
    out += _set(
        "Every client request method the pinned protocol defines.",
        "ALL_CLIENT_METHODS",
        [entry.method for entry in index.client_requests],
    )
    out += _set(
        "Client notifications the pinned protocol defines.",
        "CLIENT_NOTIFICATIONS",
        [entry.method for entry in index.client_notifications],
    )
    out += _set(
        "Notifications whose params always carry `threadId`.",
        "NOTIFICATIONS_WITH_THREAD_ID",
        carrying("threadId", index.server_notifications),
    )
    out += _set(
        "Notifications whose params always carry `turnId`.",
        "NOTIFICATIONS_WITH_TURN_ID",
        carrying("turnId", index.server_notifications),
    )
    out += _set(
        "Requests to us whose params always carry `threadId`.",
        "REQUESTS_WITH_THREAD_ID",
        carrying("threadId", index.server_requests),
    )
    out += _set(
        "Notifications whose params may carry `threadId` (declared, not required).",
        "NOTIFICATIONS_WITH_OPTIONAL_THREAD_ID",
        maybe_carrying("threadId", index.server_notifications),
    )
    out += _set(
        "Notifications whose params may carry `turnId` (declared, not required).",
        "NOTIFICATIONS_WITH_OPTIONAL_TURN_ID",
        maybe_carrying("turnId", index.server_notifications),
    )
    out += _set(
        "Requests to us whose params may carry `threadId` (declared, not required).",
        "REQUESTS_WITH_OPTIONAL_THREAD_ID",
        maybe_carrying("threadId", index.server_requests),
    )
    out += _set(
        "Streaming deltas of a turn's item: params require a string `delta`, `itemId` and `turnId`.",
        "DELTA_NOTIFICATIONS",
        [
            entry.method
            for entry in index.server_notifications
            if _is_item_delta(app_definitions, entry.params)
        ],
    )
    out += _table(
        "`codex exec --json` event type -> model.",
        "EXEC_EVENTS",
        "Any",
        [(tag, exe(name)) for tag, name in exec_union(exec_schema, "ExecEvent")],
    )
    out += _table(
        "`codex exec --json` item type -> model.",
        "EXEC_ITEMS",
        "Any",
        [(tag, exe(name)) for tag, name in exec_union(exec_schema, "ThreadItem")],
    )
    out += _table(
        "Our MCP tools: name -> (input model, output model).",
        "TOOLS",
        "tuple[Any, Any]",
        [
            (
                spec.name,
                f"({_check_defined(tools_text, 'tools', spec.input_model)}, "
                f"{_check_defined(tools_text, 'tools', spec.output_model)})",
            )
            for spec in tool_specs
        ],
    )
    return "\n".join([*out, _ROUTING_FUNCTIONS])
