"""Cached validators for generated types (models and type aliases alike)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter


@cache
def adapter(target: Any) -> TypeAdapter[Any]:
    """A TypeAdapter for `target`, built once: building one costs far more than using it."""
    return TypeAdapter(target)
