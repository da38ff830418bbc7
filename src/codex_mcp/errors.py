"""The errors a tool call can end with, and how they read.

    CodexMcpError(code, message, field=None)   every failure a tool reports; `code` is one of CODES
      raised anywhere below the server layer; the server turns it into
      `isError: true`, text `Error [CODE]: message`, structured {error: {code, message, field?}}.

    CodexProcessError                          a Codex child failed us below the tool layer:
      ChildClosedError                         its stdin is closed or it has exited
      AppServerClosedError                     the app-server connection is gone (with its stderr tail)
      AppServerRequestError                    Codex answered a request with a JSON-RPC error;
                                               `codex_refused` turns it into the tool error

Anything else that escapes a handler is a bug: it becomes INTERNAL with a redacted message.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal, get_args

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


# How much of a child's stderr an error message quotes (its end: where the reason is).
_TAIL_IN_ERROR_CHARS: Final = 2000
# JSON-RPC codes that mean our request itself was wrong (invalid params, invalid request).
_INVALID_PARAMS_CODES: Final = frozenset({-32602, -32600})


def tail_for_error(tail: str) -> str:
    """The end of a child's stderr, redacted, as an error message quotes it."""
    return redact(tail.strip()[-_TAIL_IN_ERROR_CHARS:])


class CodexProcessError(Exception):
    """A Codex child failed us: below the tool layer, turned into a CodexMcpError above it."""


class ChildClosedError(CodexProcessError):
    """The child's stdin is closed or the child has exited."""


class AppServerRequestError(CodexProcessError):
    """Codex answered one of our requests with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.code = code
        self.message = message
        self.data = data


class AppServerClosedError(CodexProcessError):
    """The app-server is gone (exited, closed stdout, or we closed the connection)."""

    def __init__(self, reason: str, stderr_tail: str = "") -> None:
        text = f"codex app-server is gone: {reason}"
        if stderr_tail.strip():
            text += f"; stderr: {tail_for_error(stderr_tail)}"
        super().__init__(text)
        self.reason = reason
        self.stderr_tail = stderr_tail


def codex_refused(method: str, exc: AppServerRequestError) -> CodexMcpError:
    """The tool error for a request Codex refused: ours was invalid, or Codex failed."""
    code: ErrorCode = "INVALID_ARGUMENT" if exc.code in _INVALID_PARAMS_CODES else "INTERNAL"
    return CodexMcpError(code, f"Codex refused {method}: {exc.message}")


def exec_not_supported(what: str) -> CodexMcpError:
    """The tool error for what only the app-server backend can do."""
    return CodexMcpError(
        "EXEC_NOT_SUPPORTED", f"{what} needs the app-server backend; this server runs codex exec"
    )
