"""The import graph of the package keeps its layers: an AST scan of every import in `src/codex_mcp`.

Lower layers never import higher ones, so each can be read and tested without what sits above it:

    proc            the OS layer (process trees, the sweeper, line splitting): nothing of ours
    codex_probe     running Codex to learn about it: no sessions, backends, server, resources, state
    wire            the only importer of `_generated`
    state           storage: no sessions, no backends
    service         the shared Codex service (keeper, attach): no sessions, server or resources
    resources       what the server publishes: no sessions (the catalog takes a Protocol)
    server          MCP: no backends (it drives Codex through sessions)

Every import counts: module level, inside functions (lazy), under TYPE_CHECKING, and relative.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "codex_mcp"
PACKAGE: Final = "codex_mcp"

# layer -> the layers it must not import (each a package or a module directly under codex_mcp).
_EVERY_LAYER: Final = frozenset(
    path.stem if path.is_file() else path.name
    for path in SRC.iterdir()
    if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
)
FORBIDDEN: Final[dict[str, frozenset[str]]] = {
    "server": frozenset({"backends"}),
    "state": frozenset({"sessions", "backends"}),
    "service": frozenset({"sessions", "server", "resources"}),
    "resources": frozenset({"sessions"}),
    "proc": _EVERY_LAYER - {"proc"},
    "codex_probe": frozenset({"sessions", "backends", "server", "resources", "state"}),
}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) imports; `from a import b` counts as a and a.b."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _layer_of(module: str) -> str | None:
    """The layer `module` belongs to: the first name below codex_mcp, None outside the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE else None


Source = tuple[str, str, set[str]]


def _sources(root: Path = SRC) -> Iterator[Source]:
    """(layer, file relative to `root`, modules it imports) for every file of the package at `root`."""
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        layer = _layer_of(module)
        if layer is None:
            continue
        text = path.read_text(encoding="utf-8")
        yield (
            layer,
            str(path.relative_to(root)),
            imported_modules(text, module, is_package=path.stem == "__init__"),
        )


def _violations(sources: Iterator[Source] | list[Source]) -> list[str]:
    found: list[str] = []
    for layer, name, modules in sources:
        bad = {m for m in modules if _layer_of(m) in FORBIDDEN.get(layer, frozenset())}
        # `from a.b import c` is reported as a.b, not also as a.b.c.
        for module in sorted(m for m in bad if not any(m.startswith(f"{other}.") for other in bad)):
            found.append(f"{name} imports {module} ({layer} must not import {_layer_of(module)})")
    return found


def test_no_layer_imports_a_layer_it_must_not() -> None:
    assert _violations(_sources()) == []


def test_nothing_outside_wire_imports_the_generated_package() -> None:
    offenders = [
        name
        for layer, name, modules in _sources()
        if layer not in ("wire", "_generated") and any(_layer_of(m) == "_generated" for m in modules)
    ]
    assert offenders == []


# The scan must see imports, or every rule above would pass on nothing.


def test_every_layer_a_rule_names_exists_and_has_files() -> None:
    layers = {layer for layer, _, _ in _sources()}
    named = set(FORBIDDEN) | {target for targets in FORBIDDEN.values() for target in targets}
    assert named <= layers
    assert {"wire", "_generated"} <= layers


def test_the_scan_sees_the_imports_the_package_is_known_to_have() -> None:
    seen = {name: modules for _, name, modules in _sources()}
    assert "codex_mcp.proc.proc_tree" in seen["backends/process.py"]  # from codex_mcp.proc import proc_tree
    assert "codex_mcp.sessions.manager" in seen["server/app.py"]
    assert "codex_mcp.doctor" in seen["cli.py"]  # a lazy import, inside a function
    assert any(_layer_of(m) == "_generated" for m in seen["wire/app_server.py"])
    # Each layer a rule guards imports something of ours: the rule is about real edges.
    for layer in FORBIDDEN:
        ours = [m for lay, _, modules in _sources() if lay == layer for m in modules if _layer_of(m)]
        assert ours, layer


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import codex_mcp.backends.process", "codex_mcp.server.app", "codex_mcp.backends.process"),
        ("from codex_mcp import backends", "codex_mcp.server.app", "codex_mcp.backends"),
        ("from ..backends import process", "codex_mcp.server.app", "codex_mcp.backends.process"),
        ("from . import backends", "codex_mcp.cli", "codex_mcp.backends"),
        ("def f():\n    from codex_mcp.backends import exec\n", "codex_mcp.server.app", "codex_mcp.backends"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import codex_mcp.backends\n",
            "codex_mcp.server.app",
            "codex_mcp.backends",
        ),
    ],
)
def test_the_scan_sees_every_form_of_import(source: str, module: str, expected: str) -> None:
    assert expected in imported_modules(source, module)


def test_a_forbidden_import_is_reported_and_an_allowed_one_is_not() -> None:
    source = "from codex_mcp.backends import proc_tree\nfrom codex_mcp.state import files\n"
    modules = imported_modules(source, "codex_mcp.state.reaper")
    assert _violations([("state", "state/reaper.py", modules)]) == [
        "state/reaper.py imports codex_mcp.backends (state must not import backends)"
    ]
    assert _violations([("sessions", "sessions/x.py", modules)]) == []
