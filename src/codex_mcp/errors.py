"""The errors a tool call can end with, and how they read.

    CodexMcpError(code, message, field=None)   every failure a tool reports; `code` is one of CODES
      raised anywhere below the server layer; the server turns it into
      `isError: true`, text `Error [CODE]: message`, structured {error: {code, message, field?}}.

Anything else that escapes a handler is a bug: it becomes INTERNAL with a redacted message.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

ErrorCode = Literal[
    "INVALID_ARGUMENT",
    "SESSION_NOT_FOUND",
    "SESSION_BUSY",
    "SESSION_NOT_RUNNING",
    "SESSION_OWNED_ELSEWHERE",
    "REQUEST_NOT_FOUND",
    "CANCELLED",
    "TIMEOUT",
    "APP_SERVER_START_FAILED",
    "PROTOCOL_PARSE_ERROR",
    "EXEC_NOT_SUPPORTED",
    "INTERNAL",
]

CODES: Final[tuple[ErrorCode, ...]] = get_args(ErrorCode)


class CodexMcpError(Exception):
    """A failure reported to the MCP client as a tool error."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"Error [{self.code}]: {redact(self.message)}"


# Absolute POSIX paths of two or more segments, Windows drive and UNC paths.
_PATH = re.compile(r"(?<![\w/.-])(?:/[^\s/'\"`:,;()\[\]{}]+){2,}/?|\b[A-Za-z]:\\[^\s'\"`]*|\\\\[^\s'\"`]+")
# API keys and bearer tokens.
_SECRET = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{8,}|Bearer\s+[A-Za-z0-9._~+/=-]{8,})")


def redact(text: str) -> str:
    """`text` with filesystem paths replaced by `<path>` and secrets by `<secret>`."""
    return _PATH.sub("<path>", _SECRET.sub("<secret>", text))
