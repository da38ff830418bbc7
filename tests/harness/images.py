"""Small real image files for tests that hand images to Codex."""

from __future__ import annotations

import struct
import zlib


def tiny_png(width: int = 1, height: int = 1) -> bytes:
    """A valid RGB PNG of one colour (the header declares `width` x `height`)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + b"\x33\x99\xff" * width) * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
