"""A readable diff between two app-server schema bundles: methods, types, required fields, enums."""

from __future__ import annotations

from codegen.app_server import flatten_definitions, index_protocol
from codegen.jsonwalk import JsonSchema, as_array, as_object


def _methods(definitions: dict[str, JsonSchema]) -> dict[str, set[str]]:
    index = index_protocol(definitions)
    return {
        "client requests": {entry.method for entry in index.client_requests},
        "server requests": {entry.method for entry in index.server_requests},
        "server notifications": {entry.method for entry in index.server_notifications},
        "client notifications": {entry.method for entry in index.client_notifications},
    }


def _enum_values(schema: JsonSchema) -> set[str]:
    values: set[str] = set()
    options = [schema, *(as_array(schema.get("oneOf")) or []), *(as_array(schema.get("anyOf")) or [])]
    for option in options:
        obj = as_object(option)
        if obj is not None and obj.get("type") == "string":
            values.update(str(value) for value in as_array(obj.get("enum")) or [])
    return values


def protocol_diff(old_bundle: JsonSchema, new_bundle: JsonSchema) -> list[str]:
    """Lines describing what changed from `old_bundle` to `new_bundle`; empty when equivalent."""
    old = flatten_definitions(old_bundle)
    new = flatten_definitions(new_bundle)
    lines: list[str] = []
    old_methods, new_methods = _methods(old), _methods(new)
    for group, before in old_methods.items():
        after = new_methods[group]
        lines.append(f"{group}: {len(before)} -> {len(after)}")
        lines += [f"  + {method}" for method in sorted(after - before)]
        lines += [f"  - {method}" for method in sorted(before - after)]
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    lines.append(f"types: {len(old)} -> {len(new)} (+{len(added)} -{len(removed)})")
    lines += [f"  + {name}" for name in added]
    lines += [f"  - {name}" for name in removed]
    changed: list[str] = []
    for name in sorted(set(old) & set(new)):
        before, after = old[name], new[name]
        if before == after:
            continue
        required_before = set(before.get("required", []))
        required_after = set(after.get("required", []))
        props_before = set(before.get("properties", {}))
        props_after = set(after.get("properties", {}))
        details: list[str] = []
        details += [f"required +{field}" for field in sorted(required_after - required_before)]
        details += [f"required -{field}" for field in sorted(required_before - required_after)]
        details += [f"field +{field}" for field in sorted(props_after - props_before)]
        details += [f"field -{field}" for field in sorted(props_before - props_after)]
        enum_before, enum_after = _enum_values(before), _enum_values(after)
        details += [f"enum +{value}" for value in sorted(enum_after - enum_before)]
        details += [f"enum -{value}" for value in sorted(enum_before - enum_after)]
        changed.append(f"  ~ {name}: " + (", ".join(details) if details else "descriptions or nested shapes"))
    lines.append(f"changed types: {len(changed)}")
    lines += changed
    return lines
