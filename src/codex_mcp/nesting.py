"""The recursion guard: the Codex children we start do not start codex-mcp from the user's config.

A user who put codex-mcp under `[mcp_servers]` in `CODEX_HOME/config.toml` (or a project's
`.codex/config.toml`) has that entry in every Codex we spawn, and each new thread would start a
nested codex-mcp: it competes for our state directory, slows the first turn by 1-3 s and puts an MCP
start-up failure into the session's events; with `required = true` on the entry, every thread fails.
So for each thread (`thread/start`, `thread/resume` and `thread/fork` take a `config`) and each
`codex exec` turn (`-c`), `guard_config` finds the entries that run codex-mcp in the files that Codex
will read and in the config we send, and disables them.

Nesting on purpose: CODEX_MCP_MAX_NESTING=N lets N levels of codex-mcp run beneath the first. A
nested server's environment holds only Codex's whitelist plus its entry's `env`, so the depth
travels there: the entries we leave enabled get `env.<NESTING_LEVEL_VARIABLE> = level + 1` (and the
bound), and a server at the bound guards its own children.

Measured on codex-cli 0.163:

- `mcp_servers.<name>.enabled = false` stops the server from starting, with `required = true` or
  without, on `thread/start`, `thread/resume`, `thread/fork` (each starts the thread's servers) and
  on `codex exec -c`.
- An override of a name that no loaded layer defines creates an entry: `enabled = false` alone then
  fails the thread ("invalid transport in `mcp_servers.<name>`"). Codex reads a project file only
  when the project is trusted, so a name found only in project files also gets its `command`.
- `-c` splits its key at every dot, quotes or not; a table value merges into the layers below, but a
  later `-c mcp_servers=...` replaces an earlier one. So every override goes in one `mcp_servers`
  table, ahead of the caller's own keys.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from codex_mcp.errors import CodexMcpError

logger = logging.getLogger(__name__)

# Set by the parent server in the `env` of an entry it leaves enabled: how deep the nested one runs.
NESTING_LEVEL_VARIABLE: Final = "CODEX_MCP_NESTING_LEVEL"
_MAX_VARIABLE: Final = "CODEX_MCP_MAX_NESTING"
_PROGRAM: Final = "codex-mcp"
_MODULE: Final = "codex_mcp"
_ENV_PREFIX: Final = "CODEX_MCP_"
_PYTHON: Final = re.compile(r"python(?:\d+(?:\.\d+)*)?w?|py")
_SUFFIXES: Final = (".exe", ".cmd", ".bat")
# A package spec's name ends at a version, an extra or a marker: `codex-mcp@1.2`, `codex-mcp[codex]`.
_SPEC_NAME: Final = re.compile(r"[A-Za-z0-9._-]+")
# Options of uv/uvx/pipx and of python that take the next argument as their value.
_LAUNCHER_VALUE_OPTIONS: Final = frozenset(
    {
        "--from",
        "--with",
        "-w",
        "--with-editable",
        "--with-requirements",
        "--python",
        "-p",
        "--index",
        "--default-index",
        "--index-url",
        "-i",
        "--extra-index-url",
        "--find-links",
        "-f",
        "--constraints",
        "--constraint",
        "--overrides",
        "--build-constraints",
        "-b",
        "--directory",
        "--project",
        "--config-file",
        "--cache-dir",
        "--color",
        "--python-preference",
        "--index-strategy",
        "--keyring-provider",
        "--resolution",
        "--prerelease",
        "--exclude-newer",
        "--link-mode",
        "--refresh-package",
        "--reinstall-package",
        "--upgrade-package",
        "-P",
        "--spec",
        "--pip-args",
        "--env-file",
        "--allow-insecure-host",
        "--config-setting",
        "-C",
    }
)
_PYTHON_VALUE_OPTIONS: Final = frozenset({"-X", "-W", "-Q"})
# `-m`, or flags that take no value run together before it: `-um`, `-IBm`.
_FLAGS_THEN_MODULE: Final = re.compile(r"-[bBdEhiIOPqRsSuvx]*m")
# Wrappers we look through: `uv run …`, `env A=1 …`; this bounds a chain of them.
_MAX_WRAPPERS: Final = 4


# --- the depth bound -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NestingPolicy:
    """How deep this server runs (0: started by a client) and how deep nesting may go."""

    level: int = 0
    max_nesting: int = 0

    @property
    def allows_nesting(self) -> bool:
        """Whether our children may start codex-mcp (one level deeper)."""
        return self.level < self.max_nesting

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NestingPolicy:
        """CODEX_MCP_MAX_NESTING (default 0: the guard is on) and the level our parent gave us.

        Raises:
            CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_MAX_NESTING when it is not a count.
        """
        raw = env.get("CODEX_MCP_MAX_NESTING", "").strip()
        max_nesting = 0
        if raw:
            if not raw.isdigit():
                raise CodexMcpError(
                    "INVALID_ARGUMENT", f"{_MAX_VARIABLE}={raw}: expected a whole number (0: no nesting)"
                )
            max_nesting = int(raw)
        level_raw = env.get(NESTING_LEVEL_VARIABLE, "").strip()
        level = int(level_raw) if level_raw.isdigit() else 0
        if level_raw and not level_raw.isdigit():
            # Only a parent server sets it; an unreadable value must not lift the bound.
            logger.warning("%s=%s is not a count: nesting no deeper", NESTING_LEVEL_VARIABLE, level_raw)
            level = max_nesting
        return cls(level=level, max_nesting=max_nesting)


# --- which entries run codex-mcp --------------------------------------------------------------------


def _basename(command: str) -> str:
    name = re.split(r"[/\\]", command)[-1].lower()
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _first_positional(args: Sequence[str], value_options: frozenset[str]) -> int:
    """The index of the first argument that is neither an option nor an option's value."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return index + 1
        if not arg.startswith("-") or arg == "-":
            return index
        index += 2 if arg in value_options else 1
    return index


