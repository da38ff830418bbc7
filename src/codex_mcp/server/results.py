"""CallToolResult builders: structured content plus the same JSON as text, or a tool error."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from codex_mcp.errors import CodexMcpError, redact


def success(payload: dict[str, Any]) -> types.CallToolResult:
    """A result whose structuredContent is `payload` and whose text is the same JSON."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(payload, indent=2, ensure_ascii=False))],
        structured_content=payload,
        is_error=False,
    )


def failure(error: CodexMcpError) -> types.CallToolResult:
    """`isError: true`, text `Error [CODE]: message`, structured {error: {code, message, field?}}."""
    message = redact(error.message)
    detail: dict[str, Any] = {"code": error.code, "message": message}
    if error.field is not None:
        detail["field"] = error.field
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"Error [{error.code}]: {message}")],
        structured_content={"error": detail},
        is_error=True,
    )
