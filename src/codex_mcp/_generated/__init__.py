"""Generated models. Import them through `codex_mcp.wire`, not directly."""
