"""The id of a JSON-RPC request line that no parser will take whole (too deep, broken, huge).

A client waits for an answer carrying its request's id; when the line cannot be parsed we still owe
it one. `find_id` walks the top level of the line only, skipping nested values by bracket counting
(strings are skipped whole, so brackets inside them do not count), so nesting of any depth costs
time linear in the line and no recursion. Standard library only.
"""

from __future__ import annotations

import json
import json.decoder
import re
from collections.abc import Callable
from typing import Final

RequestId = str | int

_DECODER: Final = json.JSONDecoder()
# The C string scanner json itself uses (typeshed does not declare it): (text, end index).
_scanstring: Callable[[str, int, bool], tuple[str, int]] = getattr(json.decoder, "scanstring")  # noqa: B009
_SPACE: Final = re.compile(r"[ \t\n\r]*")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_SCALAR: Final = re.compile(r"[^,}\]\s]+")
_STRUCTURAL: Final = re.compile(r'["{}\[\]]')


def find_id(line: str) -> RequestId | None:
    """The `id` member of the top-level JSON object in `line`, if it is a string or an integer.

    None when the line is not an object, has no such member, or its id is of another type (JSON-RPC
    answers those with id null). The rest of the line may be malformed or nested past any limit.
    """
    pos = _skip_space(line, 0)
    if not line.startswith("{", pos):
        return None
    pos += 1
    while True:
        pos = _skip_space(line, pos)
        if not line.startswith('"', pos):
            return None
        key_end = _string_end(line, pos)
        if key_end is None:
            return None
        key = _decode(line[pos:key_end])
        pos = _skip_space(line, key_end)
        if not line.startswith(":", pos):
            return None
        pos = _skip_space(line, pos + 1)
        if key == "id":
            return _id_value(line, pos)
        end = _value_end(line, pos)
        if end is None:
            return None
        pos = _skip_space(line, end)
        if not line.startswith(",", pos):
            return None
        pos += 1


def _skip_space(line: str, pos: int) -> int:
    match = _SPACE.match(line, pos)
    return match.end() if match else pos


def _string_end(line: str, pos: int) -> int | None:
    """The index after the string starting at `pos` (a `"`), or None when it is not a valid one."""
    try:
        return _scanstring(line, pos + 1, False)[1]
    except ValueError:
        return None


def _decode(text: str) -> object:
    try:
        return _DECODER.decode(text)
    except ValueError:
        return None


def _id_value(line: str, pos: int) -> RequestId | None:
    if line.startswith('"', pos):
        end = _string_end(line, pos)
        value = None if end is None else _decode(line[pos:end])
        return value if isinstance(value, str) else None
    match = _NUMBER.match(line, pos)
    if match is None:
        return None
    value = _decode(match.group())
    return value if isinstance(value, int) else None


def _value_end(line: str, pos: int) -> int | None:
    """The index after the JSON value starting at `pos`, found without parsing nested values."""
    if line.startswith('"', pos):
        return _string_end(line, pos)
    if not line.startswith(("{", "["), pos):
        match = _SCALAR.match(line, pos)
        return match.end() if match else None
    depth = 0
    index = pos
    while (match := _STRUCTURAL.search(line, index)) is not None:
        char = match.group()
        index = match.end()
        if char == '"':
            end = _string_end(line, match.start())
            if end is None:
                return None
            index = end
        elif char in "{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return index
    return None
