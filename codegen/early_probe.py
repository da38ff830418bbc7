"""What our server, served by the MCP SDK alone, answers to a client's first requests, byte for byte.

`python -m codegen` runs this in a fresh interpreter (it must see the package as codegen just wrote
it) to produce `server/data/early_answers.json`, from which `codex_mcp.server.early` answers the
handshake before the SDK is loaded; the tests use `sdk_answers` to check the early answers against
the SDK's own.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Final

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from codex_mcp.errors import CodexMcpError
from codex_mcp.server.app import Startup, build_server
from codex_mcp.server.transport import encode
from codex_mcp.settings import Settings

# The requests the early layer may answer, in the order a client sends them.
LIST_METHODS: Final = ("tools/list", "resources/list", "resources/templates/list", "prompts/list", "ping")
PROTOCOL_VERSION_KEY: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY: Final = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
_ANSWER_TIMEOUT_S: Final = 10.0
_CLIENT: Final = {"name": "codex-mcp-probe", "version": "0"}


def envelope(version: str) -> dict[str, Any]:
    """The 2026-07-28 per-request `_meta` of a minimal client."""
    return {PROTOCOL_VERSION_KEY: version, CLIENT_INFO_KEY: _CLIENT, CLIENT_CAPABILITIES_KEY: {}}


def legacy_requests(version: str) -> list[dict[str, Any]]:
    """A handshake-era client's first requests."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": _CLIENT},
    }
    later = [{"jsonrpc": "2.0", "id": n, "method": m} for n, m in enumerate(LIST_METHODS, 2)]
    return [initialize, {"jsonrpc": "2.0", "method": "notifications/initialized"}, *later]


def modern_requests(version: str) -> list[dict[str, Any]]:
    """A 2026-07-28 client's first requests."""
    methods = ("server/discover", *LIST_METHODS)
    return [
        {"jsonrpc": "2.0", "id": n, "method": m, "params": {"_meta": envelope(version)}}
        for n, m in enumerate(methods, 1)
    ]


def _probe_startup() -> Startup:
    # No Codex: listing needs none, and the lifespan then starts no session manager.
    return Startup(Settings.from_env({}), CodexMcpError("APP_SERVER_START_FAILED", "probe"), None)


async def sdk_answers(requests: list[dict[str, Any]]) -> list[bytes]:
    """The lines our server writes, served by the SDK, for `requests` sent on one connection."""
    server = build_server(_probe_startup())
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](16)
    written: list[bytes] = []
    async with read_send, read_receive, write_send, write_receive, anyio.create_task_group() as task_group:
        task_group.start_soon(server.run, read_receive, write_send, server.create_initialization_options())
        with anyio.fail_after(_ANSWER_TIMEOUT_S):
            for request in requests:
                message = types.jsonrpc_message_adapter.validate_python(request, by_name=False)
                await read_send.send(SessionMessage(message))
                if "id" in request:
                    written.append(encode((await write_receive.receive()).message))
        await read_send.aclose()
        task_group.cancel_scope.cancel()
    return written


def _result_text(line: bytes) -> str | None:
    """The `result` member of an answer line exactly as written, or None for an error."""
    answer = json.loads(line)
    if "result" not in answer:
        return None
    head = b'{"jsonrpc":"2.0","id":' + json.dumps(answer["id"]).encode() + b',"result":'
    if not line.startswith(head) or not line.endswith(b"}"):
        raise SystemExit(f"unexpected answer layout: {line[:80]!r}")
    return line[len(head) : -1].decode("utf-8")


async def early_answer_data() -> dict[str, Any]:
    """Every early answer, by era, protocol version and method; identical texts stored once."""
    texts: list[str] = []

    def index(text: str) -> int:
        if text not in texts:
            texts.append(text)
        return texts.index(text)

    async def answers_of(requests: list[dict[str, Any]]) -> dict[str, int]:
        lines = await sdk_answers(requests)
        methods = [request["method"] for request in requests if "id" in request]
        by_method: dict[str, int] = {}
        for method, line in zip(methods, lines, strict=True):
            text = _result_text(line)
            if text is not None:
                by_method[method] = index(text)
        return by_method

    legacy = {version: await answers_of(legacy_requests(version)) for version in HANDSHAKE_PROTOCOL_VERSIONS}
    modern = {version: await answers_of(modern_requests(version)) for version in MODERN_PROTOCOL_VERSIONS}
    return {
        "generatedBy": "GENERATED by `python -m codegen` (codegen/early_probe.py). DO NOT EDIT.",
        "latestLegacyVersion": LATEST_HANDSHAKE_VERSION,
        "legacy": legacy,
        "modern": modern,
        "results": texts,
    }


def render() -> str:
    """`early_answers.json` as codegen writes it."""
    return json.dumps(anyio.run(early_answer_data), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