def _launched(args: Sequence[str], depth: int) -> str | None:
    """What `uvx`/`uv tool run`/`pipx run` runs: its first positional argument, spec stripped."""
    index = _first_positional(args, _LAUNCHER_VALUE_OPTIONS)
    if index >= len(args):
        return None
    spec = _SPEC_NAME.match(args[index])
    program = spec.group(0) if spec else args[index]
    return _argv_runs([program, *args[index + 1 :]], depth + 1)


def _uv(args: Sequence[str], depth: int) -> str | None:
    index = _first_positional(args, _LAUNCHER_VALUE_OPTIONS)
    rest = args[index:]
    if rest[:2] == ["tool", "run"]:
        return _launched(rest[2:], depth)
    if rest[:1] in (["run"], ["x"]):
        return _launched(rest[1:], depth)
    return None


def _python(args: Sequence[str]) -> str | None:
    index = 0
    while index < len(args):
        arg = args[index]
        module = None
        if _FLAGS_THEN_MODULE.fullmatch(arg):
            module = args[index + 1] if index + 1 < len(args) else None
        elif arg.startswith("-m") and not arg.startswith("--"):
            module = arg[2:]
        elif arg == "-c":
            return None
        elif arg in _PYTHON_VALUE_OPTIONS:
            index += 2
            continue
        elif not arg.startswith("-"):
            # A script: `python /venv/bin/codex-mcp`.
            return "runs the codex-mcp console script" if _basename(arg) == _PROGRAM else None
        if module is not None:
            if module == _MODULE or module.startswith(_MODULE + "."):
                return f"runs `python -m {module}`"
            return None
        index += 1
    return None


