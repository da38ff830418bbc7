"""Outside `wire/` and `_generated/`, no code spells a Codex method or exec event type name.

The names come from `codex_mcp.wire.methods`, generated from the schemas, so a method a new Codex
renames breaks the type check instead of a session. A few names are also ordinary words or other
protocols' names ("error" is a session status and an event type too): those count only where the
code uses them as a method.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from codex_mcp.wire import methods

SRC = Path(__file__).resolve().parents[2] / "src" / "codex_mcp"
NAMES = methods.APP_SERVER_METHODS | methods.EXEC_EVENT_TYPES
CONSTANTS = frozenset(
    name for name, value in vars(methods).items() if isinstance(value, str) and value in NAMES
)
# Names that are also plain words in our own vocabulary: flagged only in a method's place.
AMBIGUOUS = frozenset({"error"})
# (file, name) pairs that are another protocol's name, not Codex's.
OTHER_PROTOCOLS = {("server/early.py", "initialize"): "MCP's own handshake request"}


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_method_name(node: ast.AST) -> bool:
    """A Codex name spelled out, or one of the generated constants."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value in NAMES and node.value not in AMBIGUOUS
    return _name_of(node) in CONSTANTS


def _method_params(trees: list[ast.Module]) -> dict[str, set[int]]:
    """Function name -> positions of a parameter called `method` (self and cls not counted)."""
    found: dict[str, set[int]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [arg.arg for arg in node.args.args if arg.arg not in ("self", "cls")]
                if "method" in names:
                    found.setdefault(node.name, set()).add(names.index("method"))
    return found


def _methodish(name: str) -> bool:
    return "method" in name.lower()


def _compares_a_method(node: ast.AST | None) -> bool:
    if not isinstance(node, ast.Compare):
        return False
    return any(_methodish(_name_of(side)) for side in [node.left, *node.comparators])


def _in_method_place(
    node: ast.Constant, parents: dict[ast.AST, ast.AST], method_params: dict[str, set[int]]
) -> bool:
    """Whether an ambiguous literal stands where a method goes."""
    parent = parents[node]
    if _compares_a_method(parent):
        return True
    if isinstance(parent, ast.Tuple | ast.List | ast.Set):
        siblings = [element for element in parent.elts if element is not node]
        if _compares_a_method(parents.get(parent)) or any(_is_method_name(e) for e in siblings):
            return True
        # `(method, params)`: the notification shape the exec mapper returns.
        return len(parent.elts) == 2 and parent.elts[0] is node and isinstance(parent.elts[1], ast.Dict)
    if isinstance(parent, ast.Dict):
        keys = [key for key in parent.keys if key is not None]
        if node in keys:
            return any(_is_method_name(key) for key in keys if key is not node)
        key = parent.keys[parent.values.index(node)] if node in parent.values else None
        return isinstance(key, ast.Constant) and isinstance(key.value, str) and _methodish(key.value)
    if isinstance(parent, ast.MatchValue):
        match = parent
        while not isinstance(match, ast.Match):
            match = parents[match]
        values = [p.value for p in ast.walk(match) if isinstance(p, ast.MatchValue) and p is not parent]
        return any(_is_method_name(value) for value in values)
    if isinstance(parent, ast.keyword):
        return parent.arg is not None and _methodish(parent.arg)
    if isinstance(parent, ast.Call) and node in parent.args:
        return parent.args.index(node) in method_params.get(_name_of(parent.func), set())
    return False


def method_literals(sources: dict[str, str]) -> Iterator[str]:
    """`file:line: name` for each Codex name spelled in `sources` (relative path -> text)."""
    trees = {relative: ast.parse(text) for relative, text in sources.items()}
    method_params = _method_params(list(trees.values()))
    for relative, tree in trees.items():
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        strings = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        for node in sorted(strings, key=lambda n: (n.lineno, n.col_offset)):
            name = node.value
            if name not in NAMES or (relative, name) in OTHER_PROTOCOLS:
                continue
            if name in AMBIGUOUS and not _in_method_place(node, parents, method_params):
                continue
            yield f"{relative}:{node.lineno}: {name!r}"


def _hand_written_sources() -> dict[str, str]:
    return {
        path.relative_to(SRC).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] not in ("wire", "_generated")
    }


def test_no_codex_method_name_is_spelled_outside_wire() -> None:
    assert list(method_literals(_hand_written_sources())) == []


def test_the_names_cover_every_direction_and_exec() -> None:
    assert {"turn/start", "initialized", "item/tool/call", "item/agentMessage/delta"} <= NAMES
    assert {"turn.completed", "item.updated"} <= NAMES
    assert methods.TURN_START == "turn/start"
    assert methods.ITEM_AGENT_MESSAGE_DELTA == "item/agentMessage/delta"
    assert methods.ACCOUNT_GATEWAY_OAUTH_CHANGED == "account/gatewayOAuth/changed"
    assert methods.EXEC_EVENT_TURN_COMPLETED == "turn.completed"


def test_the_scan_finds_names_in_every_place_a_method_goes() -> None:
    source = """
def record(session, method, params): ...
if method == "turn/completed": ...
TABLE = {"item/started": 1}
if message.method in ("error",): ...
record(session, "error", {})
note = ("error", {"willRetry": False})
pair = (ERROR, "error")
event = {"sourceMethod": "error"}
send(method="error")
match event_type:
    case "turn.started": ...
    case "error": ...
"""
    found = list(method_literals({"x.py": source}))
    assert found == [
        "x.py:3: 'turn/completed'",
        "x.py:4: 'item/started'",
        "x.py:5: 'error'",
        "x.py:6: 'error'",
        "x.py:7: 'error'",
        "x.py:8: 'error'",
        "x.py:9: 'error'",
        "x.py:10: 'error'",
        "x.py:12: 'turn.started'",
        "x.py:13: 'error'",
    ]


def test_the_scan_leaves_error_as_a_status_or_an_event_type_alone() -> None:
    source = """
if session.status in ("cancelled", "error"): ...
buffer.append("error", data)
result = {"error": {"message": "x"}, "status": "error"}
match item_type:
    case "agent_message": ...
    case "error": ...
"""
    assert list(method_literals({"x.py": source})) == []
