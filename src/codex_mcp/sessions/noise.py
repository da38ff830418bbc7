"""Shell-profile noise in command output (banners, prompts, terminal escapes), dropped from deltas."""

from __future__ import annotations

import re
from typing import Final

# VS Code shell integration markers: ESC ] 633 ; ... (BEL or ST terminated).
_SHELL_INTEGRATION: Final = "\x1b]633;"
_NOISE: Final = (
    re.compile(r"oh-my-posh", re.IGNORECASE),
    re.compile(r"PSReadLine", re.IGNORECASE),
    re.compile(r"^WARNING:\s"),
    re.compile(r"Loading personal and system profiles", re.IGNORECASE),
    re.compile(r"^(\(base\)|\(conda\))"),
    re.compile(r"A new version of .+ is available", re.IGNORECASE),
)


def is_noise(line: str) -> bool:
    """Whether one output line is shell noise rather than the command's own output."""
    return _SHELL_INTEGRATION in line or any(pattern.search(line) for pattern in _NOISE)


def strip_noise(text: str) -> str:
    """`text` without its noise lines (line endings of the kept lines preserved)."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_noise(line))
