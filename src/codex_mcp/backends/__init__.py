"""Child-process adapters for Codex: they know the wire format and processes, not MCP."""
