"""What may go to Codex as an image: format, size and dimensions from the header alone."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from codex_mcp.server.images import MAX_IMAGE_BYTES, image_problem, read_header
from tests.harness.images import tiny_png


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def _webp_vp8x(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (tiny_png(3, 2), ("PNG", 3, 2)),
        (b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 8, ("GIF", 640, 480)),
        (_jpeg(1920, 1080), ("JPEG", 1920, 1080)),
        (_webp_vp8x(800, 600), ("WebP", 800, 600)),
    ],
)
def test_the_header_gives_format_and_dimensions(head: bytes, expected: tuple[str, int, int]) -> None:
    info = read_header(head)
    assert info is not None
    assert (info.format, info.width, info.height) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"GIF89a",
        b"RIFF\x00\x00\x00\x00WEBPVP8Z",
        b"sk-secret-key",
        b"",
    ],
)
def test_a_bare_signature_or_anything_else_is_not_an_image(head: bytes) -> None:
    assert read_header(head) is None


def test_a_small_real_image_passes(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    path.write_bytes(tiny_png(64, 64))
    assert image_problem(path) is None


def test_a_huge_sparse_file_with_an_image_header_is_refused_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:
        handle.write(tiny_png())
        handle.truncate(1 << 30)  # 1 GiB, sparse
    problem = image_problem(path)
    assert problem == f"is {1 << 30} bytes; images may be at most {MAX_IMAGE_BYTES} bytes (20 MiB)"


def test_dimensions_past_the_limit_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(tiny_png(1, 1).replace(struct.pack(">II", 1, 1), struct.pack(">II", 100_000, 1), 1))
    assert image_problem(path) == "is a 100000x1 PNG; images may be at most 8192x8192 pixels"


def test_a_key_named_like_an_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "screenshot.png"
    path.write_text("sk-live-0123456789abcdef")
    assert image_problem(path) == "is not a PNG, JPEG, GIF or WebP image"
