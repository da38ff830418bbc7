"""Security over the real server: what may be uploaded as an image, and flags nobody can smuggle in."""

from __future__ import annotations

import pytest

from tests.e2e.client import running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]


async def test_a_file_that_is_not_an_image_is_never_handed_to_codex(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    secret = codex_env.home / ".ssh" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    disguised = codex_env.workspace / "screenshot.png"
    disguised.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    async with running_server(codex_env) as mcp:
        errors = [
            await mcp.error(
                "codex",
                {
                    "prompt": "scenario:plain look",
                    "approvalPolicy": "never",
                    "sandbox": "read-only",
                    "advanced": {"images": [path]},
                },
            )
            for path in (str(secret), "screenshot.png")
        ]
    for error in errors:
        assert error.code == "INVALID_ARGUMENT"
        assert error.field == "advanced.images[0]"
        assert "is not a PNG, JPEG, GIF or WebP image" in error.message
    assert str(codex_env.home) not in errors[0].message
    assert mock_model.responses_requests() == []


async def test_a_model_named_like_a_flag_stays_a_model_name_under_exec(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with running_server(codex_env, {"CODEX_MCP_MODE": "exec"}) as mcp:
        out = await mcp.call(
            "codex",
            {
                "prompt": "scenario:plain hi",
                "approvalPolicy": "never",
                "sandbox": "read-only",
                "model": "--dangerously-bypass-approvals-and-sandbox",
                "advanced": {"waitForResult": 30000},
            },
        )
    assert out["status"] == "idle"
    assert out["result"]["text"] == PLAIN_TEXT
    assert mock_model.responses_requests()[-1].json["model"] == "--dangerously-bypass-approvals-and-sandbox"
