"""Every resource the server publishes, and reading one by URI."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Protocol

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS

from codex_mcp.errors import CodexMcpError
from codex_mcp.host_health import check_hosts
from codex_mcp.resources.compat import CompatProbe
from codex_mcp.resources.published import published_schemas
from codex_mcp.resources.records import TEMPLATES, EventLog, RecordRef, events_page, parse_record_uri
from codex_mcp.resources.server_info import ServerFacts, server_info

SCHEME: Final = "codex-mcp:///"
JSON: Final = "application/json"
MARKDOWN: Final = "text/markdown"
SCHEMA_PREFIX: Final = "schemas/"


@dataclass(frozen=True)
class Entry:
    """One resource as `resources/list` shows it."""

    name: str
    title: str
    description: str
    mime_type: str

    @property
    def uri(self) -> str:
        """`codex-mcp:///<name>`."""
        return SCHEME + self.name


DOCS: Final = (
    Entry(
        "config", "Parameters and settings", "How every tool parameter and env var maps to Codex.", MARKDOWN
    ),
    Entry("gotchas", "Gotchas", "Limits and traps: polling, approvals, lifetimes, exec mode.", MARKDOWN),
    Entry("quickstart", "Quickstart", "The whole workflow as copy-paste tool calls.", MARKDOWN),
    Entry("errors", "Error codes", "Every error code: when it happens and how to recover.", MARKDOWN),
)
_LIVE: Final = (
    Entry(
        "server-info",
        "Server info",
        "Version, Codex path and version, backend, platform, accepted enums, sessions, state dir.",
        JSON,
    ),
    Entry(
        "compat-report",
        "Codex compatibility report",
        "Live probe of the installed Codex: version vs pinned, features, enums, traps, protocol diff.",
        JSON,
    ),
)


class _HasStatus(Protocol):
    @property
    def status(self) -> str: ...


class SessionSource(Protocol):
    """What the resources read of the running session manager: its sessions (server-info's
    statuses) and each session's full record (`codex-mcp:///sessions/<id>/…`).

    A Protocol, so that the resources layer does not import `sessions` (the manager satisfies it).
    The record methods raise CodexMcpError (SESSION_NOT_FOUND, no worktree) as the tools do.
    """

    def sessions(self) -> Sequence[_HasStatus]:
        """Every session this server drives."""
        ...

    async def session_events(self, session_id: str) -> EventLog:
        """Every retained event of the session."""
        ...

    async def session_turns(self, session_id: str) -> dict[str, Any]:
        """The turns resource of the session (each turn's full result)."""
        ...

    async def session_patch(self, session_id: str) -> str:
        """The session's worktree patch (CodexMcpError when it has no worktree)."""
        ...


def _schema_entries() -> list[Entry]:
    entries: list[Entry] = []
    for path, schema in published_schemas().items():
        title = str(schema.get("title", path))
        description = f"JSON Schema of {title} (exactly what tools/list advertises)"
        if path.endswith("error.json"):
            description = "JSON Schema of structuredContent of every isError result"
        entries.append(Entry(SCHEMA_PREFIX + path, title, description, JSON))
    return entries


@cache
def entries() -> tuple[Entry, ...]:
    """Every resource, in listing order."""
    return (*_LIVE, *DOCS, *_schema_entries())


@cache
def doc_text(name: str) -> str:
    """The markdown of a docs resource."""
    return resources.files("codex_mcp.resources").joinpath("docs", f"{name}.md").read_text("utf-8")


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


class ResourceCatalog:
    """Lists and reads the resources of one server run (the compat probe is cached per run)."""

    def __init__(self, facts: ServerFacts) -> None:
        self._facts = facts
        self._probe = CompatProbe(facts.codex, facts.mode)

    def list_result(self) -> types.ListResourcesResult:
        """The `resources/list` answer."""
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=entry.name,
                    title=entry.title,
                    uri=entry.uri,
                    description=entry.description,
                    mime_type=entry.mime_type,
                )
                for entry in entries()
            ]
        )

    def templates_result(self) -> types.ListResourceTemplatesResult:
        """The `resources/templates/list` answer: each session's full record."""
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    name=template.name,
                    title=template.title,
                    uri_template=template.uri_template,
                    description=template.description,
                    mime_type=template.mime_type,
                )
                for template in TEMPLATES
            ]
        )

    async def text(self, uri: str, manager_or_error: SessionSource | CodexMcpError) -> tuple[str, str]:
        """(mime type, text) of the resource at `uri`.

        Raises:
            MCPError: INVALID_PARAMS naming the URI when there is no such resource.
        """
        record = parse_record_uri(uri)
        if isinstance(record, str):
            raise MCPError(INVALID_PARAMS, f"uri: {record}")
        if record is not None:
            if isinstance(manager_or_error, CodexMcpError):
                raise MCPError(INVALID_PARAMS, f"uri: {uri!r}: {manager_or_error.message}")
            try:
                return await _record_text(record, manager_or_error)
            except CodexMcpError as exc:
                raise MCPError(INVALID_PARAMS, f"uri: {uri!r}: {exc.message}") from exc
        name = uri.removeprefix(SCHEME) if uri.startswith(SCHEME) else None
        if name == "server-info":
            statuses = None
            if not isinstance(manager_or_error, CodexMcpError):
                statuses = [session.status for session in manager_or_error.sessions()]
            backend = self._facts.mode
            info = server_info(
                self._facts,
                backend=await backend.resolve() if backend is not None else None,
                codex_version=await self._probe.version(),
                statuses=statuses,
                env=os.environ,
                resource_uris=[entry.uri for entry in entries()],
                hosts=await check_hosts(self._facts.settings.hosts),
            )
            return JSON, _json_text(info)
        if name == "compat-report":
            return JSON, _json_text(await self._probe.report())
        if name in {entry.name for entry in DOCS}:
            return MARKDOWN, doc_text(name)
        if name is not None and name.startswith(SCHEMA_PREFIX):
            schema = published_schemas().get(name.removeprefix(SCHEMA_PREFIX))
            if schema is not None:
                return JSON, _json_text(schema)
        known = ", ".join(entry.uri for entry in entries() if not entry.name.startswith(SCHEMA_PREFIX))
        raise MCPError(
            INVALID_PARAMS,
            f"uri: no resource {uri!r}; resources: {known}, {SCHEME}schemas/…, {SCHEME}sessions/<id>/…",
        )

    async def read_result(
        self, uri: str, manager_or_error: SessionSource | CodexMcpError
    ) -> types.ReadResourceResult:
        """The `resources/read` answer."""
        mime_type, text = await self.text(uri, manager_or_error)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=mime_type, text=text)]
        )


async def _record_text(record: RecordRef, source: SessionSource) -> tuple[str, str]:
    """(mime type, text) of a session's record."""
    if record.kind == "events":
        log = await source.session_events(record.session_id)
        page = events_page(
            record.session_id,
            log.events,
            oldest=log.oldest,
            next_id=log.next_id,
            cursor=record.cursor,
            limit=record.limit,
        )
        return JSON, _json_text(page)
    if record.kind == "patch":
        return "text/x-diff", await source.session_patch(record.session_id)
    turns = await source.session_turns(record.session_id)
    if record.kind == "turns":
        return JSON, _json_text(turns)
    kept: list[Any] = turns["turns"]
    assert record.turn is not None  # a `turn` record always has its index
    if record.turn >= len(kept):
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            f"no turn {record.turn}: the session has {len(kept)} kept (0 to {len(kept) - 1})",
        )
    return JSON, _json_text(kept[record.turn])
