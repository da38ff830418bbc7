"""The real MCP clients from npm, pinned by ``tests/clients/package-lock.json``, installed on demand.

``install_npm_clients()`` runs ``npm ci`` once per lock file into ``.cache/npm-clients/<hash>/``
(``CODEX_MCP_TEST_CLIENTS_CACHE`` moves that root), under a file lock so concurrent test sessions
install it once, into a staging directory renamed into place when complete, so a killed install never
leaves a half tree behind. The hash covers ``package.json`` and ``package-lock.json``: editing either
installs afresh. npm fetches from the registry with the integrity hashes of the lock (it keeps
its own download cache in ``~/.npm``).

The lock carries the platform packages of every OS (npm records all optional dependencies), so
``npm ci`` takes the right native binary on linux x64 and arm64 alike.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent.parent
PACKAGE_DIR: Final = REPO / "tests" / "clients"
LOCK_INPUTS: Final = ("package.json", "package-lock.json")
DEFAULT_CACHE: Final = REPO / ".cache" / "npm-clients"
COMPLETE_MARKER: Final = ".complete.json"
# A cold install downloads ~390 MB (30 s here); below pytest's 300 s per-test timeout, which the first
# real-client test's set-up counts against, so a stuck install fails with npm's own output.
INSTALL_TIMEOUT_S: Final = 240.0

CLAUDE_CODE_VERSION: Final = "2.1.328"
CODEX_VERSION: Final = "0.171.0"
INSPECTOR_VERSION: Final = "2.12.0"

_CODEX_TRIPLES: Final = {"x86_64": "x86_64-unknown-linux-musl", "aarch64": "aarch64-unknown-linux-musl"}


class NpmClientsError(RuntimeError):
    """npm is missing, or ``npm ci`` failed or left a binary out."""


@dataclass(frozen=True)
class NpmClients:
    """Paths of the installed clients."""

    root: Path
    claude: Path
    """Claude Code's native executable (``claude``)."""
    codex: Path
    """``codex`` as users run it: npm's Node launcher, which starts the native binary."""
    codex_native: Path
    """The native Codex binary of the platform package (what the launcher runs)."""
    inspector: Path
    install_seconds: float | None
    """How long the ``npm ci`` that made this tree took (None when unknown)."""


def lock_hash() -> str:
    """A short hash of the package files: the cache key."""
    digest = hashlib.sha256()
    for name in LOCK_INPUTS:
        digest.update(name.encode() + b"\0" + (PACKAGE_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Where installed trees live."""
    override = os.environ.get("CODEX_MCP_TEST_CLIENTS_CACHE")
    return Path(override) if override else DEFAULT_CACHE


def _codex_native(node_modules: Path) -> Path:
    triple = _CODEX_TRIPLES.get(platform.machine())
    if triple is None:
        raise NpmClientsError(f"no Codex platform package for {platform.system()} {platform.machine()}")
    arch = "x64" if platform.machine() == "x86_64" else "arm64"
    return node_modules / "@openai" / f"codex-linux-{arch}" / "vendor" / triple / "bin" / "codex"


def _clients(root: Path) -> NpmClients:
    node_modules = root / "node_modules"
    bin_dir = node_modules / ".bin"
    marker = root / COMPLETE_MARKER
    seconds: float | None = None
    if marker.exists():
        recorded = json.loads(marker.read_text(encoding="utf-8")).get("installSeconds")
        seconds = float(recorded) if isinstance(recorded, int | float) else None
    clients = NpmClients(
        root=root,
        claude=bin_dir / "claude",
        codex=bin_dir / "codex",
        codex_native=_codex_native(node_modules),
        inspector=bin_dir / "mcp-inspector",
        install_seconds=seconds,
    )
    missing = [
        str(p)
        for p in (clients.claude, clients.codex, clients.codex_native, clients.inspector)
        if not p.exists()
    ]
    if missing:
        raise NpmClientsError(f"npm ci in {root} left out: {', '.join(missing)}")
    return clients


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise NpmClientsError("npm is not on PATH: the real-client tests need Node.js 20+ and npm")
    return npm


def _npm_ci(staging: Path, timeout: float) -> float:
    for name in LOCK_INPUTS:
        shutil.copy2(PACKAGE_DIR / name, staging / name)
    command = [_npm(), "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise NpmClientsError(f"npm ci took longer than {timeout:.0f} s in {staging}") from exc
    if done.returncode != 0:
        raise NpmClientsError(f"npm ci failed ({done.returncode}) in {staging}:\n{done.stderr[-4000:]}")
    return time.monotonic() - started


def install_npm_clients(timeout: float = INSTALL_TIMEOUT_S) -> NpmClients:
    """The installed clients of the current lock file, running ``npm ci`` first if needed."""
    root = cache_root()
    target = root / lock_hash()
    if (target / COMPLETE_MARKER).exists():
        return _clients(target)
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / COMPLETE_MARKER).exists():  # another session installed it while we waited
            return _clients(target)
        staging = root / f"{target.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.mkdir()
        try:
            seconds = _npm_ci(staging, timeout)
            marker = {
                "lockHash": target.name,
                "installSeconds": round(seconds, 1),
                "installedAt": time.time(),
            }
            (staging / COMPLETE_MARKER).write_text(json.dumps(marker), encoding="utf-8")
            _clients(staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _clients(target)
