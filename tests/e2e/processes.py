"""Finding our children after the fact: they inherit the test's CODEX_HOME in their environment."""

from __future__ import annotations

from pathlib import Path


def live_processes_with_env(entry: str, *, argv_contains: bytes = b"") -> list[int]:
    """Pids of live (not zombie) processes whose environment holds `entry` and argv holds `argv_contains`."""
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            argv = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if entry.encode() in environ and argv_contains in argv and state not in ("Z", "X"):
            found.append(int(proc.name))
    return found
