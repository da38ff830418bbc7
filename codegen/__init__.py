"""Code generation: turns the JSON Schemas in `schemas/` into `src/codex_mcp/_generated/`."""
