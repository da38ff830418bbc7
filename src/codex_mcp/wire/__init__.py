"""The only layer that imports `codex_mcp._generated`: parsing and encoding of Codex's messages."""
