"""The MCP side: tools and resources over stdio."""
