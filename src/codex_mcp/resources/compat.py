"""The compat-report: a live probe of the installed Codex against the protocol this server was built for.

The probe runs `codex --version`, `codex app-server generate-json-schema` and `codex exec --help`,
each with a timeout, once per server run. Whatever fails is reported inside the JSON; the probe
never raises.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

import anyio

from codex_mcp import __version__
from codex_mcp.backend_mode import ModeChoice, ModeResolver
from codex_mcp.codex_probe import VersionCache, codex_version, describe_failure, run_codex
from codex_mcp.errors import CodexMcpError, redact
from codex_mcp.protocol_diff import JsonObject, diff_summaries, methods_of, summarize, type_enum
from codex_mcp.resources.published import accepted_values, is_open
from codex_mcp.resources.traps import known_traps
from codex_mcp.settings import CodexExecutable
from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from codex_mcp.wire.methods import (
    ITEM_TOOL_REQUEST_USER_INPUT,
    THREAD_BACKGROUND_TERMINALS_CLEAN,
    THREAD_FORK,
    THREAD_RESUME,
    THREAD_START,
    TURN_INTERRUPT,
    TURN_START,
)
from codex_mcp.wire.server_requests import INTERACTIVE

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Final = "1.0.0"
# `--version` and `exec --help` answer at once; these only bound a broken or hung binary.
VERSION_TIMEOUT_S: Final = 15.0
HELP_TIMEOUT_S: Final = 15.0
# generate-json-schema takes ~60 ms on 0.163; a slow disk or a cold start gets headroom.
SCHEMA_TIMEOUT_S: Final = 30.0
_GENERATE_ARGS: Final = ("app-server", "generate-json-schema", "--experimental")
_BUNDLE_NAME: Final = "codex_app_server_protocol.schemas.json"

# Tool parameter -> the Codex type whose values it is sent as.
_CODEX_TYPES: Final = {
    "approvalPolicy": "AskForApproval",
    "sandbox": "SandboxMode",
    "effort": "ReasoningEffort",
    "summary": "ReasoningSummary",
    "personality": "Personality",
    "collaborationMode": "ModeKind",
}
# Tool parameter -> the `$defs` entry of the codex tool's input schema that holds it.
_OUR_DEFS: Final = {
    "approvalPolicy": "ApprovalPolicy",
    "sandbox": "SandboxMode",
    "effort": "Effort",
    "summary": "ReasoningSummary",
    "personality": "Personality",
    "collaborationMode": "CollaborationMode",
}
# Values we accept that Codex dropped, and what they are sent as.
_MAPPED: Final = {"approvalPolicy": {"on-failure": "on-request"}}
# Feature -> the app-server methods it needs (client requests we send, server requests we answer).
FEATURES: Final[dict[str, tuple[str, ...]]] = {
    "codex": (THREAD_START, TURN_START),
    "codex_reply": (TURN_START, THREAD_RESUME),
    "codex_session.interrupt": (TURN_INTERRUPT,),
    "codex_session.fork": (THREAD_FORK,),
    "codex_session.clean_background_terminals": (THREAD_BACKGROUND_TERMINALS_CLEAN,),
    "codex_check.respond_user_input": (ITEM_TOOL_REQUEST_USER_INPUT,),
}


@cache
def pinned_protocol() -> JsonObject:
    """The shipped summary of the vendored app-server protocol (see codegen/resource_data.py)."""
    text = resources.files("codex_mcp.resources").joinpath("data", "pinned_protocol.json").read_text("utf-8")
    return cast(JsonObject, json.loads(text))


@dataclass
class CodexFacts:
    """What the probe learned about one Codex binary; `problems` says what it could not learn."""

    version: str | None = None
    protocol: JsonObject | None = None
    exec_resume: bool | None = None
    problems: list[str] = field(default_factory=lambda: [])
    elapsed_ms: int = 0


def _read_protocol(out_dir: Path) -> JsonObject:
    bundle = json.loads((out_dir / _BUNDLE_NAME).read_text(encoding="utf-8"))
    return summarize(cast(JsonObject, bundle))


async def probe_codex(codex: Path) -> CodexFacts:
    """Version, protocol summary and exec support of `codex`; never raises."""
    started = time.monotonic()
    facts = CodexFacts()
    try:
        with tempfile.TemporaryDirectory(prefix="codex-mcp-compat-") as scratch:
            # An empty CODEX_HOME keeps the user's config (and its warnings) out of the probe.
            home = Path(scratch) / "home"
            home.mkdir()
            env = {**os.environ, "CODEX_HOME": str(home)}
            facts.version, problem = await codex_version(codex, timeout_s=VERSION_TIMEOUT_S)
            facts.problems += [problem] if problem else []
            out_dir = Path(scratch) / "schema"
            args = (*_GENERATE_ARGS, "--out", str(out_dir))
            run = await run_codex(codex, args, timeout_s=SCHEMA_TIMEOUT_S, env=env)
            if run.returncode == 0:
                try:
                    facts.protocol = await anyio.to_thread.run_sync(_read_protocol, out_dir)
                except (OSError, ValueError) as exc:
                    facts.problems.append(redact(f"could not read the generated protocol: {exc}"))
            else:
                facts.problems.append(
                    describe_failure("codex " + " ".join(_GENERATE_ARGS), run, SCHEMA_TIMEOUT_S)
                )
            run = await run_codex(codex, ("exec", "--help"), timeout_s=HELP_TIMEOUT_S, env=env)
            facts.exec_resume = run.returncode == 0 and "resume" in run.stdout
    except OSError as exc:
        facts.problems.append(redact(f"could not run Codex: {exc}"))
    facts.elapsed_ms = round((time.monotonic() - started) * 1000)
    return facts


def _enum_report(live: JsonObject | None) -> dict[str, Any]:
    ours_all = accepted_values()
    report: dict[str, Any] = {}
    for parameter, codex_type in _CODEX_TYPES.items():
        ours = ours_all[parameter]
        codex = type_enum(live, codex_type) if live is not None else None
        entry: dict[str, Any] = {"codexType": codex_type, "ours": ours, "codex": codex}
        open_enum = is_open("codex", _OUR_DEFS[parameter])
        entry["passesThroughOtherValues"] = open_enum
        mapped = _MAPPED.get(parameter, {})
        if codex:
            entry["onlyOurs"] = [value for value in ours if value not in codex]
            entry["onlyCodex"] = [value for value in codex if value not in ours]
            entry["mappedToCodex"] = {value: mapped[value] for value in entry["onlyOurs"] if value in mapped}
        elif codex is not None:
            entry["note"] = "Codex takes any non-empty value here (for effort: what the model advertises)"
        report[parameter] = entry
    return report


def _feature_report(facts: CodexFacts, mode: ModeChoice | None) -> dict[str, Any]:
    live = methods_of(facts.protocol) if facts.protocol is not None else None
    features: dict[str, Any] = {}
    for name, needs in FEATURES.items():
        supported = None if live is None else all(method in live for method in needs)
        entry: dict[str, Any] = {"supported": supported, "needs": list(needs)}
        if mode is not None and mode.mode == "exec" and name.endswith(("fork", "clean_background_terminals")):
            entry["supported"] = False
            entry["note"] = "needs the app-server backend; this server runs codex exec"
        features[name] = entry
    kinds = {
        spec.kind: (None if live is None else method in live)
        for method, spec in INTERACTIVE.items()
        if spec.action_type == "approval"
    }
    features["codex_check.respond_permission"] = {"supported": any(kinds.values()), "kinds": kinds}
    features["execFallback"] = {
        "supported": facts.exec_resume,
        "needs": ["codex exec --json", "codex exec resume"],
    }
    return features


def _protocol_report(facts: CodexFacts) -> tuple[bool | None, dict[str, Any] | None]:
    if facts.protocol is None:
        return None, None
    pinned = pinned_protocol()
    diff = diff_summaries(pinned, facts.protocol)
    report = {"from": pinned["codexVersion"], "to": facts.version, **diff.to_json()}
    if not diff.identical:
        report["text"] = diff.lines()
    return not diff.identical, report


def build_report(
    codex: CodexExecutable | CodexMcpError, mode: ModeChoice | None, facts: CodexFacts
) -> JsonObject:
    """The compat-report JSON for `codex` as the probe found it."""
    report: JsonObject = {
        "schemaVersion": SCHEMA_VERSION,
        "codexMcpVersion": __version__,
        "pinnedCodexVersion": PINNED_CODEX_VERSION,
    }
    if isinstance(codex, CodexMcpError):
        report["codex"] = {"found": False, "error": redact(codex.message)}
        report["versionMatchesPinned"] = None
        report["drift"] = None
        report["problems"] = [redact(codex.message)]
        return report
    report["codex"] = {
        "found": True,
        "path": str(codex.path),
        "source": codex.source,
        "version": facts.version,
    }
    report["backend"] = {"mode": mode.mode, "source": mode.source} if mode else None
    report["versionMatchesPinned"] = None if facts.version is None else facts.version == PINNED_CODEX_VERSION
    drift, protocol = _protocol_report(facts)
    report["drift"] = drift
    report["protocolDiff"] = protocol
    report["features"] = _feature_report(facts, mode)
    report["enums"] = _enum_report(facts.protocol)
    report["traps"] = known_traps(facts.protocol, mode)
    report["problems"] = facts.problems
    report["probe"] = {"elapsedMs": facts.elapsed_ms, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    return report


class CompatProbe:
    """The Codex facts of one server run: probed on first read, then served from memory."""

    def __init__(self, codex: CodexExecutable | CodexMcpError, mode: ModeResolver | None) -> None:
        self._codex = codex
        self._mode = mode
        self._report: JsonObject | None = None
        self._versions = VersionCache()
        # Created on first use: an anyio lock needs the running event loop.
        self._lock: anyio.Lock | None = None

    def _locked(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def version(self) -> tuple[str | None, str | None]:
        """(Codex version, None) or (None, why not); only `codex --version`, so it is quick."""
        if isinstance(self._codex, CodexMcpError):
            return None, redact(self._codex.message)
        async with self._locked():
            return await self._versions.version(self._codex.path, timeout_s=VERSION_TIMEOUT_S)

    async def report(self) -> JsonObject:
        """The compat-report (probing Codex the first time)."""
        async with self._locked():
            if self._report is None:
                facts = CodexFacts()
                if not isinstance(self._codex, CodexMcpError):
                    facts = await probe_codex(self._codex.path)
                mode = await self._mode.resolve() if self._mode is not None else None
                self._report = build_report(self._codex, mode, facts)
                logger.info("compat probe: codex %s, drift %s", facts.version, self._report["drift"])
            return self._report
