"""Tools: the registry of internal APIs and MCP servers, and the tokens minted to call them."""
