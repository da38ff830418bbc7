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
    """What server-info reads of the running session manager: its sessions, for their statuses.

    A Protocol, so that the resources layer does not import `sessions` (the manager satisfies it).
    """

    def sessions(self) -> Sequence[_HasStatus]:
        """Every session this server drives."""
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

    async def text(self, uri: str, manager_or_error: SessionSource | CodexMcpError) -> tuple[str, str]:
        """(mime type, text) of the resource at `uri`.

        Raises:
            MCPError: INVALID_PARAMS naming the URI when there is no such resource.
        """
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
        raise MCPError(INVALID_PARAMS, f"uri: no resource {uri!r}; resources: {known}, {SCHEME}schemas/…")

    async def read_result(
        self, uri: str, manager_or_error: SessionSource | CodexMcpError
    ) -> types.ReadResourceResult:
        """The `resources/read` answer."""
        mime_type, text = await self.text(uri, manager_or_error)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=mime_type, text=text)]
        )
