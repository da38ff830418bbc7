"""The baseline for start-up: a bare MCP SDK server on stdio with one trivial tool, started like ours."""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


async def _list_tools(
    ctx: ServerRequestContext[object], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    tool = types.Tool(name="echo", input_schema={"type": "object"})
    return types.ListToolsResult(tools=[tool])


async def main() -> None:
    server: Server[object] = Server("bare", on_list_tools=_list_tools)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
