"""Which backend drives Codex: `app-server` when the binary has it, else `exec`.

CODEX_MCP_MODE forces one. Otherwise `ModeResolver` finds out on first need (the first session, a
`codex_setup`, a read of server-info), never at start-up: the server answers its first requests
without running anything. The probe, `codex app-server --help`, has three outcomes, told apart:

- it exits 0: app-server;
- it exits with an error (a usage error: this Codex has no such subcommand): exec, said at
  WARNING in the log and in the `source` that `codex_setup` and server-info show;
- it gives no answer within `PROBE_TIMEOUT_S` (a cold npm Codex took 8.75 s for its first
  `--help` on a busy machine), is killed, or cannot run: app-server is *assumed*. The first spawn
  of `codex app-server` confirms it; when that spawn fails, a second probe with a longer bound
  decides, and only an error exit from it falls back to exec (loudly, as above).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import anyio

from codex_mcp.codex_probe import run_codex
from codex_mcp.errors import CodexMcpError

logger = logging.getLogger(__name__)

BackendMode = Literal["app-server", "exec"]
_MODES: Final[tuple[BackendMode, ...]] = ("app-server", "exec")
# `codex app-server --help` of a warm binary answers in ~0.1 s; a cold one on a busy machine took
# 8.75 s. Past this bound the probe gives up and app-server is assumed (the first spawn decides).
PROBE_TIMEOUT_S: Final = 10.0
# The second probe, after a spawn of an assumed app-server failed: the binary has run by now.
RECHECK_TIMEOUT_S: Final = 30.0
_DETAIL_MAX_CHARS: Final = 200
_EXEC_LIMITS: Final = "sessions run on `codex exec`: no approvals, no fork, no background-terminal cleanup"


@dataclass(frozen=True)
class ModeChoice:
    """The backend and why: CODEX_MCP_MODE, or what the probe (and the first spawn) found."""

    mode: BackendMode
    source: str
    assumed: bool = False
    """The probe gave no answer: app-server until a spawn of it says otherwise."""


@dataclass(frozen=True)
class ProbeResult:
    """What `codex app-server --help` did: its exit status (None: no answer), and a line saying how."""

    returncode: int | None
    detail: str


def forced_mode(env: dict[str, str]) -> ModeChoice | None:
    """The mode CODEX_MCP_MODE sets, None when it is unset.

    Raises:
        CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_MODE when it holds something else.
    """
    forced = env.get("CODEX_MCP_MODE", "").strip()
    if not forced:
        return None
    for mode in _MODES:
        if forced == mode:
            return ModeChoice(mode, "CODEX_MCP_MODE")
    raise CodexMcpError("INVALID_ARGUMENT", f"CODEX_MCP_MODE={forced}: expected app-server or exec")


def _first_line(text: str) -> str:
    line = text.splitlines()[0].strip() if text else ""
    return line[:_DETAIL_MAX_CHARS]


async def probe_app_server(codex: Path, timeout_s: float) -> ProbeResult:
    """Run `codex app-server --help` once, bounded by `timeout_s`; never raises.

    The probe runs in a process group of its own, killed whole when it gives no answer in time.
    """
    try:
        run = await run_codex(codex, ("app-server", "--help"), timeout_s=timeout_s)
    except OSError as exc:
        return ProbeResult(None, f"could not run it: {exc.strerror or exc}")
    if run.returncode is None:
        return ProbeResult(None, f"no answer within {timeout_s:g}s")
    if run.returncode < 0:
        return ProbeResult(None, f"killed by signal {-run.returncode}")
    return ProbeResult(run.returncode, _first_line(run.stderr))


def _no_app_server(probe: ProbeResult) -> str:
    said = f": {probe.detail}" if probe.detail else ""
    return (
        f"`codex app-server --help` exited {probe.returncode}{said}. This Codex has no app-server, so "
        f"{_EXEC_LIMITS}; install a Codex with `codex app-server` (or point CODEX_MCP_PATH at one)"
    )


class ModeResolver:
    """The backend of one server run: forced by CODEX_MCP_MODE, else probed once, on first need.

    `resolve` is safe to call from many tasks at once: they share one probe.
    """

    def __init__(
        self,
        codex: Path,
        forced: ModeChoice | None = None,
        *,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        recheck_timeout_s: float = RECHECK_TIMEOUT_S,
    ) -> None:
        self._codex = codex
        self._choice = forced
        self._probe_timeout_s = probe_timeout_s
        self._recheck_timeout_s = recheck_timeout_s
        # Created on first use: an anyio lock wants the running event loop.
        self._lock: anyio.Lock | None = None
        # Why the first probe gave no answer, while app-server is assumed.
        self._unanswered = ""
        # A spawn failure of an assumed app-server probes again once; later failures are reported as such.
        self._rechecked = False
        self.probes = 0
        """How many times `codex app-server --help` ran."""

    @classmethod
    def from_env(cls, codex: Path, env: dict[str, str]) -> ModeResolver:
        """CODEX_MCP_MODE if set, else a probe on first need; runs nothing now.

        Raises:
            CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_MODE when it holds something else.
        """
        return cls(codex, forced_mode(env))

    @classmethod
    def fixed(cls, choice: ModeChoice) -> ModeResolver:
        """A backend already chosen (tests, tools that know it)."""
        return cls(Path(), choice)

    @property
    def current(self) -> ModeChoice | None:
        """The choice as it stands; None until the probe has run."""
        return self._choice

    def _locked(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def _probe(self, timeout_s: float) -> ProbeResult:
        self.probes += 1
        return await probe_app_server(self._codex, timeout_s)

    async def resolve(self) -> ModeChoice:
        """The choice, probing Codex the first time."""
        async with self._locked():
            return await self._resolve_unlocked()

    async def _resolve_unlocked(self) -> ModeChoice:
        if self._choice is None:
            self._choice = self._decide(await self._probe(self._probe_timeout_s))
        return self._choice

    def _decide(self, probe: ProbeResult) -> ModeChoice:
        if probe.returncode == 0:
            logger.info("backend app-server: `codex app-server --help` works")
            return ModeChoice("app-server", "detected: `codex app-server --help` works")
        if probe.returncode is not None:
            source = f"detected: {_no_app_server(probe)}"
            logger.warning("backend exec: %s", source)
            return ModeChoice("exec", source)
        self._unanswered = probe.detail
        source = (
            f"assumed: `codex app-server --help` gave no answer ({probe.detail}); "
            "the first `codex app-server` started confirms it"
        )
        logger.warning("backend app-server %s", source)
        return ModeChoice("app-server", source, assumed=True)

    def spawn_worked(self) -> None:
        """A `codex app-server` child started: an assumed app-server is confirmed."""
        choice = self._choice
        if choice is not None and choice.assumed:
            self._choice = ModeChoice(
                "app-server",
                "confirmed: `codex app-server` started, though its --help gave no answer "
                f"({self._unanswered})",
            )
            logger.info("backend app-server confirmed: `codex app-server` started")

    async def spawn_failed(self, why: str) -> ModeChoice:
        """A `codex app-server` child did not start: for an assumed app-server, probe again and decide.

        Only an error exit of the second probe falls back to exec; otherwise the choice stands (and
        the caller reports the spawn's failure).
        """
        async with self._locked():
            choice = await self._resolve_unlocked()
            if not choice.assumed or self._rechecked:
                return choice
            self._rechecked = True
            why = why[:_DETAIL_MAX_CHARS]
            probe = await self._probe(self._recheck_timeout_s)
            if probe.returncode == 0:
                choice = ModeChoice("app-server", "detected: `codex app-server --help` works")
            elif probe.returncode is not None:
                source = f"fallback: `codex app-server` did not start ({why}), and {_no_app_server(probe)}"
                logger.warning("backend exec: %s", source)
                choice = ModeChoice("exec", source)
            else:
                logger.warning(
                    "`codex app-server` did not start (%s) and its --help still gave no answer (%s)",
                    why,
                    probe.detail,
                )
            self._choice = choice
            return choice
