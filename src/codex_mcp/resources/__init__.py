"""The read-only MCP resources (`codex-mcp:///…`): server facts, the live compatibility report,
the docs a model reads, and our published schemas. `catalog.py` lists and reads them."""
