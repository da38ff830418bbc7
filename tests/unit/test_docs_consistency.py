"""The docs say exactly what the code does: error codes, env vars, tool parameters, examples, commands.

Each check runs both ways: what the code has is documented, and what the docs name exists.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Final, cast

import jsonschema
import pytest

from codegen import paths
from codex_mcp import cli
from codex_mcp.errors import CODES
from codex_mcp.resources.catalog import doc_text
from codex_mcp.wire.tools import TOOL_NAMES, input_problems, tool_definition
from tests.harness.codex_client import server_entry_toml
from tests.harness.codex_env import codex_binary

REPO: Final = paths.REPO_ROOT
SRC: Final = REPO / "src" / "codex_mcp"
README: Final = (REPO / "README.md").read_text(encoding="utf-8")
ENV_VAR: Final = re.compile(r"CODEX_MCP_[A-Z0-9_]+")
ROW_NAME: Final = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)
DOCS: Final = {name: doc_text(name) for name in ("config", "gotchas", "quickstart", "errors")}

# Each shell command in the README, and what runs it: `.ci/run`, or (test file, test function).
_HERE: Final = "tests/unit/test_docs_consistency.py"
_E2E: Final = "tests/e2e/test_resources.py"
_REFRESH: Final = "tests/contract/test_refresh.py"
_INSTALL: Final = (
    "tests/e2e/test_install.py",
    "test_pip_install_with_the_codex_extra_gives_a_ready_codex_mcp",
)
CI: Final = (".ci/run", "")
README_COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "uvx codex-mcp": ("tests/e2e/test_install.py", "test_uvx_runs_the_console_script"),
    "pip install codex-mcp": _INSTALL,
    "pip install 'codex-mcp[codex]'": _INSTALL,
    "python3 scripts/dev.py serve": (_E2E, "test_the_readme_run_command_serves_our_tools_and_resources"),
    "codex-mcp doctor": (_E2E, "test_doctor_with_the_pinned_codex_reports_ready_and_exits_0"),
    "claude mcp add codex-mcp -- uvx codex-mcp": (
        "tests/e2e/clients/test_claude_code.py",
        "test_the_readme_claude_mcp_add_command_registers_our_server",
    ),
    "codex-mcp schemas export ./codex-mcp-schemas": (
        _E2E,
        "test_schemas_export_writes_the_published_schemas",
    ),
    "python3 scripts/dev.py test": CI,
    ".venv/bin/python -m codegen": (_HERE, "test_the_readme_regenerate_command_rewrites_what_codegen_owns"),
    ".venv/bin/python -m codegen --check": CI,
    ".venv/bin/python -m codegen refresh --codex /path/to/codex --dry-run": (
        _REFRESH,
        "test_refresh_dry_run_prints_a_readable_protocol_diff_and_changes_nothing",
    ),
    ".venv/bin/python -m codegen refresh --codex /path/to/codex": (
        _REFRESH,
        "test_refresh_vendors_the_new_bundle_and_pin_so_codegen_check_then_reports_drift",
    ),
}


def _blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def _section(markdown: str, heading: str) -> str:
    """The text under `heading` (a `## ` line) up to the next `## ` heading."""
    match = re.search(
        rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, flags=re.MULTILINE | re.DOTALL
    )
    assert match is not None, f"no section {heading!r}"
    return match.group(1)


# --- error codes -------------------------------------------------------------------


def test_the_errors_resource_has_one_section_per_error_code_in_order() -> None:
    headings = re.findall(r"^## ([A-Z_]+)$", DOCS["errors"], flags=re.MULTILINE)
    assert headings == list(CODES)
    for code in CODES:
        body = _section(DOCS["errors"], code)
        assert "When:" in body, code
        assert "Recover:" in body, code


def test_the_readme_errors_table_lists_exactly_the_error_codes() -> None:
    assert ROW_NAME.findall(_section(README, "Errors")) == list(CODES)


def test_the_published_error_schema_lists_exactly_the_error_codes() -> None:
    schema = json.loads((paths.TOOLS_DIR / "error.json").read_text(encoding="utf-8"))
    assert schema["properties"]["error"]["properties"]["code"]["enum"] == list(CODES)


# --- environment variables ---------------------------------------------------------


def _env_vars_read_in_src(root: Path = SRC) -> set[str]:
    """CODEX_MCP_* names passed as a literal to a call (`env.get(...)`, `_env_ms(...)`) or a subscript.

    Names only assigned to a constant (markers set on children, e.g. the run tag) are not settings.
    """
    found: set[str] = set()
    for path in root.rglob("*.py"):
        if "_generated" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            candidates: list[ast.expr] = []
            if isinstance(node, ast.Call):
                candidates = list(node.args)
            elif isinstance(node, ast.Subscript):
                candidates = [node.slice]
            found |= {
                candidate.value
                for candidate in candidates
                if isinstance(candidate, ast.Constant)
                and isinstance(candidate.value, str)
                and ENV_VAR.fullmatch(candidate.value)
            }
    return found


def test_the_scan_finds_the_settings_it_must() -> None:
    assert {"CODEX_MCP_PATH", "CODEX_MCP_LOG_LEVEL", "CODEX_MCP_STATE_DIR"} <= _env_vars_read_in_src()


def test_every_env_var_read_in_src_is_in_the_readme_table_and_nothing_else_is() -> None:
    table = set(ROW_NAME.findall(_section(README, "Environment variables")))
    assert table == _env_vars_read_in_src()


def test_every_env_var_read_in_src_is_in_the_config_resource_and_nothing_else_is() -> None:
    table = set(ROW_NAME.findall(_section(DOCS["config"], "Environment variables")))
    assert table == _env_vars_read_in_src()


def test_every_env_var_read_in_src_is_in_help_and_nothing_else_is() -> None:
    assert set(ENV_VAR.findall(cli._parser().format_help())) == _env_vars_read_in_src()  # pyright: ignore[reportPrivateUsage]


def test_every_env_var_the_docs_mention_exists() -> None:
    known = _env_vars_read_in_src()
    for name, text in DOCS.items():
        assert set(ENV_VAR.findall(text)) <= known, name
    # The README's development section also names the test suite's own knobs.
    assert set(ENV_VAR.findall(README)) <= known | _env_vars_read_in_src(REPO / "tests")


# --- tool parameters -----------------------------------------------------------------


def _parameters(schema: dict[str, Any], definitions: dict[str, Any], prefix: str = "") -> set[str]:
    """Every property of `schema`, nested objects' properties as `parent.child`."""
    names: set[str] = set()
    for name, raw in cast(dict[str, Any], schema.get("properties", {})).items():
        prop = cast(dict[str, Any], raw)
        if "$ref" in prop:
            prop = cast(dict[str, Any], definitions[str(prop["$ref"]).rsplit("/", 1)[-1]])
        names.add(prefix + name)
        if "properties" in prop:
            names |= _parameters(prop, definitions, f"{prefix}{name}.")
    return names


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_the_config_resource_documents_exactly_each_tools_parameters(tool: str) -> None:
    schema = tool_definition(tool)["inputSchema"]
    documented = ROW_NAME.findall(_section(DOCS["config"], tool))
    assert len(documented) == len(set(documented))
    assert set(documented) == _parameters(schema, schema.get("$defs", {}))


