"""What changed between two Codex app-server protocols: methods, types, required fields, enum values.

A bundle (`codex app-server generate-json-schema` output) is first reduced to a summary: the
methods of its four root unions, and per type its required fields, fields, string enum values and
a digest of the whole definition. Summaries are small enough to ship: the server diffs the
installed Codex against the summary of the vendored bundle, and `python -m codegen refresh`
diffs two bundles the same way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final, cast

JsonObject = dict[str, Any]

# Root union -> the name its methods are listed under.
METHOD_GROUPS: Final = {
    "ClientRequest": "client requests",
    "ServerRequest": "server requests",
    "ServerNotification": "server notifications",
    "ClientNotification": "client notifications",
}
_V2_REF: Final = "#/definitions/v2/"


def _object(value: object) -> JsonObject | None:
    return cast(JsonObject, value) if isinstance(value, dict) else None


def _array(value: object) -> list[Any]:
    return cast(list[Any], value) if isinstance(value, list) else []


def _definitions(bundle: JsonObject) -> dict[str, JsonObject]:
    """The bundle's definitions with `definitions/v2` merged in (a root definition wins)."""
    root = _object(bundle.get("definitions")) or {}
    merged: dict[str, JsonObject] = {}
    for name, schema in (_object(root.get("v2")) or {}).items():
        if (obj := _object(schema)) is not None:
            merged[name] = obj
    for name, schema in root.items():
        if name != "v2" and (obj := _object(schema)) is not None:
            merged[name] = obj
    return merged


def _union_methods(union: JsonObject | None) -> list[str]:
    methods: set[str] = set()
    for branch in _array((union or {}).get("oneOf")):
        properties = _object((_object(branch) or {}).get("properties")) or {}
        values = _array((_object(properties.get("method")) or {}).get("enum"))
        if values:
            methods.add(str(values[0]))
    return sorted(methods)


def _enum_values(schema: JsonObject) -> list[str]:
    values: set[str] = set()
    for option in [schema, *_array(schema.get("oneOf")), *_array(schema.get("anyOf"))]:
        obj = _object(option)
        if obj is not None and obj.get("type") == "string":
            values.update(str(value) for value in _array(obj.get("enum")))
    return sorted(values)


def _digest(schema: JsonObject) -> str:
    # v2 types are referenced as `#/definitions/v2/X` in the bundle; compare them as merged.
    text = json.dumps(schema, sort_keys=True, separators=(",", ":")).replace(_V2_REF, "#/definitions/")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def summarize(bundle: JsonObject) -> JsonObject:
    """The summary of an app-server schema bundle (JSON-serialisable, deterministic)."""
    definitions = _definitions(bundle)
    types: JsonObject = {}
    for name in sorted(definitions):
        schema = definitions[name]
        types[name] = {
            "required": sorted(str(field) for field in _array(schema.get("required"))),
            "fields": sorted(str(field) for field in (_object(schema.get("properties")) or {})),
            "enum": _enum_values(schema),
            "digest": _digest(schema),
        }
    methods = {group: _union_methods(definitions.get(union)) for union, group in METHOD_GROUPS.items()}
    return {"methods": methods, "types": types}


def type_enum(summary: JsonObject, name: str) -> list[str] | None:
    """The string enum values of type `name` in `summary`; None when the type is absent."""
    entry = _object((_object(summary.get("types")) or {}).get(name))
    return None if entry is None else [str(value) for value in _array(entry.get("enum"))]


def methods_of(summary: JsonObject) -> set[str]:
    """Every method of every group in `summary`."""
    groups = _object(summary.get("methods")) or {}
    return {str(method) for group in groups.values() for method in _array(group)}


@dataclass(frozen=True)
class MethodChanges:
    """One method group: how many before and after, and which were added or removed."""

    before: int
    after: int
    added: list[str]
    removed: list[str]


@dataclass(frozen=True)
class ProtocolDiff:
    """The difference between two summaries."""

    methods: dict[str, MethodChanges]
    types_before: int
    types_after: int
    added_types: list[str]
    removed_types: list[str]
    # Type name -> what changed; an empty list means only descriptions or nested shapes did.
    changed_types: dict[str, list[str]]

    @property
    def identical(self) -> bool:
        """Whether nothing changed at all."""
        return not (
            self.added_types
            or self.removed_types
            or self.changed_types
            or any(group.added or group.removed for group in self.methods.values())
        )

    def lines(self) -> list[str]:
        """The diff for a human: every group and type count, then each change on its own line."""
        out: list[str] = []
        for group, change in self.methods.items():
            out.append(f"{group}: {change.before} -> {change.after}")
            out += [f"  + {method}" for method in change.added]
            out += [f"  - {method}" for method in change.removed]
        added, removed = self.added_types, self.removed_types
        out.append(f"types: {self.types_before} -> {self.types_after} (+{len(added)} -{len(removed)})")
        out += [f"  + {name}" for name in added]
        out += [f"  - {name}" for name in removed]
        out.append(f"changed types: {len(self.changed_types)}")
        for name, details in self.changed_types.items():
            out.append(f"  ~ {name}: " + (", ".join(details) if details else "descriptions or nested shapes"))
        return out

    def to_json(self) -> JsonObject:
        """The diff as JSON (only what changed)."""
        return {
            "identical": self.identical,
            "methods": {
                group: {"added": change.added, "removed": change.removed}
                for group, change in self.methods.items()
                if change.added or change.removed
            },
            "types": {
                "before": self.types_before,
                "after": self.types_after,
                "added": self.added_types,
                "removed": self.removed_types,
                "changed": self.changed_types,
            },
        }


def _strings(entry: JsonObject, key: str) -> set[str]:
    return {str(value) for value in _array(entry.get(key))}


def _type_changes(before: JsonObject, after: JsonObject) -> list[str]:
    details: list[str] = []
    for key, label in (("required", "required"), ("fields", "field"), ("enum", "enum")):
        old, new = _strings(before, key), _strings(after, key)
        details += [f"{label} +{value}" for value in sorted(new - old)]
        details += [f"{label} -{value}" for value in sorted(old - new)]
    return details


def diff_summaries(old: JsonObject, new: JsonObject) -> ProtocolDiff:
    """What changed from `old` to `new` (two `summarize` results)."""
    old_methods = _object(old.get("methods")) or {}
    new_methods = _object(new.get("methods")) or {}
    methods: dict[str, MethodChanges] = {}
    for group in METHOD_GROUPS.values():
        before = {str(m) for m in _array(old_methods.get(group))}
        after = {str(m) for m in _array(new_methods.get(group))}
        methods[group] = MethodChanges(
            len(before), len(after), sorted(after - before), sorted(before - after)
        )
    old_types = _object(old.get("types")) or {}
    new_types = _object(new.get("types")) or {}
    changed: dict[str, list[str]] = {}
    for name in sorted(set(old_types) & set(new_types)):
        before, after = _object(old_types[name]) or {}, _object(new_types[name]) or {}
        if before.get("digest") != after.get("digest"):
            changed[name] = _type_changes(before, after)
    return ProtocolDiff(
        methods=methods,
        types_before=len(old_types),
        types_after=len(new_types),
        added_types=sorted(set(new_types) - set(old_types)),
        removed_types=sorted(set(old_types) - set(new_types)),
        changed_types=changed,
    )
