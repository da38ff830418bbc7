"""The interactive-request table of the wire: decisions read from the generated response models."""

from __future__ import annotations

from codex_mcp.wire.server_requests import INTERACTIVE

_SIMPLE = ("accept", "acceptForSession", "decline", "cancel")


def test_the_decisions_read_from_the_generated_models_are_the_ones_we_offer() -> None:
    assert INTERACTIVE["item/commandExecution/requestApproval"].decisions == (
        *_SIMPLE,
        "acceptWithExecpolicyAmendment",
        "applyNetworkPolicyAmendment",
    )
    assert INTERACTIVE["item/fileChange/requestApproval"].decisions == _SIMPLE


def test_each_interactive_request_shows_as_one_action_type_and_kind() -> None:
    shown = {method: (spec.action_type, spec.kind) for method, spec in INTERACTIVE.items()}
    assert shown == {
        "item/commandExecution/requestApproval": ("approval", "command"),
        "item/fileChange/requestApproval": ("approval", "fileChange"),
        "item/permissions/requestApproval": ("approval", "permissions"),
        "mcpServer/elicitation/request": ("approval", "mcpToolCall"),
        "item/tool/requestUserInput": ("user_input", "user_input"),
    }