def _env_wrapper(args: Sequence[str], depth: int) -> str | None:
    index = 0
    while index < len(args) and (args[index].startswith("-") or "=" in args[index]):
        index += 2 if args[index] in ("-u", "--unset", "-C", "--chdir", "-S") else 1
    return _argv_runs(args[index:], depth + 1)


def _argv_runs(argv: Sequence[str], depth: int = 0) -> str | None:
    if not argv or depth > _MAX_WRAPPERS:
        return None
    name, rest = _basename(argv[0]), argv[1:]
    if name == _PROGRAM:
        return "runs the codex-mcp console script"
    if _PYTHON.fullmatch(name):
        return _python(rest)
    if name == "uvx":
        return _launched(rest, depth)
    if name == "uv":
        return _uv(rest, depth)
    if name == "pipx":
        index = _first_positional(rest, _LAUNCHER_VALUE_OPTIONS)
        return _launched(rest[index + 1 :], depth) if rest[index : index + 1] == ["run"] else None
    if name == "env":
        return _env_wrapper(rest, depth)
    return None


def runs_codex_mcp(entry: Mapping[str, Any]) -> str | None:
    """Why the `[mcp_servers.<name>]` table `entry` runs codex-mcp, or None when it does not.

    Matches the console script by basename (any path), `uvx [--from …] codex-mcp`, `uv tool run`,
    `uv run`, `pipx run [--spec …] codex-mcp`, `python -m codex_mcp` (any python), these behind
    `env`, and any entry whose `env` sets a CODEX_MCP_* variable.
    """
    env: object = entry.get("env")
    if isinstance(env, dict):
        for key in cast(dict[object, object], env):
            if isinstance(key, str) and key.startswith(_ENV_PREFIX):
                return f"its env sets {key}"
    command: object = entry.get("command")
    if not isinstance(command, str):
        return None
    raw_args: object = entry.get("args")
    args = (
        [arg for arg in cast(list[object], raw_args) if isinstance(arg, str)]
        if isinstance(raw_args, list)
        else []
    )
    return _argv_runs([command, *args])


# --- where Codex reads them -------------------------------------------------------------------------


@dataclass(frozen=True)
class NestedEntry:
    """An `[mcp_servers]` entry that runs codex-mcp, as our children would see it."""

    name: str
    why: str
    files: tuple[str, ...]
    """Where it is defined: config files, or "the thread's config"."""
    command: str | None
    always_loaded: bool
    """Defined in CODEX_HOME/config.toml or in the config we send (project files need trust)."""


_THREAD_CONFIG: Final = "the thread's config"


def _read_servers(path: Path) -> dict[str, dict[str, Any]]:
    """The `mcp_servers` tables of one config file; {} when it is missing or unreadable (logged)."""
    try:
        if not path.is_file():
            return {}
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeError) as exc:  # TOMLDecodeError is a ValueError
        logger.warning("recursion guard: cannot read %s (%s); its MCP servers are not checked", path, exc)
        return {}
    return _servers(config)


