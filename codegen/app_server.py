"""Normalise the vendored app-server bundle into the schema the model generator reads.

The bundle nests v2 under `definitions/v2`, names request/response pairs only by convention and
leaves its tagged unions without discriminators. This module flattens it, keeps only the `$ref`
closure of what the server uses (import cost grows with every model), names every message envelope,
marks every tagged union with its discriminator, and indexes the protocol for the registry.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from codegen.jsonwalk import JsonSchema, as_array, as_object, objects_in, refs_in, rewrite_refs

# Client requests the server sends. Their params and responses are generated; the rest are not.
CLIENT_METHODS: tuple[str, ...] = (
    "initialize",
    "thread/start",
    "thread/resume",
    "thread/fork",
    "thread/read",
    "thread/loaded/list",
    "thread/unsubscribe",
    "turn/start",
    "turn/steer",
    "turn/interrupt",
    "thread/backgroundTerminals/clean",
    "model/list",
    "account/read",
)

# The only names defined both at the top level and under v2; the two copies must be equal.
_ALLOWED_COLLISIONS = frozenset({"RequestId", "AbsolutePathBuf"})
_TAG_KEYS = ("type", "method", "mode")
# The response of a client method outside CLIENT_METHODS: indexed, but no model is generated.
NOT_GENERATED = "<not generated>"


@dataclass(frozen=True)
class RequestEntry:
    """A JSON-RPC request: its method and the definitions of its params and result."""

    method: str
    params: str | None
    response: str


@dataclass(frozen=True)
class NotificationEntry:
    """A JSON-RPC notification: its method and the definition of its params."""

    method: str
    params: str | None


@dataclass
class ProtocolIndex:
    """Every message of the protocol, by direction."""

    client_requests: list[RequestEntry] = field(default_factory=lambda: [])
    server_requests: list[RequestEntry] = field(default_factory=lambda: [])
    server_notifications: list[NotificationEntry] = field(default_factory=lambda: [])
    client_notifications: list[NotificationEntry] = field(default_factory=lambda: [])


def flatten_definitions(bundle: JsonSchema) -> dict[str, JsonSchema]:
    """Return the bundle's definitions with `definitions/v2` merged into the top level."""
    definitions = copy.deepcopy(bundle["definitions"])
    nested: dict[str, JsonSchema] = definitions.pop("v2", {})
    for name, schema in nested.items():
        if name in definitions:
            if name not in _ALLOWED_COLLISIONS or _bare(definitions[name]) != _bare(schema):
                raise SystemExit(f"app-server bundle: v2 definition {name!r} collides with a root one")
            continue
        definitions[name] = schema
    rewrite_refs(definitions, "#/definitions/v2/", "#/definitions/")
    return definitions


def _bare(schema: JsonSchema) -> JsonSchema:
    return {key: value for key, value in schema.items() if key not in ("$schema", "title")}


def ref_name(ref: str) -> str:
    """The definition name a local `$ref` points at."""
    return ref.rsplit("/", 1)[-1]


def _union_method(branch: JsonSchema) -> str:
    return str(branch["properties"]["method"]["enum"][0])


def _params_ref(branch: JsonSchema) -> str | None:
    params = branch["properties"].get("params")
    if params is None:
        return None
    if "$ref" in params:
        return ref_name(params["$ref"])
    for option in params.get("anyOf", []):
        if "$ref" in option:
            return ref_name(option["$ref"])
    return None


def _response_for(params: str | None, method: str, definitions: dict[str, JsonSchema]) -> str:
    if params is not None and params.endswith("Params"):
        candidate = params[: -len("Params")] + "Response"
        if candidate in definitions:
            return candidate
    raise SystemExit(f"app-server bundle: no response definition found for {method!r}")


def index_protocol(definitions: dict[str, JsonSchema]) -> ProtocolIndex:
    """List every request and notification in both directions, from the four root unions."""
    index = ProtocolIndex()
    for branch in definitions["ClientRequest"]["oneOf"]:
        method = _union_method(branch)
        params = _params_ref(branch)
        response = _response_for(params, method, definitions) if method in CLIENT_METHODS else NOT_GENERATED
        index.client_requests.append(RequestEntry(method, params, response))
    for branch in definitions["ServerRequest"]["oneOf"]:
        method = _union_method(branch)
        params = _params_ref(branch)
        index.server_requests.append(RequestEntry(method, params, _response_for(params, method, definitions)))
    for branch in definitions["ServerNotification"]["oneOf"]:
        index.server_notifications.append(NotificationEntry(_union_method(branch), _params_ref(branch)))
    for branch in definitions["ClientNotification"]["oneOf"]:
        index.client_notifications.append(NotificationEntry(_union_method(branch), _params_ref(branch)))
    missing = set(CLIENT_METHODS) - {entry.method for entry in index.client_requests}
    if missing:
        raise SystemExit(f"app-server bundle: client methods no longer exist: {sorted(missing)}")
    return index


