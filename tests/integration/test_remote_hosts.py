"""Sessions on remote app-servers (CODEX_MCP_HOSTS) on the real pinned Codex: two `codex app-server
--listen ws://127.0.0.1:0 --ws-auth capability-token` listeners with token files stand in for two
machines. New sessions spread over them, a session can name its host, a host that goes away fails
only its own running turn (naming it), and no token shows anywhere."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.host_health import check_hosts
from codex_mcp.sessions.backend import TurnRequest
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import PLAIN_TEXT
from tests.integration.test_app_server_socket import TOKEN, app_server_listening

pytestmark = [pytest.mark.real_codex, pytest.mark.timeout(180), pytest.mark.anyio]

WAIT_S = 90.0


def _thread(codex_env: CodexEnv, host: str | None = None) -> ThreadSettings:
    return ThreadSettings(
        approval_policy="never", sandbox="read-only", cwd=str(codex_env.workspace), host=host
    )


async def test_sessions_spread_over_the_hosts_and_a_host_that_goes_away_fails_only_its_turn(
    codex_env: CodexEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    auth = ("--ws-auth", "capability-token", "--ws-token-file", str(token_file))
    with anyio.fail_after(WAIT_S):
        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(
                app_server_listening(codex_env, "ws://127.0.0.1:0", *auth)
            )
            second = await stack.enter_async_context(
                app_server_listening(codex_env, "ws://127.0.0.1:0", *auth)
            )
            hosts = tmp_path / "hosts.toml"
            hosts.write_text(
                f'[[hosts]]\nname = "one"\nurl = "{first.url}"\ntoken_file = "token"\n'
                f'[[hosts]]\nname = "two"\nurl = "{second.url}"\ntoken_file = "token"\n'
            )
            settings = Settings.from_env({"CODEX_MCP_HOSTS": str(hosts), "CODEX_MCP_DRAIN_TIMEOUT_MS": "1"})
            codex = CodexExecutable(codex_env.binary, "test")
            async with SessionManager.open(codex, settings) as manager:
                done: list[Session] = []
                for _ in range(4):
                    session = await manager.start(
                        _thread(codex_env), TurnRequest(prompt="scenario:plain hi"), []
                    )
                    await session.turn_finished.wait()
                    done.append(session)
                placed = sorted(session.settings.host or "" for session in done)
                assert placed == ["one", "one", "two", "two"]  # the least busy host each time
                assert {s.result["text"] for s in done if s.result} == {PLAIN_TEXT}

                with pytest.raises(CodexMcpError) as unknown:
                    await manager.start(_thread(codex_env, "three"), TurnRequest(prompt="hi"), [])
                assert (unknown.value.code, unknown.value.field) == ("INVALID_ARGUMENT", "advanced.host")
                assert "the hosts are one, two" in unknown.value.message

                doomed = await manager.start(
                    _thread(codex_env, "one"), TurnRequest(prompt="scenario:slow a"), []
                )
                spared = await manager.start(
                    _thread(codex_env, "two"), TurnRequest(prompt="scenario:slow b"), []
                )
                os.kill(first.child.pid, signal.SIGKILL)
                with anyio.fail_after(10):  # the host's connection drops at once
                    await doomed.turn_finished.wait()
                assert doomed.status == "error"
                assert doomed.result is not None
                assert doomed.result["error"]["message"].startswith("host one went away")
                await spared.turn_finished.wait()
                assert spared.status == "idle"
                with pytest.raises(CodexMcpError) as gone:
                    await manager.reply(doomed.session_id, TurnRequest(prompt="scenario:plain again"), [])
                assert gone.value.message.startswith("host one: ")
    assert TOKEN not in caplog.text


def _jwt(secret: bytes, *, issuer: str, audience: str, expires_in_s: int) -> str:
    """An HS256 JWT, as a multi-user setup would mint one for a host started in signed-bearer mode."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"iss": issuer, "aud": audience, "exp": int(time.time()) + expires_in_s, "sub": "codex-mcp"}
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


async def test_a_host_in_signed_bearer_mode_runs_sessions_with_a_jwt_and_an_expired_one_is_named(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    secret = secrets.token_bytes(24).hex().encode()  # 48 bytes of text: Codex wants at least 32
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    token_file = tmp_path / "jwt"
    fresh = _jwt(secret, issuer="ops", audience="codex", expires_in_s=600)
    token_file.write_text(fresh)
    token_file.chmod(0o600)
    options = ("--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", str(secret_file))
    options += ("--ws-issuer", "ops", "--ws-audience", "codex")
    with anyio.fail_after(WAIT_S):
        async with app_server_listening(codex_env, "ws://127.0.0.1:0", *options) as service:
            hosts = tmp_path / "hosts.toml"
            hosts.write_text(f'[[hosts]]\nname = "jwt-box"\nurl = "{service.url}"\ntoken_file = "jwt"\n')
            settings = Settings.from_env({"CODEX_MCP_HOSTS": str(hosts)})
            (health,) = await check_hosts(settings.hosts)
            assert (health.ready, health.version, health.problem) == (True, PINNED_CODEX_VERSION, None)
            codex = CodexExecutable(codex_env.binary, "test")
            async with SessionManager.open(codex, settings) as manager:
                session = await manager.start(_thread(codex_env), TurnRequest(prompt="scenario:plain hi"), [])
                await session.turn_finished.wait()
                assert session.settings.host == "jwt-box"
                assert session.result is not None
                assert session.result["text"] == PLAIN_TEXT

            expired = _jwt(secret, issuer="ops", audience="codex", expires_in_s=-600)
            token_file.write_text(expired)  # read again at the next connection
            (health,) = await check_hosts(settings.hosts)
    assert not health.ready
    assert health.problem is not None
    code, message, fix = health.problem
    assert (code, message.startswith("host jwt-box (")) == ("HOST_AUTH_FAILED", True)
    assert str(token_file) in fix
    for token in (fresh, expired, secret.decode()):
        assert token not in f"{message} {fix} {health.detail}"
