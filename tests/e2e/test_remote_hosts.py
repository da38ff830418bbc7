"""Sessions on remote hosts (CODEX_MCP_HOSTS), real Codex, a real stdio server: three `codex
app-server --listen ws://127.0.0.1:PORT --ws-auth capability-token` listeners, each with its own
CODEX_HOME and token, stand in for three machines.

Thirty sessions started at once spread ten to a host; `codex_setup` reports each host's health and
version; a host killed mid-turn fails only its own turn, at once; a frozen one (SIGSTOP) fails its turn
within its `timeout_ms`; while one is down new sessions go to the others and calls on its sessions
name it; restarted on its port, replies on its sessions continue their threads; a turn on a host
outlives the server that started it; a wrong token makes `codex_setup` name the host and the fix;
and no token appears in any output, log line or state file of the run."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus
from mcp import types

from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from tests.e2e.client import McpServerUnderTest, codex_args, running_server
from tests.harness.codex_env import CodexEnv, create_codex_env
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT, SLOW_TEXT_PREFIX
from tests.integration.test_app_server_socket import Service, app_server_listening

pytestmark = [pytest.mark.real_codex, pytest.mark.anyio, pytest.mark.timeout(420)]

NAMES = ("one", "two", "three")
SESSIONS = 30
TIMEOUT_MS = 4000
WAIT_MS = 90_000


class Run:
    """The hosts, the hosts file, and every output of the run (for the token grep)."""

    def __init__(self, tmp_path: Path, mock_model: MockModelServer, codex_env: CodexEnv) -> None:
        self.conf = tmp_path / "conf"
        self.conf.mkdir()
        self.work = tmp_path / "work"  # the same absolute path on every "machine"
        self.work.mkdir()
        self.tokens = {name: f"tok-{name}-{secrets.token_hex(12)}" for name in NAMES}
        self.envs = {
            name: create_codex_env(
                tmp_path / f"host-{name}",
                mock_model.base_url,
                proxy_url=f"http://127.0.0.1:{mock_model.port}",
                binary=codex_env.binary,
            )
            for name in NAMES
        }
        for name, token in self.tokens.items():
            self.token_file(name).write_text(token)
            self.token_file(name).chmod(0o600)
        self.outputs: list[dict[str, Any]] = []
        self.hosts_file = self.conf / "hosts.toml"

    def token_file(self, name: str) -> Path:
        return self.conf / f"{name}.token"

    def auth(self, name: str) -> tuple[str, ...]:
        return ("--ws-auth", "capability-token", "--ws-token-file", str(self.token_file(name)))

    def write_hosts(self, services: dict[str, Service]) -> None:
        self.hosts_file.write_text(
            "".join(
                f'[[hosts]]\nname = "{name}"\nurl = "{services[name].url}"\n'
                f'token_file = "{name}.token"\ntimeout_ms = {TIMEOUT_MS}\n'
                for name in NAMES
            )
        )

    async def call(self, mcp: McpServerUnderTest, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        out = await mcp.call(tool, arguments)
        self.outputs.append(out)
        return out

    async def start(self, mcp: McpServerUnderTest, prompt: str, **advanced: Any) -> dict[str, Any]:
        return await self.call(mcp, "codex", codex_args(prompt, cwd=str(self.work), advanced=advanced))

    async def ended(self, mcp: McpServerUnderTest, session_id: str) -> dict[str, Any]:
        poll, events = await mcp.run_to_end(session_id)
        self.outputs += [poll, *events]
        return poll

    async def host_of(self, mcp: McpServerUnderTest, session_id: str) -> str:
        got = await self.call(mcp, "codex_session", {"action": "get", "sessionId": session_id})
        return str(got["host"])


async def _running(mcp: McpServerUnderTest, session_id: str) -> None:
    """Until the model has begun streaming the turn's answer."""
    await mcp.poll_until(
        session_id, lambda poll: any(e["type"] == "output" for e in poll["events"]), timeout_s=60
    )


async def _fails_within(mcp: McpServerUnderTest, run: Run, session_id: str, bound_s: float) -> dict[str, Any]:
    begun = time.monotonic()
    poll = await run.ended(mcp, session_id)
    elapsed = time.monotonic() - begun
    assert elapsed < bound_s, f"the turn took {elapsed:.1f}s to fail (bound {bound_s}s)"
    assert poll["status"] == "error", poll
    return poll