# --- examples ------------------------------------------------------------------------


def _tool_calls(markdown: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(tool or None, arguments) of each one-line JSON object in the ```json blocks that is a call."""
    calls: list[tuple[str | None, dict[str, Any]]] = []
    for block in _blocks(markdown, "json"):
        if block.lstrip().startswith("{\n"):
            continue  # a multi-line document (a client config), not a call
        for line in block.splitlines():
            value = json.loads(line)
            if "error" in value:
                continue
            if "tool" in value:
                calls.append((value["tool"], value["arguments"]))
            else:
                calls.append((None, value))
    return calls


@pytest.mark.parametrize("document", ["README", "config", "quickstart"])
def test_every_example_call_is_valid_for_its_tool(document: str) -> None:
    calls = _tool_calls(README if document == "README" else DOCS[document])
    assert calls
    for tool, arguments in calls:
        candidates = [tool] if tool else list(TOOL_NAMES)
        assert any(not input_problems(name, arguments) for name in candidates), arguments


def test_the_error_example_matches_the_error_schema() -> None:
    schema = json.loads((paths.TOOLS_DIR / "error.json").read_text(encoding="utf-8"))
    [block] = _blocks(DOCS["errors"], "json")
    jsonschema.validate(json.loads(block), schema)


# --- commands ------------------------------------------------------------------------


def _readme_commands() -> list[str]:
    return [line.strip() for block in _blocks(README, "sh") for line in block.splitlines() if line.strip()]


def test_every_readme_command_is_run_by_ci_or_a_test() -> None:
    assert sorted(_readme_commands()) == sorted(README_COMMANDS)
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    lint = (REPO / "scripts" / "dev.py").read_text(encoding="utf-8")
    for command, (where, test_name) in README_COMMANDS.items():
        if (where, test_name) == CI:
            # dev.py's lint task, run by .ci/run, spells its commands as argv lists.
            argv = command.removeprefix(".venv/bin/python ").split()
            assert command in ci or ", ".join(json.dumps(a) for a in argv) in lint, command
            continue
        assert f"def {test_name}(" in (REPO / where).read_text(encoding="utf-8"), (where, test_name)


def test_the_readme_names_one_command_that_runs_the_server_and_one_that_runs_the_tests() -> None:
    commands = _readme_commands()
    assert [c for c in commands if c.startswith("python3 scripts/dev.py")] == [
        "python3 scripts/dev.py serve",
        "python3 scripts/dev.py test",
    ]


def test_install_lines_name_our_package_script_and_extra() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "codex-mcp"
    assert project["scripts"]["codex-mcp"] == "codex_mcp.cli:main"
    assert any(dep.startswith("openai-codex-cli-bin") for dep in project["optional-dependencies"]["codex"])
    install = _blocks(README, "sh")[0].split()
    assert install == [
        "uvx",
        "codex-mcp",
        "pip",
        "install",
        "codex-mcp",
        "pip",
        "install",
        "'codex-mcp[codex]'",
    ]


def _codex_toml() -> dict[str, Any]:
    [block] = _blocks(README, "toml")
    server: dict[str, Any] = tomllib.loads(block)["mcp_servers"]["codex-mcp"]
    return server


def test_client_configs_start_the_server_the_same_way() -> None:
    expected = ["uvx", "codex-mcp"]
    [claude] = [c for c in _readme_commands() if c.startswith("claude mcp add")]
    assert claude.split(" -- ", 1)[1].split() == expected
    [desktop] = [json.loads(b) for b in _blocks(README, "json") if "mcpServers" in b]
    server = desktop["mcpServers"]["codex-mcp"]
    assert [server["command"], *server["args"]] == expected
    assert set(server["env"]) <= _env_vars_read_in_src()
    toml = _codex_toml()
    assert [toml["command"], *toml["args"]] == expected


def test_the_readme_codex_entry_is_the_config_resources_and_has_what_the_real_client_tests_run_with() -> None:
    [block] = _blocks(README, "toml")
    assert _blocks(DOCS["config"], "toml") == [block]
    tested = tomllib.loads(server_entry_toml({}, required=True))["mcp_servers"]["codex-mcp"]
    for key in ("required", "default_tools_approval_mode"):
        assert _codex_toml()[key] == tested[key], key
    assert _codex_toml()["tool_timeout_sec"] >= tested["tool_timeout_sec"]


@pytest.mark.real_codex
def test_the_pinned_codex_reads_the_readme_config_toml(tmp_path: Path) -> None:
    [block] = _blocks(README, "toml")
    (tmp_path / "config.toml").write_text(block, encoding="utf-8")
    completed = subprocess.run(
        [str(codex_binary()), "mcp", "get", "codex-mcp", "--json"],
        env={"CODEX_HOME": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    server = json.loads(completed.stdout)
    assert server["transport"]["command"] == "uvx"
    assert server["transport"]["args"] == ["codex-mcp"]
    assert server["tool_timeout_sec"] == _codex_toml()["tool_timeout_sec"]
    assert server["startup_timeout_sec"] == _codex_toml()["startup_timeout_sec"]


def test_the_readme_regenerate_command_rewrites_what_codegen_owns(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for part in ("codegen", "schemas", "src/codex_mcp/_generated", "src/codex_mcp/resources/data"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    pinned = root / "src/codex_mcp/resources/data/pinned_protocol.json"
    pinned.unlink()
    completed = subprocess.run(
        [sys.executable, "-m", "codegen"], cwd=root, capture_output=True, text=True, timeout=240, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert pinned.read_bytes() == (REPO / "src/codex_mcp/resources/data/pinned_protocol.json").read_bytes()
