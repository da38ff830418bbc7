"""Helpers shared by the wire parsers: JSON loading, cached validators, readable errors."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError


@cache
def adapter(target: Any) -> TypeAdapter[Any]:
    """A TypeAdapter for `target`, built once: building one costs far more than using it."""
    return TypeAdapter(target)


# A `\uD800`-`\uDFFF` escape. json.loads turns a lone one into a str no UTF-8 encoder can write,
# which would break whatever later sends or stores it (the MCP stdout writer, the session log).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_line(line: str | bytes) -> tuple[str, dict[str, Any] | None, Any, str]:
    """(stripped text, the JSON object or None, whatever was parsed, why it is not an object).

    Lone surrogates in the JSON's strings become U+FFFD; nesting too deep for json is "not JSON".
    """
    text = (line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line).strip()
    try:
        parsed = json.loads(text)
        if _SURROGATE_ESCAPE.search(text):
            parsed = json.loads(_SURROGATE.sub("\ufffd", json.dumps(parsed, ensure_ascii=False)))
    except ValueError as exc:
        return text, None, None, f"not JSON: {exc}"
    except RecursionError:
        return text, None, None, "not JSON: nested too deeply"
    if not isinstance(parsed, dict):
        return text, None, parsed, "not a JSON object"
    obj: dict[str, Any] = parsed  # pyright: ignore[reportUnknownVariableType]
    return text, obj, obj, ""


def first_error(exc: ValidationError) -> str:
    """The first validation error as `dotted.location: message`."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else first["msg"]
