"""The MCP server: advertises our tools exactly as schemas/tools/ publishes them."""

from __future__ import annotations

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from codex_mcp import __version__
from codex_mcp.wire.tools import TOOL_NAMES, tool_definition


async def _list_tools(
    ctx: ServerRequestContext[object], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool.model_validate(tool_definition(n)) for n in TOOL_NAMES])


async def _call_tool(
    ctx: ServerRequestContext[object], params: types.CallToolRequestParams
) -> types.CallToolResult:
    # Sessions arrive with the app-server backend (issue 3); until then every call says so.
    error = {"code": "INTERNAL", "message": f"{params.name}: not implemented in codex-mcp {__version__} yet"}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"Error [{error['code']}]: {error['message']}")],
        structured_content={"error": error},
        is_error=True,
    )


def build_server() -> Server[object]:
    """The MCP server object with its handlers."""
    return Server("codex-mcp", version=__version__, on_list_tools=_list_tools, on_call_tool=_call_tool)


async def serve() -> None:
    """Serve MCP on stdin/stdout until the client disconnects."""
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


__all__ = ["build_server", "serve"]