def _servers(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    raw: object = config.get("mcp_servers")
    if not isinstance(raw, dict):
        return {}
    tables = cast(dict[str, object], raw)
    return {name: cast(dict[str, Any], table) for name, table in tables.items() if isinstance(table, dict)}


def _expanded(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with its dotted keys (`"mcp_servers.x.command"`) turned into nested tables."""
    nested: dict[str, Any] = {}
    for key, value in config.items():
        parts = key.split(".")
        target = nested
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = cast(dict[str, Any], child)
        leaf = parts[-1]
        existing = target.get(leaf)
        if isinstance(existing, dict) and isinstance(value, dict):
            target[leaf] = _merged(cast(dict[str, Any], existing), cast(dict[str, Any], value))
        else:
            target[leaf] = value
    return nested


def _merged(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` laid over `base`, tables merged key by key (as Codex layers config)."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            out[key] = _merged(cast(dict[str, Any], below), cast(dict[str, Any], value))
        else:
            out[key] = value
    return out


def _project_files(cwd: Path, home_config: Path) -> list[Path]:
    """`.codex/config.toml` of `cwd` and each parent, outermost first (Codex's layer order)."""
    files: list[Path] = []
    for directory in (cwd, *cwd.parents):
        path = directory / ".codex" / "config.toml"
        try:
            if path.is_file() and path.resolve() != home_config.resolve():
                files.append(path)
        except (OSError, ValueError):
            continue
    return files[::-1]


def nested_entries(home: Path, cwd: str | None, thread_config: Mapping[str, Any] | None) -> list[NestedEntry]:
    """The entries that would start codex-mcp in a Codex child working in `cwd` and sent `thread_config`.

    Layers, lowest first: `home`/config.toml, the project files from the outermost directory to
    `cwd`, then `thread_config`. An entry matches when its merged table runs codex-mcp, with or
    without the project layers (Codex skips those of an untrusted project).
    """
    home_config = home / "config.toml"
    layers: list[tuple[str, dict[str, dict[str, Any]], bool]] = [
        (str(home_config), _read_servers(home_config), True)
    ]
    if cwd:
        layers += [(str(path), _read_servers(path), False) for path in _project_files(Path(cwd), home_config)]
    if thread_config:
        layers.append((_THREAD_CONFIG, _servers(_expanded(thread_config)), True))
    names = dict.fromkeys(name for _, servers, _ in layers for name in servers)
    found: list[NestedEntry] = []
    for name in names:
        every: dict[str, Any] = {}
        loaded: dict[str, Any] = {}
        files: list[str] = []
        always = False
        for where, servers, always_loaded in layers:
            table = servers.get(name)
            if table is None:
                continue
            files.append(where)
            every = _merged(every, table)
            if always_loaded:
                loaded = _merged(loaded, table)
                always = True
        why = runs_codex_mcp(every) or (runs_codex_mcp(loaded) if loaded else None)
        if why is None:
            continue
        command: object = every.get("command")
        found.append(
            NestedEntry(name, why, tuple(files), command if isinstance(command, str) else None, always)
        )
    return found


def guard_table(entries: Sequence[NestedEntry], policy: NestingPolicy) -> dict[str, dict[str, Any]]:
    """The `mcp_servers` overrides for our children: each entry disabled, or, when `policy` allows
    nesting, told the depth it runs at."""
    table: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if policy.allows_nesting and entry.always_loaded:
            # A project-only entry stays disabled: giving it an env would create it where Codex,
            # not trusting the project, would not have started it.
            table[entry.name] = {
                "env": {NESTING_LEVEL_VARIABLE: str(policy.level + 1), _MAX_VARIABLE: str(policy.max_nesting)}
            }
            continue
        override: dict[str, Any] = {"enabled": False}
        if not entry.always_loaded and entry.command is not None:
            override["command"] = entry.command
        table[entry.name] = override
    return table


def with_guard(
    config: Mapping[str, Any] | None, table: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """`config` with `table` merged into its `mcp_servers`, that key first (see the module notes)."""
    if not table:
        return dict(config) if config is not None else None
    base = dict(config or {})
    servers: object = base.pop("mcp_servers", None)
    below = cast(dict[str, Any], servers) if isinstance(servers, dict) else {}
    return {"mcp_servers": _merged(below, table), **base}


def guard_config(
    home: Path, cwd: str | None, config: Mapping[str, Any] | None, policy: NestingPolicy
) -> dict[str, Any] | None:
    """The config to send a Codex child working in `cwd`: `config` plus the recursion guard."""
    entries = nested_entries(home, cwd, config)
    for entry in entries:
        action = "nesting allowed" if policy.allows_nesting and entry.always_loaded else "disabled"
        logger.info(
            "recursion guard: mcp_servers.%s %s (%s; in %s)",
            entry.name,
            action,
            entry.why,
            ", ".join(entry.files),
        )
    return with_guard(config, guard_table(entries, policy))
