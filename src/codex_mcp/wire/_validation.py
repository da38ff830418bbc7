"""Helpers shared by the wire parsers: JSON loading, cached validators, readable errors."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError


@cache
def adapter(target: Any) -> TypeAdapter[Any]:
    """A TypeAdapter for `target`, built once: building one costs far more than using it."""
    return TypeAdapter(target)


def decode_line(line: str | bytes) -> tuple[str, dict[str, Any] | None, Any, str]:
    """(stripped text, the JSON object or None, whatever was parsed, why it is not an object)."""
    text = (line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line).strip()
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        return text, None, None, f"not JSON: {exc}"
    if not isinstance(parsed, dict):
        return text, None, parsed, "not a JSON object"
    obj: dict[str, Any] = parsed  # pyright: ignore[reportUnknownVariableType]
    return text, obj, obj, ""


def first_error(exc: ValidationError) -> str:
    """The first validation error as `dotted.location: message`."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else first["msg"]
