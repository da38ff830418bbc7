"""Make recorded Codex traffic machine-independent.

Paths of the temporary Codex installation become placeholders, UUIDs become
stable fake UUIDs (consistently within one recording, so ids still link up) and
the host name becomes ``host``. Only values change, never structure.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from typing import Final, cast

_UUID: Final = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
HOST_PLACEHOLDER: Final = "host"


class Scrubber:
    """Rewrites strings (recursively through JSON values and keys)."""

    def __init__(self, replacements: Sequence[tuple[str, str]], *, hostname: str | None = None) -> None:
        # Longest first, so a workspace inside a temp root wins over the root.
        self._replacements = sorted(
            ((real, fake) for real, fake in replacements if real and real != fake),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        self._hostname = hostname if hostname is not None else socket.gethostname()
        self._uuids: dict[str, str] = {}

    def _fake_uuid(self, match: re.Match[str]) -> str:
        real = match.group(0).lower()
        if real not in self._uuids:
            self._uuids[real] = f"00000000-0000-7000-8000-{len(self._uuids) + 1:012d}"
        return self._uuids[real]

    def text(self, value: str) -> str:
        """Scrub one string."""
        for real, fake in self._replacements:
            value = value.replace(real, fake)
        value = _UUID.sub(self._fake_uuid, value)
        if self._hostname and value == self._hostname:
            value = HOST_PLACEHOLDER
        return value

    def value(self, value: object) -> object:
        """Scrub a JSON value recursively (dict keys too)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            mapping = cast(dict[object, object], value)
            return {self.text(str(k)): self.value(v) for k, v in mapping.items()}
        if isinstance(value, list):
            return [self.value(v) for v in cast(list[object], value)]
        return value
