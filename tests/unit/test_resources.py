"""The resources: what is listed, what each URI reads, the protocol diff and the compat probe."""

from __future__ import annotations

import copy
import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS

from codegen import paths
from codex_mcp.backend_mode import ModeChoice, ModeResolver
from codex_mcp.errors import CodexMcpError
from codex_mcp.protocol_diff import diff_summaries, summarize
from codex_mcp.resources import compat
from codex_mcp.resources.catalog import ResourceCatalog, entries
from codex_mcp.resources.compat import CodexFacts, CompatProbe, build_report, pinned_protocol, probe_codex
from codex_mcp.resources.published import published_schemas
from codex_mcp.resources.records import EventLog
from codex_mcp.resources.server_info import ServerFacts, server_info
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.wire.app_server import PINNED_CODEX_VERSION
from codex_mcp.wire.tools import TOOL_NAMES, tool_definition

pytestmark = pytest.mark.anyio
APP_SERVER = ModeChoice("app-server", "test")
NO_CODEX = CodexMcpError("APP_SERVER_START_FAILED", "no Codex executable: install Codex")


def _bundle() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(paths.APP_SERVER_BUNDLE.read_text(encoding="utf-8"))
    return bundle


def _changed_bundle() -> dict[str, Any]:
    """The vendored bundle with one method added, one removed, one type added, fields and enums changed."""
    bundle = copy.deepcopy(_bundle())
    definitions = bundle["definitions"]
    v2 = definitions["v2"]
    notifications = definitions["ServerNotification"]["oneOf"]
    definitions["ServerNotification"]["oneOf"] = [
        n for n in notifications if n["properties"]["method"]["enum"] != ["thread/archived"]
    ]
    request = copy.deepcopy(definitions["ClientRequest"]["oneOf"][0])
    request["properties"]["method"]["enum"] = ["thread/teleport"]
    definitions["ClientRequest"]["oneOf"].append(request)
    v2["TeleportTarget"] = {"type": "object", "properties": {"planet": {"type": "string"}}}
    v2["TurnStartParams"]["required"].append("planet")
    v2["TurnStartParams"]["properties"]["planet"] = {"type": "string"}
    v2["SandboxMode"]["enum"].append("moon-only")
    return bundle


def test_the_shipped_pinned_summary_is_the_vendored_bundle_summarized() -> None:
    pinned = pinned_protocol()
    assert pinned["codexVersion"] == PINNED_CODEX_VERSION
    assert summarize(_bundle()) == {"methods": pinned["methods"], "types": pinned["types"]}


def test_a_bundle_diffed_against_itself_is_identical() -> None:
    summary = summarize(_bundle())
    diff = diff_summaries(summary, summary)
    assert diff.identical
    assert diff.to_json()["methods"] == {}
    assert not [line for line in diff.lines() if line.startswith("  ")]


def test_the_diff_names_each_added_and_removed_method_type_field_and_enum_value() -> None:
    diff = diff_summaries(summarize(_bundle()), summarize(_changed_bundle()))
    assert not diff.identical
    data = diff.to_json()
    assert data["methods"]["client requests"] == {"added": ["thread/teleport"], "removed": []}
    assert data["methods"]["server notifications"] == {"added": [], "removed": ["thread/archived"]}
    assert data["types"]["added"] == ["TeleportTarget"]
    assert data["types"]["changed"]["TurnStartParams"] == ["required +planet", "field +planet"]
    assert data["types"]["changed"]["SandboxMode"] == ["enum +moon-only"]
    assert "  ~ SandboxMode: enum +moon-only" in diff.lines()


def test_every_resource_is_listed_once_under_the_codex_mcp_scheme() -> None:
    uris = [entry.uri for entry in entries()]
    assert len(uris) == len(set(uris))
    assert all(uri.startswith("codex-mcp:///") for uri in uris)
    for name in ("server-info", "compat-report", "config", "gotchas", "quickstart", "errors"):
        assert f"codex-mcp:///{name}" in uris
    for tool in TOOL_NAMES:
        assert f"codex-mcp:///schemas/tools/{tool}.input.json" in uris
        assert f"codex-mcp:///schemas/tools/{tool}.output.json" in uris


