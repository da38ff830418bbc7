"""A 2026-07-28 client over stdio in raw JSON-RPC: no handshake, the `_meta` envelope on every
request, declaring the tasks extension unless told not to; for the MCP Tasks tests."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import Process

from tests.e2e.client import server_env
from tests.harness.codex_env import CodexEnv

Json = dict[str, Any]
VERSION = "2026-07-28"
EXTENSION = "io.modelcontextprotocol/tasks"
TASK_BOUND_S = 90.0


def _meta(*, tasks: bool) -> Json:
    capabilities: Json = {"extensions": {EXTENSION: {}}} if tasks else {}
    return {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "tasks-e2e", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


class ModernClient:
    """Raw 2026-07-28 JSON-RPC over the server's pipes: no handshake, `_meta` on every request."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self._buffer = b""
        self._next_id = 0

    async def request(self, method: str, params: Json, *, tasks: bool = True) -> Json:
        """The response (result or error) of one request."""
        self._next_id += 1
        request_id = self._next_id
        message: Json = {"jsonrpc": "2.0", "id": request_id, "method": method}
        message["params"] = {**params, "_meta": _meta(tasks=tasks)}
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")
        with anyio.fail_after(30):
            while True:
                for line in self._buffer.split(b"\n")[:-1]:
                    answer: Json = json.loads(line)
                    if answer.get("id") == request_id:
                        return answer
                assert self.process.stdout is not None
                self._buffer += await self.process.stdout.receive()

    async def result(self, method: str, params: Json, *, tasks: bool = True) -> Json:
        answer = await self.request(method, params, tasks=tasks)
        assert "result" in answer, answer
        result: Json = answer["result"]
        return result

    async def get_until(self, task_id: str, done: Callable[[Json], bool]) -> Json:
        """tasks/get, honouring pollIntervalMs, until `done` holds."""
        deadline = time.monotonic() + TASK_BOUND_S
        while True:
            task = await self.result("tasks/get", {"taskId": task_id})
            if done(task):
                return task
            assert time.monotonic() < deadline, f"task never got there: {task}"
            await anyio.sleep(min(task.get("pollIntervalMs", 500), 2000) / 1000)


@asynccontextmanager
async def modern_server(
    codex_env: CodexEnv, log_name: str, extra_env: Mapping[str, str | None] | None = None
) -> AsyncGenerator[ModernClient]:
    """`python -m codex_mcp` on `codex_env`'s state directory (stderr to `log_name` there), past
    its `server/discover`, which must advertise the extension."""
    log = codex_env.root / log_name
    with log.open("wb") as stderr:
        async with await anyio.open_process(
            [sys.executable, "-m", "codex_mcp"],
            env=server_env(codex_env, extra_env),
            cwd=codex_env.workspace,
            stderr=stderr,
        ) as process:
            client = ModernClient(process)
            discover = await client.result("server/discover", {})
            assert discover["capabilities"]["extensions"] == {EXTENSION: {}}
            try:
                yield client
            finally:
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.fail_after(30):
                    await process.wait()
