"""Typed entry points into jsonschema and hypothesis-jsonschema, whose signatures pyright sees as unknown."""

from __future__ import annotations

from typing import Any, cast

import hypothesis_jsonschema
from hypothesis import strategies as st


def assert_valid(validator: Any, instance: object) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` is valid."""
    validator.validate(instance)


def error_texts(validator: Any, instance: object) -> list[str]:
    """Each validation error as its JSON path followed by its message."""
    return [f"{list(error.path)} {error.message}" for error in validator.iter_errors(instance)]


def objects_matching(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Hypothesis strategy of JSON objects valid against `schema`."""
    # The library annotates its result with an unparameterised list; the cast states what it yields.
    strategy = hypothesis_jsonschema.from_schema(schema)  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    return cast(st.SearchStrategy[dict[str, Any]], strategy)