def test_published_schemas_are_what_tools_list_advertises_their_rules_and_the_error_file() -> None:
    schemas = published_schemas()
    for tool in TOOL_NAMES:
        assert schemas[f"tools/{tool}.input.json"] == tool_definition(tool)["inputSchema"]
        assert schemas[f"tools/{tool}.output.json"] == tool_definition(tool)["outputSchema"]
    assert schemas["tools/error.json"] == json.loads((paths.TOOLS_DIR / "error.json").read_text("utf-8"))
    rule_files = sorted((paths.TOOLS_DIR / "rules").glob("*.json"))
    for path in rule_files:
        tool, kind, _ = path.name.split(".")
        assert schemas[f"tools/{tool}.{kind}-rules.json"] == json.loads(path.read_text("utf-8"))
    assert {"codex_check.input.json", "codex_session.input.json"} <= {path.name for path in rule_files}
    record_files = sorted((paths.SCHEMAS_DIR / "resources").glob("*.json"))
    for path in record_files:
        assert schemas[f"resources/{path.name}"] == json.loads(path.read_text("utf-8"))
    assert len(record_files) == 2
    assert len(schemas) == 2 * len(TOOL_NAMES) + 1 + len(rule_files) + len(record_files)


def _catalog(codex: CodexExecutable | CodexMcpError = NO_CODEX) -> ResourceCatalog:
    mode = None if isinstance(codex, CodexMcpError) else APP_SERVER
    return ResourceCatalog(ServerFacts(Settings.from_env({}), codex, mode and ModeResolver.fixed(mode)))


async def test_every_listed_resource_reads_with_its_listed_mime_type() -> None:
    catalog = _catalog()
    for entry in entries():
        mime_type, text = await catalog.text(entry.uri, NO_CODEX)
        assert mime_type == entry.mime_type
        if mime_type == "application/json":
            json.loads(text)
        else:
            assert text.startswith("# codex-mcp: ")


async def test_an_unknown_uri_is_invalid_params_naming_it() -> None:
    with pytest.raises(MCPError) as raised:
        await _catalog().text("codex-mcp:///nope", NO_CODEX)
    assert raised.value.code == INVALID_PARAMS
    assert "codex-mcp:///nope" in raised.value.message
    assert "codex-mcp:///server-info" in raised.value.message


async def test_without_codex_the_compat_report_says_so_instead_of_failing() -> None:
    report = json.loads((await _catalog().text("codex-mcp:///compat-report", NO_CODEX))[1])
    assert report["codex"] == {"found": False, "error": "no Codex executable: install Codex"}
    assert report["drift"] is None
    assert report["problems"] == ["no Codex executable: install Codex"]


@dataclass
class _Session:
    status: str


class _Sessions:
    """Anything with `sessions()` of things with a `status`, and the records, will do: the catalog
    needs no manager. Its one session, `s1`, retains events 5 to 14 (0 to 4 were evicted)."""

    def __init__(self, *statuses: str) -> None:
        self._sessions = [_Session(status) for status in statuses]

    def sessions(self) -> list[_Session]:
        return self._sessions

    def _known(self, session_id: str) -> None:
        if session_id != "s1":
            raise CodexMcpError("SESSION_NOT_FOUND", f"session {session_id} not found", field="sessionId")

    async def session_events(self, session_id: str) -> EventLog:
        self._known(session_id)
        events = [
            {"id": n, "type": "progress", "data": {"method": "m"}, "timestamp": "2026-01-01T00:00:00Z"}
            for n in range(5, 15)
        ]
        return EventLog(events=events, oldest=5, next_id=15)

    async def session_turns(self, session_id: str) -> dict[str, Any]:
        self._known(session_id)
        return {"sessionId": session_id, "status": "idle", "turns": [{"status": "completed"}], "lastTurn": {}}

    async def session_patch(self, session_id: str) -> str:
        self._known(session_id)
        raise CodexMcpError("INVALID_ARGUMENT", "session s1 has no worktree", field="sessionId")


async def _page(uri: str) -> dict[str, Any]:
    mime, text = await _catalog().text(uri, _Sessions())
    assert mime == "application/json"
    page = json.loads(text)
    jsonschema.validate(page, published_schemas()["resources/session-events-page.json"])
    return page


