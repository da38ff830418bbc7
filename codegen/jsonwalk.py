"""Walking parsed JSON Schema documents with types pyright can follow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

JsonSchema = dict[str, Any]


def as_object(value: object) -> JsonSchema | None:
    """`value` as a JSON object, or None when it is something else."""
    return cast(JsonSchema, value) if isinstance(value, dict) else None


def as_array(value: object) -> list[Any] | None:
    """`value` as a JSON array, or None when it is something else."""
    return cast(list[Any], value) if isinstance(value, list) else None


def objects_in(node: object) -> list[JsonSchema]:
    """Every JSON object in `node`, itself included, parents before children.

    A list, not a generator: callers edit the objects they get.
    """
    found: list[JsonSchema] = []
    stack: list[object] = [node]
    while stack:
        current = stack.pop()
        if (obj := as_object(current)) is not None:
            found.append(obj)
            stack.extend(reversed(list(obj.values())))
        elif (array := as_array(current)) is not None:
            stack.extend(reversed(array))
    return found


def refs_in(node: object) -> Iterator[str]:
    """The definition names of every local `$ref` in `node`."""
    for obj in objects_in(node):
        ref = obj.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]


def rewrite_refs(node: object, old_prefix: str, new_prefix: str) -> None:
    """Point every `$ref` starting with `old_prefix` at `new_prefix` instead, in place."""
    for obj in objects_in(node):
        ref = obj.get("$ref")
        if isinstance(ref, str) and ref.startswith(old_prefix):
            obj["$ref"] = new_prefix + ref[len(old_prefix) :]
