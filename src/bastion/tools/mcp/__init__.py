"""MCP for the tool proxy: the server Bastion offers at ``/mcp`` and the client it uses for upstream servers."""
