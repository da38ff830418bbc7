"""Resources over real stdio, the compat probe against the pinned and a different Codex, and the
README's commands (`codex-mcp doctor`, `codex-mcp schemas export`, `python3 scripts/dev.py serve`)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS

from codegen import paths
from codex_mcp.resources.published import published_schemas
from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from codex_mcp.wire.tools import TOOL_NAMES
from tests.e2e.client import running_server, server_env
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]
REPO = paths.REPO_ROOT
CONSOLE_SCRIPT = Path(sys.executable).parent / "codex-mcp"

# A stand-in Codex 9.9.9 whose protocol differs from the vendored one in known ways.
FAKE_CODEX = """#!{python}
import json, pathlib, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("codex-cli 9.9.9")
    sys.exit(0)
if args in (["app-server", "--help"], ["exec", "--help"]):
    print("Usage: codex exec [OPTIONS] [PROMPT]  Commands: resume")
    sys.exit(0)
if args[:3] != ["app-server", "generate-json-schema", "--experimental"]:
    sys.exit(2)
out = pathlib.Path(args[args.index("--out") + 1])
out.mkdir(parents=True)
bundle = json.loads(pathlib.Path({bundle!r}).read_text())
defs = bundle["definitions"]
request = json.loads(json.dumps(defs["ClientRequest"]["oneOf"][0]))
request["properties"]["method"]["enum"] = ["thread/teleport"]
defs["ClientRequest"]["oneOf"].append(request)
defs["v2"]["SandboxMode"]["enum"].append("moon-only")
defs["v2"]["TurnStartParams"]["required"].append("planet")
defs["v2"]["TurnStartParams"]["properties"]["planet"] = {{"type": "string"}}
(out / "codex_app_server_protocol.schemas.json").write_text(json.dumps(bundle))
"""


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    script = tmp_path / "fake-bin" / "codex"
    script.parent.mkdir()
    script.write_text(FAKE_CODEX.format(python=sys.executable, bundle=str(paths.APP_SERVER_BUNDLE)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def _read_json(session: ClientSession, uri: str) -> dict[str, Any]:
    result = await session.read_resource(uri)
    [content] = result.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == "application/json"
    data: dict[str, Any] = json.loads(content.text)
    return data


async def test_every_listed_resource_reads_over_stdio_and_server_info_counts_sessions(
    codex_env: CodexEnv,
) -> None:
    async with running_server(codex_env) as mcp:
        listed = (await mcp.session.list_resources()).resources
        uris = [resource.uri for resource in listed]
        # six documents, each tool's input and output schema, the error shape, the rule files,
        # the schemas of the session records (the records themselves are templates)
        assert len(uris) == 6 + 2 * len(TOOL_NAMES) + 1 + len(
            list((paths.TOOLS_DIR / "rules").glob("*.json"))
        ) + len(list((paths.SCHEMAS_DIR / "resources").glob("*.json")))
        assert "codex-mcp:///schemas/tools/codex_check.input-rules.json" in uris
        for resource in listed:
            result = await mcp.session.read_resource(resource.uri)
            [content] = result.contents
            assert isinstance(content, types.TextResourceContents)
            assert content.uri == resource.uri
            assert content.mime_type == resource.mime_type
            assert content.text.strip()
        schema = await _read_json(mcp.session, "codex-mcp:///schemas/tools/codex.input.json")
        assert schema == published_schemas()["tools/codex.input.json"]
        before = await _read_json(mcp.session, "codex-mcp:///server-info")
        started = await mcp.call(
            "codex",
            {"prompt": "scenario:plain hi", "approvalPolicy": "never", "sandbox": "read-only"},
        )
        await mcp.run_to_end(started["sessionId"])
        after = await _read_json(mcp.session, "codex-mcp:///server-info")
    assert before["codex"]["version"] == PINNED_CODEX_VERSION
    assert before["codex"]["path"] == str(codex_env.binary)
    assert before["backend"]["mode"] == "app-server"
    assert before["stateDir"] == str(codex_env.root / "state")
    assert before["activeSessions"] == 0
    assert after["activeSessions"] == 1
    assert after["sessionsByStatus"] == {"idle": 1}
    assert set(before["resources"]) == set(uris)


async def test_an_unknown_resource_is_an_error_naming_the_uri(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        with pytest.raises(MCPError, match=r"codex-mcp:///nothing-here") as raised:
            await mcp.session.read_resource("codex-mcp:///nothing-here")
        assert raised.value.code == INVALID_PARAMS
        # The server still answers afterwards.
        assert (await mcp.session.list_resources()).resources


async def test_compat_report_against_the_pinned_codex_reports_no_drift(codex_env: CodexEnv) -> None:
    async with running_server(codex_env) as mcp:
        report = await _read_json(mcp.session, "codex-mcp:///compat-report")
    assert report["codex"]["version"] == PINNED_CODEX_VERSION
    assert report["versionMatchesPinned"] is True
    assert report["drift"] is False
    assert report["protocolDiff"]["identical"] is True
    assert report["problems"] == []
    assert all(feature["supported"] for feature in report["features"].values())
    assert report["enums"]["sandbox"]["onlyCodex"] == []
    assert report["enums"]["approvalPolicy"]["onlyOurs"] == ["on-failure"]


async def test_compat_report_against_another_codex_reports_the_version_gap_and_the_diff(
    codex_env: CodexEnv, fake_codex: Path
) -> None:
    async with running_server(codex_env, {"CODEX_MCP_PATH": str(fake_codex)}) as mcp:
        report = await _read_json(mcp.session, "codex-mcp:///compat-report")
        info = await _read_json(mcp.session, "codex-mcp:///server-info")
    assert report["codex"]["path"] == str(fake_codex)
    assert report["codex"]["version"] == "9.9.9"
    assert report["versionMatchesPinned"] is False
    assert report["drift"] is True
    diff = report["protocolDiff"]
    assert (diff["from"], diff["to"]) == (PINNED_CODEX_VERSION, "9.9.9")
    assert diff["methods"]["client requests"]["added"] == ["thread/teleport"]
    assert diff["types"]["changed"]["TurnStartParams"] == ["required +planet", "field +planet"]
    assert "  + thread/teleport" in diff["text"]
    assert report["enums"]["sandbox"]["onlyCodex"] == ["moon-only"]
    assert info["codex"]["version"] == "9.9.9"


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_doctor_without_codex_prints_what_is_missing_and_exits_1(tmp_path: Path) -> None:
    # The bundled Codex wheel is a dev dependency here: a package that refuses to import hides it.
    shadow = tmp_path / "shadow" / "codex_cli_bin"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden from this test')\n")
    env = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path), "PYTHONPATH": str(shadow.parent)}
    completed = _run([str(CONSOLE_SCRIPT), "doctor"], env, tmp_path)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "codex-mcp doctor: NOT READY" in completed.stdout
    assert "CODEX_NOT_FOUND: no Codex executable" in completed.stdout
    assert "fix: install Codex" in completed.stdout


def test_doctor_with_the_pinned_codex_reports_ready_and_exits_0(codex_env: CodexEnv) -> None:
    completed = _run([str(CONSOLE_SCRIPT), "doctor"], server_env(codex_env), codex_env.workspace)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.startswith("codex-mcp doctor: ready")
    assert f"version {PINNED_CODEX_VERSION} (= pinned)" in completed.stdout
    assert "problems:" not in completed.stdout


def test_schemas_export_writes_the_published_schemas(tmp_path: Path) -> None:
    completed = _run([str(CONSOLE_SCRIPT), "schemas", "export", "./codex-mcp-schemas"], {}, tmp_path)
    assert completed.returncode == 0, completed.stderr
    out = tmp_path / "codex-mcp-schemas"
    for relative, schema in published_schemas().items():
        assert json.loads((out / relative).read_text(encoding="utf-8")) == schema


async def test_the_readme_run_command_serves_our_tools_and_resources(codex_env: CodexEnv) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(REPO / "scripts" / "dev.py"), "serve"],
        env=server_env(codex_env),
        cwd=str(codex_env.workspace),
    )
    with anyio.fail_after(120):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            resources = {resource.uri for resource in (await session.list_resources()).resources}
    assert tools == set(TOOL_NAMES)
    assert "codex-mcp:///quickstart" in resources
