"""How each remote host is: does its listener answer `/readyz`, does it take our token, which Codex
runs there, and does that Codex speak the protocol we are pinned to. For `codex_setup`, `doctor` and
server-info; every check is bounded, the hosts are checked at once, and no token appears in what
is reported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import anyio

from codex_mcp import __version__
from codex_mcp.backends.app_server import Bystander, connect_app_server
from codex_mcp.backends.readyz import probe_ready
from codex_mcp.errors import CodexMcpError, redact
from codex_mcp.hosts import Host
from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from codex_mcp.wire.endpoint import parse_endpoint

# A healthy host answers within a round trip or two; a wedged one must not hold a report.
CHECK_TIMEOUT_S: Final = 5.0
_TUNNEL_FIX: Final = (
    "start `codex app-server --listen ws://IP:PORT --ws-auth capability-token --ws-token-file FILE` "
    "there, or bring its SSH tunnel back up (README, Remote hosts)"
)


@dataclass(frozen=True, slots=True)
class HostHealth:
    """One host's state: `problem` is (code, message, fix) when it cannot run sessions now."""

    name: str
    url: str
    ready: bool
    detail: str
    version: str | None = None
    problem: tuple[str, str, str] | None = None

    @property
    def matches_pinned(self) -> bool | None:
        """Whether its Codex is the version our protocol models are generated from."""
        return None if self.version is None else self.version == PINNED_CODEX_VERSION


def host_version(user_agent: object) -> str | None:
    """The Codex version in an `initialize` answer's userAgent (`originator/0.171.0 (…) …`)."""
    if not isinstance(user_agent, str):
        return None
    head = user_agent.split(" ", 1)[0]
    _, slash, version = head.partition("/")
    return version if slash and version else None


async def check_host(host: Host, *, timeout_s: float = CHECK_TIMEOUT_S) -> HostHealth:
    """Check one host (never raises): `/readyz` (for ws://), then a connection with its token."""

    def failed(code: str, why: str, fix: str) -> HostHealth:
        message = redact(f"host {host.name} ({host.url}): {why}")
        return HostHealth(host.name, host.url, False, why, problem=(code, message, fix))

    if parse_endpoint(host.url).scheme == "ws":
        ready = await probe_ready(host.url, timeout_s=timeout_s)
        if not ready.ready:
            return failed("HOST_UNREACHABLE", ready.detail, _TUNNEL_FIX)
    try:
        token = host.token()
    except CodexMcpError as exc:
        where = host.token_file or host.token_env
        return failed("HOST_TOKEN", exc.message.removeprefix(f"host {host.name}: "), f"fix {where}")
    try:
        with anyio.fail_after(timeout_s):
            async with connect_app_server(
                host.url,
                token=token,
                handler=Bystander(),
                client_version=__version__,
                connect_timeout_s=timeout_s,
            ) as connection:
                version = host_version(getattr(connection.initialize_result, "user_agent", None))
    except TimeoutError:
        return failed("HOST_UNREACHABLE", f"no answer to initialize within {timeout_s:g}s", _TUNNEL_FIX)
    except CodexMcpError as exc:
        if "HTTP 401" in exc.message:
            where = f"token_file {host.token_file}" if host.token_file else f"token_env {host.token_env}"
            fix = (
                f"put the token the host's --ws-token-file holds (or a valid signed bearer token) "
                f"into {where}"
                if token
                else "give the host a token_file or token_env: its listener wants a token"
            )
            return failed("HOST_AUTH_FAILED", "the host refused the token (HTTP 401)", fix)
        return failed("HOST_UNREACHABLE", exc.message, _TUNNEL_FIX)
    return HostHealth(
        host.name, host.url, True, "answers, and took the token" if token else "answers", version
    )


async def check_hosts(hosts: tuple[Host, ...]) -> list[HostHealth]:
    """Every host's health, checked at once, in the order of the hosts file."""
    found: dict[str, HostHealth] = {}

    async def one(host: Host) -> None:
        found[host.name] = await check_host(host)

    async with anyio.create_task_group() as tg:
        for host in hosts:
            tg.start_soon(one, host)
    return [found[host.name] for host in hosts]
