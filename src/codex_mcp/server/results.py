"""CallToolResult builders: structured content plus the same JSON as text, or a tool error."""

from __future__ import annotations

import json
import re
from typing import Any, Final

import mcp_types as types

from codex_mcp.errors import CodexMcpError, redact

# A lone surrogate (a str that came through surrogateescape or a `\ud800` JSON escape) cannot be
# written as UTF-8: the MCP stdout writer would fail, and the connection with it.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def success(payload: dict[str, Any]) -> types.CallToolResult:
    """A result whose structuredContent is `payload` and whose text is the same JSON.

    Lone surrogates anywhere in `payload` become U+FFFD, in both forms.
    """
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
        payload = json.loads(text)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=payload,
        is_error=False,
    )


def failure(error: CodexMcpError) -> types.CallToolResult:
    """`isError: true`, text `Error [CODE]: message`, structured {error: {code, message, field?}}."""
    message = _SURROGATE.sub("\ufffd", redact(error.message))
    detail: dict[str, Any] = {"code": error.code, "message": message}
    if error.field is not None:
        detail["field"] = error.field
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"Error [{error.code}]: {message}")],
        structured_content={"error": detail},
        is_error=True,
    )
