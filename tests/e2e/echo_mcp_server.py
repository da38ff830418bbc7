"""A tiny stdio MCP server with one tool, `echo`, for Codex children in tests.

Run as a script (``python echo_mcp_server.py``): newline-delimited JSON-RPC 2.0 on stdin/stdout.
Every `tools/call` is appended to the file named by ``ECHO_MCP_CALL_LOG`` (when set), so a test
can tell whether the tool really ran.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

ECHO_PREFIX = "echo: "
TOOL = {
    "name": "echo",
    "description": "Echo the given text back.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The result of one request."""
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "echo", "version": "1.0.0"},
        }
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call":
        text = str(params.get("arguments", {}).get("text", ""))
        log = os.environ.get("ECHO_MCP_CALL_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(params) + "\n")
        return {"content": [{"type": "text", "text": ECHO_PREFIX + text}], "isError": False}
    return {}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        message: dict[str, Any] = json.loads(line)
        if "id" not in message or "method" not in message:
            continue  # notifications and responses need no answer
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        reply["result"] = answer(str(message["method"]), dict(message.get("params") or {}))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
