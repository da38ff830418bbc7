"""Hand-written JSON-RPC over a server process's pipes, for tests that need every stdout byte."""

from __future__ import annotations

import json
from typing import Any

from anyio.abc import Process


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