async def test_the_event_log_resource_pages_from_the_oldest_retained_event_and_says_where_it_restarted() -> (
    None
):
    first = await _page("codex-mcp:///sessions/s1/events?limit=4")
    assert [e["id"] for e in first["events"]] == [5, 6, 7, 8]
    assert first["hasMore"] is True
    assert first["nextUri"] == "codex-mcp:///sessions/s1/events?cursor=9&limit=4"
    assert "cursorResetTo" not in first
    reset = await _page("codex-mcp:///sessions/s1/events?cursor=0&limit=4")
    assert reset["cursorResetTo"] == 5
    assert reset["events"] == first["events"]
    last = await _page("codex-mcp:///sessions/s1/events?cursor=13&limit=4")
    assert [e["id"] for e in last["events"]] == [13, 14]
    assert last["hasMore"] is False
    assert "nextUri" not in last
    beyond = await _page("codex-mcp:///sessions/s1/events?cursor=99")
    assert beyond["events"] == []
    assert beyond["hasMore"] is False
    assert (beyond["oldestCursor"], beyond["endCursor"]) == (5, 15)


async def test_the_turn_resources_and_what_a_session_record_refuses() -> None:
    catalog = _catalog()
    mime, text = await catalog.text("codex-mcp:///sessions/s1/turns/0", _Sessions())
    assert (mime, json.loads(text)) == ("application/json", {"status": "completed"})
    for uri, said in (
        ("codex-mcp:///sessions/s1/turns/1", "no turn 1"),
        ("codex-mcp:///sessions/s1/patch", "no worktree"),
        ("codex-mcp:///sessions/s2/events", "not found"),
        ("codex-mcp:///sessions/s1/events?limit=1001", "limit"),
        ("codex-mcp:///sessions/s1/turns?cursor=1", "no query"),
        ("codex-mcp:///sessions/../etc/events", "no session resource"),
    ):
        with pytest.raises(MCPError) as caught:
            await catalog.text(uri, _Sessions())
        assert caught.value.error.code == INVALID_PARAMS
        assert said in caught.value.error.message, uri
    with pytest.raises(MCPError, match="no Codex executable"):
        await catalog.text("codex-mcp:///sessions/s1/events", NO_CODEX)


def test_the_session_records_are_listed_as_templates() -> None:
    templates = _catalog().templates_result().resource_templates
    assert [t.name for t in templates] == ["session-events", "session-turns", "session-turn", "session-patch"]
    assert all(t.uri_template.startswith("codex-mcp:///sessions/{sessionId}/") for t in templates)


async def test_server_info_reads_the_statuses_of_the_session_source_it_is_given() -> None:
    info = json.loads((await _catalog().text("codex-mcp:///server-info", _Sessions("idle", "running")))[1])
    assert info["sessionsAvailable"] is True
    assert info["sessionsByStatus"] == {"idle": 1, "running": 1}
    without = json.loads((await _catalog().text("codex-mcp:///server-info", NO_CODEX))[1])
    assert without["sessionsAvailable"] is False


def test_server_info_counts_running_waiting_and_idle_sessions_as_active() -> None:
    facts = ServerFacts(Settings.from_env({"CODEX_MCP_STATE_DIR": "/tmp/s"}), NO_CODEX, None)
    info = server_info(
        facts,
        codex_version=(None, "n/a"),
        statuses=["running", "idle", "idle", "error", "waiting_approval", "cancelled"],
        env={"CODEX_MCP_STDIO_MODE": "STRICT"},
        resource_uris=["codex-mcp:///x"],
    )
    assert info["activeSessions"] == 4
    assert info["sessionsByStatus"] == {
        "cancelled": 1,
        "error": 1,
        "idle": 2,
        "running": 1,
        "waiting_approval": 1,
    }
    assert info["stdioMode"] == "strict"
    assert info["stateDir"] == "/tmp/s"
    assert info["nesting"] == {"level": 0, "maxNesting": 0, "childrenMayNest": False}
    assert info["codex"]["found"] is False
    assert info["supported"]["approvalPolicy"] == ["untrusted", "on-failure", "on-request", "never"]
    assert "effort" in info["supported"]["openEnums"]
    assert "sandbox" not in info["supported"]["openEnums"]


def _codex(path: Path) -> CodexExecutable:
    return CodexExecutable(path, "CODEX_MCP_PATH")


