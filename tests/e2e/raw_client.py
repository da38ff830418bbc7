"""Hand-written JSON-RPC over a server process's pipes, for tests that need every stdout byte."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from anyio.abc import Process

# An answer is immediate; this only bounds a hang.
ANSWER_TIMEOUT_S = 10


class RawClient:
    """Hand-written JSON-RPC over the server's pipes, keeping every stdout byte."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.stdout = b""
        self._next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        await self.send({"id": self._next_id, "method": method, "params": params})
        while True:
            for line in self.stdout.split(b"\n")[:-1]:
                message = json.loads(line)
                if message.get("id") == self._next_id and ("result" in message or "error" in message):
                    return message
            assert self.process.stdout is not None
            self.stdout += await self.process.stdout.receive()

    async def initialize(self) -> None:
        """The MCP handshake."""
        init = await self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        )
        assert "result" in init
        await self.send({"method": "notifications/initialized"})

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A successful tool call's structuredContent."""
        response = await self.request("tools/call", {"name": tool, "arguments": arguments})
        result = response["result"]
        assert not result.get("isError"), result
        structured: dict[str, Any] = result["structuredContent"]
        return structured


async def start_raw_server(
    env: Mapping[str, str], cwd: Path, stderr: BinaryIO, *, own_session: bool = False
) -> RawClient:
    """`python -m codex_mcp` started by hand (its stderr to `stderr`; in a session of its own when
    `own_session`, as a client that signals its process group runs it), after the MCP handshake:
    a server a test may signal or kill."""
    process = await anyio.open_process(
        [sys.executable, "-m", "codex_mcp"],
        env=dict(env),
        cwd=cwd,
        stderr=stderr,
        start_new_session=own_session,
    )
    client = RawClient(process)
    await client.initialize()
    return client


class LineWire:
    """Raw lines to the server; the messages it writes back, read in order."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.read = 0  # complete stdout lines already returned by `next_message`

    async def send_line(self, line: bytes) -> None:
        assert self.client.process.stdin is not None
        await self.client.process.stdin.send(line + b"\n")

    async def next_message(self) -> dict[str, Any]:
        while True:
            lines = self.client.stdout.split(b"\n")[:-1]
            if len(lines) > self.read:
                self.read += 1
                message: dict[str, Any] = json.loads(lines[self.read - 1])
                return message
            assert self.client.process.stdout is not None
            self.client.stdout += await self.client.process.stdout.receive()

    async def ping(self, request_id: str) -> None:
        """A ping is answered next."""
        await self.send_line(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}).encode())
        with anyio.fail_after(ANSWER_TIMEOUT_S):
            answer = await self.next_message()
        assert answer == {"jsonrpc": "2.0", "id": request_id, "result": {}}, answer

    async def tools_list(self, request_id: str) -> None:
        """A tools/list request is answered next, with the tools."""
        await self.send_line(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/list"}).encode()
        )
        with anyio.fail_after(ANSWER_TIMEOUT_S):
            answer = await self.next_message()
        assert answer["id"] == request_id, answer
        assert {tool["name"] for tool in answer["result"]["tools"]} >= {"codex", "codex_reply"}


@asynccontextmanager
async def raw_server(env: Mapping[str, str], cwd: Path, stderr_path: Path) -> AsyncGenerator[LineWire]:
    """`python -m codex_mcp` (its stderr to `stderr_path`) after the MCP handshake: the wire is
    past the initialize answer; `wire.client.process` is the server."""
    with stderr_path.open("wb") as stderr:
        async with await anyio.open_process(
            [sys.executable, "-m", "codex_mcp"], env=dict(env), cwd=cwd, stderr=stderr
        ) as process:
            client = RawClient(process)
            await client.initialize()
            wire = LineWire(client)
            assert (await wire.next_message())["id"] == 1  # the initialize answer
            yield wire
