"""`codex exec` argv for one turn: `ExecTurnSpec`, the TOML-encoded ``-c`` pairs and the warnings.

`build_exec_argv` turns an `ExecTurnSpec` into the argv of ``codex exec`` (a first turn) or
``codex exec resume <threadId>`` (a later one); `toml_value` encodes each ``-c`` value. A setting
exec cannot honour is left out and named in a warning.

What codex-cli 0.163 does, measured against the real binary:

- ``exec`` has no approvals: it forces the approval policy to ``never``. ``-c approval_policy=
  "on-request"`` (or ``"on-failure"``) is accepted and ignored; a command asking for escalation is
  rejected without being run (the model is told "approval policy is Never; reject command").
  ``-c approval_policy="untrusted"`` makes exec refuse to start ("approval_policy = "untrusted" is
  no longer supported", exit 1). So the policy is never passed; asking for one exec cannot honour
  gives a warning.
- ``exec resume`` takes ``-m``, ``-c``, ``-i``, ``--json``, ``--skip-git-repo-check``,
  ``--output-schema`` and ``--ephemeral``, but not ``-s``, ``-C`` or ``-p``. The sandbox is passed
  as ``-c sandbox_mode=...`` instead, and the working directory is the child's own: a resumed
  thread runs in the directory exec starts in.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

__all__ = [
    "SANDBOX_MODES",
    "ExecTurnSpec",
    "build_exec_argv",
    "toml_value",
]

SANDBOX_MODES: Final = ("read-only", "workspace-write", "danger-full-access")
# The only policy exec runs with; anything else cannot be honoured.
_EXEC_APPROVAL_POLICY: Final = "never"
# A `-c` key: a dotted path of bare TOML keys; nothing that could read as a flag or hold an `=`.
_CONFIG_KEY: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")
_BARE_TOML_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class ExecTurnSpec:
    """One turn for `codex exec`: what to send and how to run it."""

    prompt: str
    cwd: str
    thread_id: str | None = None
    """None: a first turn (``codex exec``); else ``codex exec resume <thread_id>``."""
    sandbox: str | None = None
    """read-only | workspace-write | danger-full-access."""
    model: str | None = None
    approval_policy: str | None = None
    """exec always runs with ``never``; any other policy is not passed and gives a warning."""
    effort: str | None = None
    summary: str | None = None
    config: dict[str, Any] | None = None
    """``-c key=<TOML value>`` each."""
    images: list[str] = field(default_factory=list[str])
    output_schema: dict[str, Any] | None = None
    ephemeral: bool = False


def toml_value(value: object) -> str:
    """`value` as a TOML value (strings quoted, bools, numbers, arrays, inline tables).

    Raises:
        TypeError: for a value TOML cannot hold (None, or a non-JSON type).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        items = cast(list[object] | tuple[object, ...], value)
        return "[" + ", ".join(toml_value(item) for item in items) + "]"
    if isinstance(value, Mapping):
        table = cast(Mapping[object, object], value)
        pairs = [f"{_toml_key(str(key))} = {toml_value(item)}" for key, item in table.items()]
        return "{" + ", ".join(pairs) + "}"
    kind = "null" if value is None else type(value).__name__
    raise TypeError(f"{kind} has no TOML form")


def _toml_string(text: str) -> str:
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_TOML_KEY.fullmatch(key) else _toml_string(key)


def build_exec_argv(codex: str, spec: ExecTurnSpec, schema_path: str | None) -> tuple[list[str], list[str]]:
    """(argv, warnings) for one turn; the child must be spawned in ``spec.cwd``.

    Always ``--json --skip-git-repo-check``; the prompt goes last after ``--`` (so ``-i`` cannot
    swallow it and a prompt starting with ``-`` is not a flag). Each ``-c`` pair is one argv
    element with a TOML-encoded value. ``exec resume`` takes no ``-s`` or ``-C``: the sandbox goes
    as ``-c sandbox_mode=...`` and the working directory is the child's. A setting exec cannot
    honour is left out and named in a warning, never dropped silently.

    Raises:
        ValueError: ``spec.sandbox`` is not one of `SANDBOX_MODES`.
    """
    if spec.sandbox is not None and spec.sandbox not in SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {', '.join(SANDBOX_MODES)}, not {spec.sandbox!r}")
    warnings: list[str] = []
    resume = spec.thread_id is not None
    argv = [codex, "exec", *(["resume"] if resume else []), "--json", "--skip-git-repo-check"]
    if not resume:
        argv += ["-C", os.path.abspath(spec.cwd)]
        if spec.sandbox is not None:
            argv += ["-s", spec.sandbox]
    if spec.model is not None:
        # One token: a model named like a flag stays the model's name.
        argv.append(f"--model={spec.model}")
    argv += _config_args(spec, warnings)
    if resume and spec.sandbox is not None:
        # After the caller's config, so the sandbox parameter wins over a config entry.
        argv += ["-c", f"sandbox_mode={toml_value(spec.sandbox)}"]
    for image in spec.images:
        # Absolute, so no image path can read as a flag, whatever the child's directory.
        argv += ["-i", os.path.join(os.path.abspath(spec.cwd), image)]
    if schema_path is not None:
        argv += ["--output-schema", schema_path]
    if spec.ephemeral:
        argv.append("--ephemeral")
    _approval_warning(spec.approval_policy, "approval_policy", warnings)
    argv.append("--")
    if spec.thread_id is not None:
        argv.append(spec.thread_id)
    argv.append(spec.prompt)
    return argv, warnings


def _config_args(spec: ExecTurnSpec, warnings: list[str]) -> list[str]:
    pairs: list[tuple[str, object]] = list((spec.config or {}).items())
    # The dedicated parameters after the free-form config: a later -c wins.
    if spec.effort is not None:
        pairs.append(("model_reasoning_effort", spec.effort))
    if spec.summary is not None:
        pairs.append(("model_reasoning_summary", spec.summary))
    args: list[str] = []
    for key, value in pairs:
        if not _CONFIG_KEY.fullmatch(key):
            warnings.append(f"config key {key!r} is not a dotted TOML key path; not passed to codex exec")
            continue
        if key == "approval_policy":
            _approval_warning(value, "config.approval_policy", warnings)
            continue
        try:
            encoded = toml_value(value)
        except TypeError as exc:
            warnings.append(f"config {key}: {exc}; not passed to codex exec")
            continue
        args += ["-c", f"{key}={encoded}"]
    return args


def _approval_warning(policy: object, name: str, warnings: list[str]) -> None:
    if policy is None or policy == _EXEC_APPROVAL_POLICY:
        return
    if policy == "untrusted":
        why = 'codex exec refuses to start with it ("no longer supported")'
    else:
        why = "codex exec cannot ask for approval"
    warnings.append(
        f"{name}={policy!r} not passed: {why}; the turn runs with approval policy never, so a "
        "command that needs approval is rejected without running"
    )