def test_a_newer_codex_reports_the_version_gap_the_diff_and_the_enum_values_only_it_has() -> None:
    facts = CodexFacts(version="9.9.9", protocol=summarize(_changed_bundle()), exec_resume=True)
    report = build_report(_codex(Path("/x/codex")), APP_SERVER, facts)
    assert report["versionMatchesPinned"] is False
    assert report["drift"] is True
    diff = report["protocolDiff"]
    assert (diff["from"], diff["to"]) == (PINNED_CODEX_VERSION, "9.9.9")
    assert "  + thread/teleport" in diff["text"]
    assert report["enums"]["sandbox"]["onlyCodex"] == ["moon-only"]
    assert report["enums"]["approvalPolicy"]["mappedToCodex"] == {"on-failure": "on-request"}
    assert report["features"]["codex_session.fork"]["supported"] is True


def test_a_codex_without_a_method_we_need_reports_that_feature_unsupported() -> None:
    bundle = copy.deepcopy(_bundle())
    requests = bundle["definitions"]["ClientRequest"]["oneOf"]
    bundle["definitions"]["ClientRequest"]["oneOf"] = [
        r for r in requests if r["properties"]["method"]["enum"] != ["thread/fork"]
    ]
    facts = CodexFacts(version=PINNED_CODEX_VERSION, protocol=summarize(bundle), exec_resume=False)
    report = build_report(_codex(Path("/x/codex")), APP_SERVER, facts)
    assert report["versionMatchesPinned"] is True
    assert report["drift"] is True
    assert report["features"]["codex_session.fork"]["supported"] is False
    assert report["features"]["codex_session.interrupt"]["supported"] is True
    assert report["features"]["execFallback"]["supported"] is False


def test_traps_say_which_apply_to_this_codex_and_backend() -> None:
    facts = CodexFacts(version=PINNED_CODEX_VERSION, protocol=pinned_protocol(), exec_resume=True)
    on_app_server = {
        t["id"]: t["applies"] for t in build_report(_codex(Path("/c")), APP_SERVER, facts)["traps"]
    }
    assert on_app_server["never-with-workspace-write"] is True
    assert on_app_server["on-failure-removed"] is True
    assert on_app_server["exec-never-asks"] is False
    exec_mode = ModeChoice("exec", "CODEX_MCP_MODE")
    report = build_report(_codex(Path("/c")), exec_mode, facts)
    on_exec = {t["id"]: t["applies"] for t in report["traps"]}
    assert on_exec["exec-never-asks"] is True
    assert on_exec["exec-no-fork"] is True
    assert report["features"]["codex_session.fork"]["supported"] is False


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "codex"
    script.write_text(f"#!{sys.executable}\nimport sys, time, pathlib\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_a_hanging_codex_is_reported_within_the_timeouts_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VERSION_TIMEOUT_S", "SCHEMA_TIMEOUT_S", "HELP_TIMEOUT_S"):
        monkeypatch.setattr(compat, name, 0.5)
    codex = _script(tmp_path, "time.sleep(60)")
    with anyio.fail_after(10):
        facts = await probe_codex(codex)
    assert facts.version is None
    assert facts.protocol is None
    assert facts.exec_resume is False
    assert facts.problems == [
        "`codex --version` did not answer within 0.5s",
        "`codex app-server generate-json-schema --experimental` did not answer within 0.5s",
    ]


async def test_a_failing_codex_is_described_in_problems(tmp_path: Path) -> None:
    codex = _script(tmp_path, "print('boom: unsupported', file=sys.stderr); sys.exit(3)")
    facts = await probe_codex(codex)
    assert facts.problems == [
        "`codex --version` exited 3: boom: unsupported",
        "`codex app-server generate-json-schema --experimental` exited 3: boom: unsupported",
    ]
    report = build_report(_codex(codex), APP_SERVER, facts)
    assert report["drift"] is None
    assert report["protocolDiff"] is None
    assert report["features"]["codex"]["supported"] is None


async def test_the_probe_runs_codex_once_per_server_run(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    codex = _script(
        tmp_path,
        f"pathlib.Path({str(log)!r}).open('a').write(' '.join(sys.argv[1:3]) + '\\n')\n"
        "print('codex-cli 1.2.3') if sys.argv[1:] == ['--version'] else sys.exit(1)",
    )
    probe = CompatProbe(_codex(codex), ModeResolver.fixed(APP_SERVER))
    first = await probe.report()
    second = await probe.report()
    assert first is second
    assert first["codex"]["version"] == "1.2.3"
    calls = log.read_text().splitlines()
    assert calls == ["--version", "app-server generate-json-schema", "exec --help"]
    assert await probe.version() == ("1.2.3", None)
    assert len(log.read_text().splitlines()) == 4
    await probe.version()
    assert len(log.read_text().splitlines()) == 4