async def test_thirty_sessions_over_three_hosts_one_goes_away_and_comes_back(
    codex_env: CodexEnv, mock_model: MockModelServer, tmp_path: Path
) -> None:
    run = Run(tmp_path, mock_model, codex_env)
    extra = {"CODEX_MCP_HOSTS": str(run.hosts_file), "CODEX_MCP_LOG_LEVEL": "DEBUG"}
    log = tmp_path / "servers.log"
    async with anyio.create_task_group() as hosts:

        async def host(name: str, listen: str, *, task_status: TaskStatus[Service]) -> None:
            async with app_server_listening(run.envs[name], listen, *run.auth(name)) as service:
                task_status.started(service)
                await anyio.sleep_forever()

        services: dict[str, Service] = {}
        for name in NAMES:
            services[name] = await hosts.start(host, name, "ws://127.0.0.1:0")
        run.write_hosts(services)
        with log.open("w") as errlog:
            async with running_server(codex_env, extra, errlog=errlog) as mcp:
                setup = await run.call(mcp, "codex_setup", {})
                assert [(h["name"], h["ready"]) for h in setup["hosts"]] == [(n, True) for n in NAMES]
                assert {h["version"] for h in setup["hosts"]} == {PINNED_CODEX_VERSION}
                assert all(h["matchesPinned"] for h in setup["hosts"])
                assert not [p for p in setup["problems"] if p["code"].startswith("HOST_")]

                # Thirty at once: each placement counts the ones still starting.
                started: list[dict[str, Any]] = []

                async def one_session(index: int) -> None:
                    started.append(await run.start(mcp, f"scenario:plain hi {index}", waitForResult=WAIT_MS))

                with anyio.fail_after(240):
                    async with anyio.create_task_group() as tg:
                        for index in range(SESSIONS):
                            tg.start_soon(one_session, index)
                assert [(s["status"], s["result"]["text"]) for s in started] == [
                    ("idle", PLAIN_TEXT)
                ] * SESSIONS
                placed = {s["sessionId"]: await run.host_of(mcp, s["sessionId"]) for s in started}
                assert Counter(placed.values()) == {"one": 10, "two": 10, "three": 10}

                # Killed mid-turn: only its own turn fails, at once, naming it.
                slow = {name: await run.start(mcp, "scenario:slow go", host=name) for name in NAMES}
                for name in NAMES:
                    await _running(mcp, slow[name]["sessionId"])
                os.kill(services["one"].child.pid, signal.SIGKILL)
                failed = await _fails_within(mcp, run, slow["one"]["sessionId"], 3.0)
                assert failed["result"]["error"]["message"].startswith("host one went away")
                for name in ("two", "three"):
                    done = await run.ended(mcp, slow[name]["sessionId"])
                    assert done["status"] == "idle", done
                    assert done["result"]["text"].startswith(SLOW_TEXT_PREFIX)

                # Frozen: no close ever comes; its pings go unanswered for timeout_ms.
                frozen = await run.start(mcp, "scenario:slow go", host="two")
                await _running(mcp, frozen["sessionId"])
                os.kill(services["two"].child.pid, signal.SIGSTOP)
                try:
                    failed = await _fails_within(mcp, run, frozen["sessionId"], TIMEOUT_MS / 1000 + 4)
                finally:
                    os.kill(services["two"].child.pid, signal.SIGCONT)
                message = failed["result"]["error"]["message"]
                assert message.startswith("host two went away"), message
                assert f"did not answer for {TIMEOUT_MS / 1000:g}s" in message

                # While one is down: calls on its sessions name it, new sessions go elsewhere.
                on_one = [sid for sid, host in placed.items() if host == "one"]
                refused = await mcp.error(
                    "codex_reply", {"sessionId": on_one[0], "prompt": "scenario:plain again"}
                )
                assert refused.message.startswith("host one: "), refused
                elsewhere = [
                    await run.start(mcp, "scenario:plain x", waitForResult=WAIT_MS) for _ in range(3)
                ]
                assert {await run.host_of(mcp, s["sessionId"]) for s in elsewhere} <= {"two", "three"}

                # Back on its port: replies on its sessions continue their threads.
                port = services["one"].url.rsplit(":", 1)[1]
                services["one"] = await hosts.start(host, "one", f"ws://127.0.0.1:{port}")
                for session_id in on_one[:3]:
                    before = await run.call(
                        mcp,
                        "codex_session",
                        {"action": "get", "sessionId": session_id, "includeSensitive": True},
                    )
                    reply = await run.call(
                        mcp,
                        "codex_reply",
                        {"sessionId": session_id, "prompt": "scenario:plain again", "waitForResult": WAIT_MS},
                    )
                    assert (reply["status"], reply["result"]["text"]) == ("idle", PLAIN_TEXT), reply
                    assert reply["threadId"] == before["threadId"]

                # A turn on a host outlives the server that started it.
                outliving = await run.start(mcp, "scenario:slow go", host="three")
                await _running(mcp, outliving["sessionId"])
            async with running_server(codex_env, extra, errlog=errlog) as mcp:
                done = await run.ended(mcp, outliving["sessionId"])
                assert done["status"] == "idle", done
                assert done["result"]["status"] == "completed"
                assert done["result"]["text"].startswith(SLOW_TEXT_PREFIX)

                # A wrong token: codex_setup names the host and what to fix.
                run.token_file("two").write_text("not-the-token")
                setup = await run.call(mcp, "codex_setup", {})
                assert not setup["ready"]
                (problem,) = [p for p in setup["problems"] if p["code"].startswith("HOST_")]
                assert problem["code"] == "HOST_AUTH_FAILED"
                assert problem["message"].startswith("host two (")
                assert str(run.token_file("two")) in problem["fix"]
                assert [h["ready"] for h in setup["hosts"]] == [True, False, True]
                read = await mcp.session.read_resource("codex-mcp:///server-info")
                [content] = read.contents
                assert isinstance(content, types.TextResourceContents)
                info = json.loads(content.text)
                run.outputs.append(info)
                assert [h["ready"] for h in info["hosts"]] == [True, False, True]

        hosts.cancel_scope.cancel()

    everything = "\n".join(
        [log.read_text(), *(json.dumps(out) for out in run.outputs)]
        + [p.read_text(errors="replace") for p in (codex_env.root / "state").rglob("*") if p.is_file()]
    )
    assert "host two went away" in everything  # the grep reads what the run wrote
    for token in run.tokens.values():
        assert token not in everything
