"""Running Codex to learn about it: one bounded run of `codex <args>`, and the `--version` parse.

Readiness (`codex --version`, `codex login status`), the backend choice (`codex app-server --help`)
and the compat report (`--version`, `app-server generate-json-schema`, `exec --help`) all run Codex
through `run_codex`: stdin closed, each output kept up to a bound, in a process group of its own
that is killed whole when it gives no answer in time (or the caller is cancelled). Each caller words
what went wrong in its own report; `describe_failure` is the wording of the compat report and
server-info.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
from anyio.abc import ByteReceiveStream

from codex_mcp.errors import redact

# A killed probe and its group are gone within moments; this only bounds a process stuck in the kernel.
_REAP_TIMEOUT_S: Final = 2.0
# What is kept of each output: help texts are a few KiB; the rest is read and dropped.
_KEPT_BYTES: Final = 256 * 1024
_FAILURE_DETAIL_CHARS: Final = 300


@dataclass(frozen=True, slots=True)
class CodexRun:
    """What one bounded run of Codex did; its outputs decoded and stripped."""

    returncode: int | None
    """The exit status (negative: killed by that signal); None: no answer in time, killed."""
    stdout: str
    stderr: str


async def _drain(stream: ByteReceiveStream | None, kept: bytearray) -> None:
    if stream is None:
        return
    async for chunk in stream:
        room = _KEPT_BYTES - len(kept)
        if room > 0:
            kept += chunk[:room]


def _text(raw: bytearray) -> str:
    return bytes(raw).decode("utf-8", errors="replace").strip()


async def run_codex(
    codex: Path, args: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None
) -> CodexRun:
    """Run `codex <args>` until it exits, at most `timeout_s`; past that its process group is killed.

    Raises:
        OSError: it could not be started (gone since it was found, not executable).
    """
    process = await anyio.open_process(
        [str(codex), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    stdout, stderr = bytearray(), bytearray()
    finished = False
    try:
        with anyio.move_on_after(timeout_s):
            async with anyio.create_task_group() as group:
                group.start_soon(_drain, process.stdout, stdout)
                group.start_soon(_drain, process.stderr, stderr)
            returncode = await process.wait()
            finished = True
            return CodexRun(returncode, _text(stdout), _text(stderr))
        return CodexRun(None, _text(stdout), _text(stderr))
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(_REAP_TIMEOUT_S):
            if not finished:
                # The whole group: what it started is as stuck as it is.
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            await process.aclose()


def parse_version(run: CodexRun) -> str | None:
    """The version a `codex --version` run printed, None when it did not succeed.

    stdout is `codex-cli 0.163.0`; stderr may carry unrelated warnings.
    """
    if run.returncode == 0 and run.stdout:
        return run.stdout.split()[-1]
    return None


def describe_failure(what: str, run: CodexRun, timeout_s: float) -> str:
    """One line on why `codex <what>` told us nothing: no answer in time, or its exit and last line."""
    if run.returncode is None:
        return f"`{what}` did not answer within {timeout_s:g}s"
    detail = (run.stderr or run.stdout).splitlines()[-1:] or ["no output"]
    return redact(f"`{what}` exited {run.returncode}: {detail[0][:_FAILURE_DETAIL_CHARS]}")


async def codex_version(codex: Path, *, timeout_s: float) -> tuple[str | None, str | None]:
    """(version, None) from `codex --version`, or (None, why not); never raises."""
    try:
        run = await run_codex(codex, ("--version",), timeout_s=timeout_s, env=dict(os.environ))
    except OSError as exc:
        return None, redact(f"could not run Codex: {exc}")
    version = parse_version(run)
    if version is not None:
        return version, None
    return None, describe_failure("codex --version", run, timeout_s)


class VersionCache:
    """`codex --version` of each executable, run once for the life of the cache (one server run).

    Safe to use from many tasks at once: they share one run per executable.
    """

    def __init__(self) -> None:
        self._versions: dict[Path, tuple[str | None, str | None]] = {}
        # Created on first use: an anyio lock wants the running event loop.
        self._lock: anyio.Lock | None = None

    async def version(self, codex: Path, *, timeout_s: float) -> tuple[str | None, str | None]:
        """(version, None) or (None, why not), as `codex_version`; run the first time only."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if codex not in self._versions:
                self._versions[codex] = await codex_version(codex, timeout_s=timeout_s)
            return self._versions[codex]