def _envelope_name(method: str, suffix: str) -> str:
    return _pascal(method) + suffix


def _closure(definitions: dict[str, JsonSchema], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(refs_in(definitions[name]))
    return sorted(seen)


def _resolve(definitions: dict[str, JsonSchema], schema: JsonSchema) -> JsonSchema:
    while "$ref" in schema:
        schema = definitions[ref_name(schema["$ref"])]
    return schema


def _tag_of(branches: list[JsonSchema]) -> str | None:
    for key in _TAG_KEYS:
        if all(
            branch.get("type") == "object"
            and key in branch.get("required", [])
            and len(branch.get("properties", {}).get(key, {}).get("enum", [])) == 1
            for branch in branches
        ):
            return key
    return None


def _pascal(text: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", text)
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def add_discriminators(definitions: dict[str, JsonSchema]) -> int:
    """Mark every union whose branches share a one-value tag property; return how many."""
    count = 0
    for owner, schema in definitions.items():
        for node in objects_in(schema):
            for key in ("oneOf", "anyOf"):
                branches = as_array(node.get(key))
                if branches is None or len(branches) < 2:
                    continue
                tag = _tag_of([_resolve(definitions, branch) for branch in branches])
                if tag is None:
                    continue
                if key == "anyOf":
                    node["oneOf"] = node.pop("anyOf")
                node["discriminator"] = {"propertyName": tag}
                count += 1
                for branch in branches:
                    if "$ref" not in branch and "title" not in branch:
                        branch["title"] = owner + _pascal(str(branch["properties"][tag]["enum"][0]))
    return count


def lift_titled_branches(definitions: dict[str, JsonSchema]) -> None:
    """Give each titled inline object branch of a union its own definition, named by its title.

    The generator names inline branches `Parent1`, `Parent2`, ...; as definitions they keep the
    names Codex gave them (`AgentMessageThreadItem`).
    """
    pending = list(definitions)
    while pending:
        for node in objects_in(definitions[pending.pop()]):
            # Branches of a union that also has its own properties inherit them inline.
            if "properties" in node:
                continue
            for key in ("oneOf", "anyOf"):
                branches = as_array(node.get(key)) or []
                for position, branch in enumerate(branches):
                    obj = as_object(branch)
                    title = obj.get("title") if obj is not None else None
                    if (
                        obj is not None
                        and isinstance(title, str)
                        and "$ref" not in obj
                        and obj.get("type") == "object"
                        and title not in definitions
                    ):
                        definitions[title] = obj
                        branches[position] = {"$ref": f"#/definitions/{title}"}
                        pending.append(title)


def _envelopes(
    definitions: dict[str, JsonSchema], root: str, suffix: str, out: dict[str, JsonSchema]
) -> list[str]:
    """Lift each branch of a root message union into a named definition; return their names."""
    names: list[str] = []
    for branch in definitions[root]["oneOf"]:
        method = _union_method(branch)
        name = _envelope_name(method, suffix)
        if name in definitions or name in out:
            raise SystemExit(f"app-server bundle: envelope name {name!r} is already taken")
        lifted = copy.deepcopy(branch)
        lifted["title"] = name
        lifted.pop("description", None)
        out[name] = lifted
        names.append(name)
    return names


def build_codegen_schema(bundle: JsonSchema) -> tuple[JsonSchema, ProtocolIndex]:
    """The schema to generate models from, and the protocol index for the registry."""
    definitions = flatten_definitions(bundle)
    index = index_protocol(definitions)

    envelopes: dict[str, JsonSchema] = {}
    notification_names = _envelopes(definitions, "ServerNotification", "ServerNotification", envelopes)
    request_names = _envelopes(definitions, "ServerRequest", "ServerRequest", envelopes)
    definitions.update(envelopes)
    definitions["ServerNotification"] = {
        "title": "ServerNotification",
        "oneOf": [{"$ref": f"#/definitions/{name}"} for name in notification_names],
    }
    definitions["ServerRequest"] = {
        "title": "ServerRequest",
        "oneOf": [{"$ref": f"#/definitions/{name}"} for name in request_names],
    }

    roots = ["ServerNotification", "ServerRequest", "JSONRPCError", "InitializeCapabilities"]
    for entry in index.server_requests:
        roots.append(entry.response)
    for entry in index.client_requests:
        if entry.method in CLIENT_METHODS:
            roots.append(entry.response)
            if entry.params is not None:
                roots.append(entry.params)
    selected = {name: definitions[name] for name in _closure(definitions, roots)}
    add_discriminators(selected)
    lift_titled_branches(selected)
    schema: JsonSchema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "CodexAppServerProtocol",
        "definitions": selected,
    }
    return schema, index
