"""Answers to a client's first requests before the MCP SDK has loaded, byte for byte the SDK's own.

Clients give a server little time: Codex runs the turn without an optional server's tools if the
handshake takes over ~1 s, and Claude Code falls back to an older protocol after ~1.2-3 s. Importing
the SDK alone takes ~0.6-1 s on a small machine. So, from the stdin reader thread, before the SDK
is imported, this answers the handshake (`initialize`, or the 2026-07-28 era's `server/discover`)
and the listing requests (`tools/list`, `resources/list`, `ping`) from `data/early_answers.json`,
which codegen wrote by asking our server itself, served by the SDK (codegen/early_probe.py), for
every protocol version; a test checks the two agree byte for byte.

Everything else waits in the stdin queue for the SDK. The first request answered here (it decides
the protocol era) is also handed to the SDK, under a private id, so the SDK's connection state is
what it would have been; the transport drops its answer (and logs an error if it differs from what
was sent). Anything unusual (a malformed envelope, an id that is not a plain string or integer, an
unknown version) is left to the SDK. Standard library only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Self, cast

from codex_mcp.server.stdout import WireClosedError, WireOut

logger = logging.getLogger(__name__)

DATA_FILE: Final = Path(__file__).parent / "data" / "early_answers.json"
REPLAY_ID_PREFIX: Final = "codex-mcp/early-replay/"
_PROTOCOL_VERSION_KEY: Final = "io.modelcontextprotocol/protocolVersion"
_CLIENT_INFO_KEY: Final = "io.modelcontextprotocol/clientInfo"
_CLIENT_CAPABILITIES_KEY: Final = "io.modelcontextprotocol/clientCapabilities"


class EarlyAnswers:
    """The stdin reader's early filter (see `stdin.EarlyFilter`) until `hand_over`."""

    def __init__(self, data: dict[str, Any] | None, wire: WireOut) -> None:
        self._data = data
        self._wire = wire
        self._lock = threading.Lock()
        self._done = data is None
        self._era: str | None = None
        self._version: str | None = None
        # Private replay id -> the line we wrote for it, to compare with the SDK's answer.
        self._replayed: dict[str, bytes] = {}

    @classmethod
    def load(cls, wire: WireOut, path: Path = DATA_FILE) -> Self:
        """Answers from `path`; none at all (everything goes to the SDK) when it cannot be read."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("no early answers (%s unreadable): the SDK answers the handshake", path.name)
            data = None
        return cls(cast(dict[str, Any], data) if isinstance(data, dict) else None, wire)

    def hand_over(self) -> None:
        """The SDK serves from now on: pass every line on."""
        with self._lock:
            self._done = True

    def __call__(self, line: str) -> Sequence[str]:
        with self._lock:
            if self._done:
                return (line,)
            return self._filter(line)

    def _filter(self, line: str) -> Sequence[str]:
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            return (line,)
        if not isinstance(message, dict) or "method" not in message or "id" not in message:
            return (line,)  # notifications and responses are the SDK's
        request: dict[str, Any] = message  # pyright: ignore[reportUnknownVariableType]
        request_id, method, params = request["id"], request["method"], request.get("params")
        if not _plain_id(request_id) or not isinstance(method, str):
            return self._give_up(line)
        if params is not None and not isinstance(params, dict):
            return self._give_up(line)
        era = self._era_of(method, params)  # pyright: ignore[reportUnknownArgumentType]
        if era is None or (self._era is not None and era != (self._era, self._version)):
            return self._give_up(line)
        result = self._result(*era, method)
        if result is None:
            return self._give_up(line)
        try:
            self._wire.write_line(_answer_line(request_id, result))
        except WireClosedError:
            self._done = True
            return ()
        logger.debug("answered %s early (%s era, %s)", method, *era)
        if self._era is not None:
            return ()
        # The request that decides the era: the SDK sees it too, so its connection state is ours.
        self._era, self._version = era
        replay_id = REPLAY_ID_PREFIX + method
        self._replayed[replay_id] = _answer_line(replay_id, result)
        return (json.dumps({**request, "id": replay_id}, ensure_ascii=False),)

    def _era_of(self, method: str, params: dict[str, Any] | None) -> tuple[str, str] | None:
        """(era, protocol version) the request is in, or None when it is not plain enough to answer."""
        assert self._data is not None
        meta = (params or {}).get("_meta")
        if isinstance(meta, dict) and _PROTOCOL_VERSION_KEY in meta:
            envelope: dict[str, Any] = meta  # pyright: ignore[reportUnknownVariableType]
            version = envelope[_PROTOCOL_VERSION_KEY]
            plain = (
                method != "initialize"
                and isinstance(version, str)
                and version in self._data["modern"]
                and isinstance(envelope.get(_CLIENT_CAPABILITIES_KEY), dict)
                and (_CLIENT_INFO_KEY not in envelope or _implementation(envelope[_CLIENT_INFO_KEY]))
            )
            return ("modern", version) if plain else None
        if method == "initialize":
            if self._era is not None or params is None:
                return None
            requested = params.get("protocolVersion")
            plain = (
                isinstance(requested, str)
                and isinstance(params.get("capabilities"), dict)
                and _implementation(params.get("clientInfo"))
            )
            if not plain:
                return None
            legacy: dict[str, Any] = self._data["legacy"]
            return ("legacy", requested if requested in legacy else self._data["latestLegacyVersion"])
        if self._era == "legacy" and self._version is not None:
            return ("legacy", self._version)
        return None

    def _result(self, era: str, version: str, method: str) -> bytes | None:
        assert self._data is not None
        index = self._data[era].get(version, {}).get(method)
        return None if index is None else str(self._data["results"][index]).encode("utf-8")

    def _give_up(self, line: str) -> Sequence[str]:
        """Something unusual: the SDK answers this and everything after it."""
        self._done = True
        return (line,)

    @staticmethod
    def is_replay(request_id: object) -> bool:
        """Whether `request_id` is one of the private ids requests are replayed under."""
        return isinstance(request_id, str) and request_id.startswith(REPLAY_ID_PREFIX)

    def replay_answered(self, request_id: str, line: bytes) -> None:
        """The SDK's answer to a replayed request (not sent on): it must be what we sent."""
        with self._lock:
            expected = self._replayed.pop(request_id, None)
        if expected is None:
            logger.error("an answer to replayed request %s that was never replayed", request_id)
        elif expected != line:
            logger.error(
                "the early answer to %s differs from the SDK's: codegen's early_answers.json is stale "
                "(run python -m codegen); sent %.300r, the SDK says %.300r",
                request_id.removeprefix(REPLAY_ID_PREFIX),
                expected,
                line,
            )
        else:
            logger.debug(
                "the early answer to %s matches the SDK's", request_id.removeprefix(REPLAY_ID_PREFIX)
            )


def _answer_line(request_id: object, result: bytes) -> bytes:
    return (
        b'{"jsonrpc":"2.0","id":'
        + json.dumps(request_id, ensure_ascii=False).encode()
        + b',"result":'
        + result
        + b"}"
    )


def _implementation(value: object) -> bool:
    """Whether `value` is a plain {name, version} client description."""
    if not isinstance(value, dict):
        return False
    info: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
    return isinstance(info.get("name"), str) and isinstance(info.get("version"), str)


def _plain_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeError:  # a lone surrogate: the SDK's error path escapes it
        return False
    return True
