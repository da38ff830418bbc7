"""The requests Codex sends us that a caller must answer, and the decisions each one takes.

A table of the wire, so that both the sessions (which show and answer these requests) and the
resources (which report which kinds the running Codex supports) read it from one place below them.
The methods are checked against the generated `SERVER_REQUESTS`; where the generated response model
spells the decision out (command and file-change approvals), the decisions are read from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args, get_origin

from pydantic import BaseModel
from typing_extensions import TypeAliasType  # what the generated models use

from codex_mcp._generated import registry
from codex_mcp._generated.app_server import (
    CommandExecutionRequestApprovalResponse,
    FileChangeRequestApprovalResponse,
)


@dataclass(frozen=True)
class Interactive:
    """A request the caller must answer: which action type and kind it shows as."""

    action_type: Literal["approval", "user_input"]
    kind: str
    decisions: tuple[str, ...]


def decision_names(response: type[BaseModel]) -> tuple[str, ...]:
    """The decisions `response.decision` takes: its plain names first, then its object forms by key."""
    annotation: Any = response.model_fields["decision"].annotation
    if isinstance(annotation, TypeAliasType):
        annotation = annotation.__value__
    plain: list[str] = []
    keyed: list[str] = []
    for member in get_args(annotation):
        if get_origin(member) is Literal:
            plain.extend(str(value) for value in get_args(member))
        elif isinstance(member, type) and issubclass(member, BaseModel):
            (field,) = member.model_fields.values()  # an object form has exactly one key
            keyed.append(str(field.alias))
    return (*plain, *keyed)


# Permission grants and MCP elicitations take no decision field: we map these names onto their
# `scope` and `action`/`_meta.persist` (see `sessions.approvals.permission_response`).
_SIMPLE: Final = ("accept", "acceptForSession", "decline", "cancel")

INTERACTIVE: Final[dict[str, Interactive]] = {
    "item/commandExecution/requestApproval": Interactive(
        "approval", "command", decision_names(CommandExecutionRequestApprovalResponse)
    ),
    "item/fileChange/requestApproval": Interactive(
        "approval", "fileChange", decision_names(FileChangeRequestApprovalResponse)
    ),
    "item/permissions/requestApproval": Interactive("approval", "permissions", _SIMPLE),
    "mcpServer/elicitation/request": Interactive("approval", "mcpToolCall", _SIMPLE),
    "item/tool/requestUserInput": Interactive("user_input", "user_input", ()),
}

_UNKNOWN: Final = set(INTERACTIVE) - set(registry.SERVER_REQUESTS)
if _UNKNOWN:  # pragma: no cover - a codegen update that renamed a request fails at import
    raise ImportError(f"interactive requests the pinned protocol does not send: {sorted(_UNKNOWN)}")
