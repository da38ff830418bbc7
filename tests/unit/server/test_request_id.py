"""Reading a request's id from a line no parser takes whole."""

from __future__ import annotations

import time

import pytest

from codex_mcp.server.request_id import find_id

_DEEP = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"jsonrpc":"2.0","id":7,"method":"ping"}', 7),
        ('  { "id" : "abc" , "method": "x"}', "abc"),
        ('{"jsonrpc":"2.0","id":-4}', -4),
        ('{"jsonrpc":"2.0","method":"ping","params":{"x":' + _DEEP + '},"id":"after-deep"}', "after-deep"),
        ('{"jsonrpc":"2.0","id":"before-deep","params":{"x":' + "[" * 200_000, "before-deep"),
        ('{"a":"}\\"[","b":["]",{"c":"{"}],"id":9}', 9),
        ('{"id":"\\ud800"}', "\ud800"),
        ('{"jsonrpc":"2.0","id":12,"method":"tools/list"', 12),
        ('{"id":1.5}', None),
        ('{"id":true}', None),
        ('{"id":null}', None),
        ('{"id":{"x":1}}', None),
        ('{"method":"ping"}', None),
        ("[1, 2]", None),
        ("not json", None),
        ('{"id":"unterminated', None),
        ('{"a" 1, "id": 3}', None),
    ],
)
def test_the_id_is_read_from_the_top_level_whatever_follows(line: str, expected: object) -> None:
    assert find_id(line) == expected


def test_a_huge_string_before_the_id_is_skipped_in_linear_time() -> None:
    line = '{"jsonrpc":"2.0","params":{"p":"' + 'a\\"' * (4 << 20) + '"},"id":"late"}'
    started = time.monotonic()
    assert find_id(line) == "late"
    # A guard against a quadratic or per-character scan (seconds), not a performance target.
    assert time.monotonic() - started < 5
