"""The OS layer: process trees, the detached sweeper and line splitting.

It imports nothing else of the package, so every layer above it (backends, state, server) may use it.
Kept empty: `python -m codex_mcp.proc.sweep` imports this package first.
"""
