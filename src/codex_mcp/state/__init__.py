"""The state directory: sessions persisted across restarts, the lock, and the children we spawned.

Storage only: what a session *is* lives in `codex_mcp.sessions`; this package keeps dicts and
event records on disk and hands them back.
"""
