"""codex-mcp: an MCP server that runs OpenAI Codex agents as asynchronous sessions."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
