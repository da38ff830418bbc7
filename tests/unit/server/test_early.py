"""The early answers: the handshake and listings answered from codegen's data, everything else left
to the SDK, and the request that decides the protocol era handed to the SDK under a private id."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest

from codex_mcp.server.early import DATA_FILE, REPLAY_ID_PREFIX, EarlyAnswers
from codex_mcp.server.stdout import WireOut

_CLIENT = {"name": "test", "version": "1"}
_ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": _CLIENT,
    "io.modelcontextprotocol/clientCapabilities": {},
}


class _Wire:
    """Our stdout as a pipe, read as a client reads it: all along (the tools/list answer alone is
    larger than a pipe's buffer, so a writer nobody reads would block)."""

    def __init__(self) -> None:
        self.read_fd, write_fd = os.pipe()
        self.out = WireOut(write_fd)
        self._data = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.read_fd, 1 << 20):
            self._data += chunk
        os.close(self.read_fd)

    def lines(self) -> list[dict[str, Any]]:
        self.out.close()
        self._reader.join(timeout=10)
        return [json.loads(line) for line in bytes(self._data).splitlines()]


@pytest.fixture
def wire() -> _Wire:
    return _Wire()


def _line(message: dict[str, Any]) -> str:
    return json.dumps(message)


def _initialize(request_id: object = 1, version: str = "2025-06-18") -> dict[str, Any]:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": _CLIENT}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


def test_initialize_is_answered_and_handed_to_the_sdk_under_a_private_id(wire: _Wire) -> None:
    early = EarlyAnswers.load(wire.out)
    passed = early(_line(_initialize()))
    later = [
        early(_line({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        early(_line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})),
        early(_line({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "codex"}})),
    ]
    answers = wire.lines()
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[0]["result"]["protocolVersion"] == "2025-06-18"
    assert {t["name"] for t in answers[1]["result"]["tools"]} >= {"codex", "codex_check"}
    assert [json.loads(line) for line in passed] == [{**_initialize(), "id": REPLAY_ID_PREFIX + "initialize"}]
    assert [len(p) for p in later] == [1, 0, 1]  # the notification and the call go to the SDK


def test_an_unknown_protocol_version_gets_the_latest_one_as_the_sdk_negotiates(wire: _Wire) -> None:
    early = EarlyAnswers.load(wire.out)
    early(_line(_initialize(version="1999-01-01")))
    data = json.loads(DATA_FILE.read_text())
    assert wire.lines()[0]["result"]["protocolVersion"] == data["latestLegacyVersion"]


def test_the_modern_era_is_answered_per_request_envelope(wire: _Wire) -> None:
    early = EarlyAnswers.load(wire.out)
    discover = {"jsonrpc": "2.0", "id": "d", "method": "server/discover", "params": {"_meta": _ENVELOPE}}
    listing = {"jsonrpc": "2.0", "id": "t", "method": "tools/list", "params": {"_meta": _ENVELOPE}}
    passed = early(_line(discover))
    assert early(_line(listing)) == ()
    answers = wire.lines()
    assert [a["id"] for a in answers] == ["d", "t"]
    assert answers[0]["result"]["supportedVersions"] == ["2026-07-28"]
    assert json.loads(passed[0])["id"] == REPLAY_ID_PREFIX + "server/discover"


@pytest.mark.parametrize(
    "first",
    [
        {"jsonrpc": "2.0", "id": "\ud800", "method": "initialize", "params": _initialize()["params"]},
        {"jsonrpc": "2.0", "id": True, "method": "initialize", "params": _initialize()["params"]},
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 5}},
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": []},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},  # a listing before any handshake
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/list",
            "params": {
                "_meta": {**_ENVELOPE, "x": 1} | {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}
            },
        },
    ],
)
def test_anything_unusual_is_left_to_the_sdk_with_everything_after_it(
    wire: _Wire, first: dict[str, Any]
) -> None:
    early = EarlyAnswers.load(wire.out)
    line = json.dumps(first, ensure_ascii=True)
    assert early(line) == (line,)
    following = _line(_initialize(request_id=9))
    assert early(following) == (following,)
    assert wire.lines() == []


def test_after_hand_over_every_line_goes_to_the_sdk(wire: _Wire) -> None:
    early = EarlyAnswers.load(wire.out)
    early.hand_over()
    line = _line(_initialize())
    assert early(line) == (line,)
    assert wire.lines() == []


def test_without_data_every_line_goes_to_the_sdk(wire: _Wire, tmp_path: Any) -> None:
    early = EarlyAnswers.load(wire.out, tmp_path / "missing.json")
    line = _line(_initialize())
    assert early(line) == (line,)
    assert wire.lines() == []


def test_a_replayed_answer_is_checked_against_what_was_sent(
    wire: _Wire, caplog: pytest.LogCaptureFixture
) -> None:
    early = EarlyAnswers.load(wire.out)
    early(_line(_initialize()))
    sent = wire.lines()[0]
    replay_id = REPLAY_ID_PREFIX + "initialize"
    same = json.dumps({**sent, "id": replay_id}, separators=(",", ":"), ensure_ascii=False).encode()
    early.replay_answered(replay_id, same.replace(b'"result":{', b'"result":{"x":1,'))
    assert "differs from the SDK's" in caplog.text
