"""PINNED.json: which Codex printed the vendored app-server bundle, and its sha256."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codegen.render import sha256_of

GENERATE_ARGS: tuple[str, ...] = ("app-server", "generate-json-schema", "--experimental")


def write(bundle: Path, pinned: Path, codex_version: str) -> None:
    """Record the bundle's origin next to it."""
    record: dict[str, Any] = {
        "codexVersion": codex_version,
        "command": "codex " + " ".join(GENERATE_ARGS) + " --out DIR",
        "file": bundle.name,
        "sha256": sha256_of(bundle),
    }
    pinned.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read(pinned: Path) -> dict[str, Any]:
    """The pin record."""
    record: dict[str, Any] = json.loads(pinned.read_text(encoding="utf-8"))
    return record


def verify(bundle: Path, pinned: Path) -> None:
    """Refuse to generate from a bundle that is not the pinned one."""
    record = read(pinned)
    actual = sha256_of(bundle)
    if record["sha256"] != actual:
        raise SystemExit(
            f"{bundle.name}: sha256 {actual} does not match PINNED.json ({record['sha256']}). "
            "Re-vendor it with `python -m codegen refresh --codex PATH` instead of editing it."
        )
