"""A real MCP client over stdio sees our five tools exactly as schemas/tools/ publishes them, each in a
form clients read right."""

from __future__ import annotations

import json
import sys

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from codegen import paths

pytestmark = pytest.mark.anyio


async def test_tools_list_advertises_every_tool_file_verbatim() -> None:
    server = StdioServerParameters(command=sys.executable, args=["-m", "codex_mcp"])
    with anyio.fail_after(60):
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
    advertised = {tool.name: tool.model_dump(by_alias=True, exclude_none=True) for tool in listed.tools}
    for path in sorted(paths.TOOLS_DIR.glob("*.json")):
        if path.name == "error.json":
            continue
        published = json.loads(path.read_text(encoding="utf-8"))
        assert advertised.pop(published["name"]) == published
    assert advertised == {}


async def test_every_advertised_input_schema_is_an_object_without_top_level_combinators() -> None:
    # One inputSchema without type "object" makes Claude Code drop every tool of the server; a
    # top-level allOf/anyOf is flattened into "all listed parameters apply together".
    server = StdioServerParameters(command=sys.executable, args=["-m", "codex_mcp"])
    with anyio.fail_after(60):
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
    assert len(listed.tools) == 5
    for tool in listed.tools:
        schema = tool.input_schema
        assert schema["type"] == "object", tool.name
        assert not {"allOf", "anyOf", "oneOf", "if", "then", "else", "not"} & set(schema), tool.name
