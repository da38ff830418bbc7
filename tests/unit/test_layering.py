"""Only the wire layer may import the generated models."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "codex_mcp"


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_nothing_outside_wire_imports_the_generated_package() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.parent.name not in ("wire", "_generated")
        and any(module.startswith("codex_mcp._generated") for module in _imported_modules(path))
    ]
    assert offenders == []


def test_the_check_sees_imports_of_the_generated_package() -> None:
    wire_modules = [_imported_modules(path) for path in (SRC / "wire").glob("*.py")]
    assert any(any(m.startswith("codex_mcp._generated") for m in modules) for modules in wire_modules)
