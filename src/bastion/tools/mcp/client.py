"""Calling a tool on a registered MCP server with the official SDK, one short session per call.

Each HTTP request of the session (initialize, the call, the closing DELETE)
carries its own freshly minted token, bound to that request's exact body, so a
token captured from one message is useless for any other.

Sessions are per call, connections are not: every call's client sends over one
shared, pooled transport (kept-alive connections, TLS set up once per
connection, one TLS context for the process). Each call still gets its own
client object, so its credentials and any cookies a server sets never reach
another call.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from bastion.errors import UpstreamFailed, UpstreamTimeout
from bastion.tools.config import ToolSettings

#: Makes the bearer token for one exact HTTP body.
BearerFor = Callable[[bytes], Awaitable[str]]
#: Seconds to connect to an upstream MCP server.
CONNECT_TIMEOUT_SECONDS = 5.0
#: Most pages of ``tools/list`` read from one server.
MAX_LIST_PAGES = 20
#: Connections kept to MCP servers, in all, and how many of them may idle.
MAX_CONNECTIONS = 100
MAX_KEEPALIVE_CONNECTIONS = 20
#: Seconds an idle connection to an MCP server is kept.
KEEPALIVE_SECONDS = 30.0


class BodyBoundAuth(httpx2.Auth):
    """Sets, on every request of an MCP session, a token minted for that request's body."""

    requires_request_body = True

    def __init__(self, bearer_for: BearerFor, request_id: str) -> None:
        self._bearer_for = bearer_for
        self._request_id = request_id

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Mint for exactly the bytes about to be sent, then send them."""
        token = await self._bearer_for(bytes(request.content))
        request.headers["Authorization"] = f"Bearer {token}"
        request.headers["X-Request-Id"] = self._request_id
        yield request


class McpToolClient:
    """Calls ``tools/call`` on an upstream MCP server over Streamable HTTP, with a deadline."""

    def __init__(self, *, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        # Loading the CA bundle takes milliseconds: once per process, not once per call.
        self._tls: ssl.SSLContext = httpx2.create_ssl_context()
        self._pool: tuple[asyncio.AbstractEventLoop, httpx2.AsyncHTTPTransport] | None = None

    def _transport(self) -> httpx2.AsyncHTTPTransport:
        """The pooled transport of the running loop (connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool[0] is not loop:
            transport = httpx2.AsyncHTTPTransport(
                verify=self._tls, trust_env=False,
                limits=httpx2.Limits(max_connections=MAX_CONNECTIONS,
                                     max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
                                     keepalive_expiry=KEEPALIVE_SECONDS),
            )
            self._pool = (loop, transport)
        return self._pool[1]

    async def aclose(self) -> None:
        """Close the pooled connections (of the running loop's transport)."""
        pool, self._pool = self._pool, None
        if pool is not None and pool[0] is asyncio.get_running_loop():
            await pool[1].aclose()

    async def call(
        self, tool: ToolSettings, arguments: dict[str, Any], *, bearer_for: BearerFor, request_id: str
    ) -> dict[str, Any]:
        """The upstream ``CallToolResult`` in its wire form (``content``, ``isError``, ...)."""

        async def run(session: ClientSession) -> Any:
            return await session.call_tool(tool.remote_name, arguments)

        result = await self._session(tool, run, bearer_for=bearer_for, request_id=request_id)
        wire: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return wire

    async def list_tools(self, tool: ToolSettings, *, bearer_for: BearerFor, request_id: str) -> list[dict[str, Any]]:
        """Every tool the server of ``tool`` offers, in wire form (``name``, ``description``, ``inputSchema``)."""

        async def run(session: ClientSession) -> Any:
            listed: list[dict[str, Any]] = []
            params = None
            for _ in range(MAX_LIST_PAGES):
                page = await session.list_tools(params=params)
                listed.extend(t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in page.tools)
                if not page.next_cursor:
                    break
                params = types.PaginatedRequestParams(cursor=page.next_cursor)
            return listed

        result: list[dict[str, Any]] = await self._session(tool, run, bearer_for=bearer_for, request_id=request_id)
        return result

    async def _session(
        self, tool: ToolSettings, run: Callable[[ClientSession], Awaitable[Any]], *, bearer_for: BearerFor,
        request_id: str,
    ) -> Any:
        assert tool.mcp_url is not None
        limit = min(self._timeout, tool.timeout_seconds)
        timeout = httpx2.Timeout(limit, connect=min(CONNECT_TIMEOUT_SECONDS, limit))
        auth = BodyBoundAuth(bearer_for, request_id)
        # Not closed after the call: closing a client closes its transport, which is shared.
        http = httpx2.AsyncClient(auth=auth, timeout=timeout, trust_env=False, transport=self._transport())
        try:
            with anyio.fail_after(limit):
                async with (
                    streamable_http_client(tool.mcp_url, http_client=http) as (read, write),
                    ClientSession(read, write, read_timeout_seconds=limit) as session,
                ):
                    await session.initialize()
                    return await run(session)
        except TimeoutError:
            raise UpstreamTimeout("The MCP tool did not answer in time.", code="tool_timeout") from None
        except MCPError as exc:
            raise UpstreamFailed(f"The MCP server refused the call ({exc.error.code}).", code="tool_error") from None
        except Exception as exc:  # noqa: BLE001 - SDK, transport and task-group errors all mean one thing here
            raise UpstreamFailed(
                f"The MCP server could not be reached ({type(exc).__name__}).", code="tool_unreachable"
            ) from None
