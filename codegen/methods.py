"""Emit `_generated/methods.py`: every Codex message name as a constant, so no hand code spells one.

One constant per app-server method (client and server requests and notifications), named after
the method (`turn/start` -> `TURN_START`), and one per `codex exec --json` event type, prefixed
`EXEC_EVENT_` (`turn.completed` -> `EXEC_EVENT_TURN_COMPLETED`). The module imports nothing
heavy: string constants only, cheap for any layer to use.
"""

from __future__ import annotations

import re

from codegen.app_server import ProtocolIndex


def constant_name(name: str) -> str:
    """`item/agentMessage/delta` -> `ITEM_AGENT_MESSAGE_DELTA`; `thread.started` -> `THREAD_STARTED`.

    Words break at separators and where a capital follows a lowercase letter or digit, so an
    acronym stays whole (`gatewayOAuth` -> `GATEWAY_OAUTH`).
    """
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return "_".join(word for word in re.split(r"[^0-9A-Za-z]+", spaced) if word).upper()


def _section(comment: str, names: list[str], prefix: str, taken: dict[str, str]) -> list[str]:
    lines = ["", f"# {comment}"]
    for name in names:
        constant = prefix + constant_name(name)
        if taken.get(constant, name) != name:
            raise SystemExit(f"methods: {name!r} and {taken[constant]!r} both make the constant {constant}")
        if constant in taken:
            continue
        taken[constant] = name
        lines.append(f"{constant}: Final = {name!r}")
    return lines


def _frozenset(comment: str, name: str, constants: list[str]) -> list[str]:
    lines = ["", f"# {comment}", f"{name}: Final[frozenset[str]] = frozenset({{"]
    lines += [f"    {constant}," for constant in constants]
    return [*lines, "})"]


def render_methods(*, file_header: str, index: ProtocolIndex, exec_event_types: list[str]) -> str:
    """Module text of the method-name constants."""
    methods: dict[str, str] = {}
    out: list[str] = [
        file_header,
        '"""Codex method and exec event type names as constants. Generated; do not edit."""',
        "",
        "from typing import Final",
    ]
    out += _section(
        "Requests we may send to app-server.", [e.method for e in index.client_requests], "", methods
    )
    out += _section(
        "Notifications we may send to app-server.",
        [e.method for e in index.client_notifications],
        "",
        methods,
    )
    out += _section("Requests app-server sends us.", [e.method for e in index.server_requests], "", methods)
    out += _section(
        "Notifications app-server sends us.",
        [e.method for e in index.server_notifications],
        "",
        methods,
    )
    exec_types: dict[str, str] = {}
    out += _section("`codex exec --json` event types.", exec_event_types, "EXEC_EVENT_", exec_types)
    clash = methods.keys() & exec_types.keys()
    if clash:
        raise SystemExit(f"methods: constants named twice: {sorted(clash)}")
    out += _frozenset("Every app-server method name above.", "APP_SERVER_METHODS", list(methods))
    out += _frozenset("Every exec event type above.", "EXEC_EVENT_TYPES", list(exec_types))
    exported = [*methods, *exec_types, "APP_SERVER_METHODS", "EXEC_EVENT_TYPES"]
    out += ["", "__all__ = [", *(f"    {name!r}," for name in exported), "]"]
    return "\n".join([*out, ""])
