"""Is a file an image we may hand to Codex: its format, size and dimensions, read from its header.

Codex uploads every image it is given to the model provider, so the content must be an image (a key
or a config file named `x.png` must not leave the machine that way). And it reads the whole file and
decodes it before it decides the image is too big: a 1 GiB file with a PNG header grew the Codex
child to 3.8 GB. So the file's size and the dimensions its header declares are checked first, and
nothing is decoded here: only the first bytes are read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# The model providers' own limits: OpenAI takes images of up to 20 MB, and scales anything larger
# than 2048 px down; 8192 px a side is Anthropic's cap and well past any screenshot.
MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
MAX_IMAGE_SIDE: Final = 8192
_HEAD_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class ImageInfo:
    """What the header says."""

    format: str
    width: int
    height: int


def image_problem(path: Path) -> str | None:
    """Why `path` cannot be sent as an image (a sentence), or None when it can."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    info = read_header(head)
    if info is None:
        return "is not a PNG, JPEG, GIF or WebP image"
    if size > MAX_IMAGE_BYTES:
        return f"is {size} bytes; images may be at most {MAX_IMAGE_BYTES} bytes (20 MiB)"
    if not (0 < info.width <= MAX_IMAGE_SIDE and 0 < info.height <= MAX_IMAGE_SIDE):
        return (
            f"is a {info.width}x{info.height} {info.format}; images may be at most "
            f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels"
        )
    return None


def read_header(head: bytes) -> ImageInfo | None:
    """The format and dimensions the first bytes of a file declare; None when it is not an image
    we accept (or its header is too broken to tell its dimensions)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(head)
    if head.startswith((b"GIF87a", b"GIF89a")) and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return ImageInfo("GIF", width, height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head.startswith(b"\xff\xd8\xff"):
        return _jpeg(head)
    return None


def _png(head: bytes) -> ImageInfo | None:
    # The first chunk must be IHDR: width and height, big-endian.
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return ImageInfo("PNG", width, height)


def _webp(head: bytes) -> ImageInfo | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return ImageInfo("WebP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return ImageInfo("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return ImageInfo("WebP", width, height)
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless, ...; not DHT/JPG/DAC).
_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(head: bytes) -> ImageInfo | None:
    index = 2
    while index + 4 <= len(head):
        if head[index] != 0xFF:
            return None
        marker = head[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            index += 2
            continue
        (length,) = struct.unpack(">H", head[index + 2 : index + 4])
        if marker in _SOF_MARKERS:
            if index + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[index + 5 : index + 9])
            return ImageInfo("JPEG", width, height)
        index += 2 + length
    return None  # no frame header in the first bytes: not an image we can vouch for
