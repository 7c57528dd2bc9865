"""Calling a registered HTTP tool: build the exact request, bind a fresh token to its body, read a bounded answer."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from bastion.errors import ConfigError, UpstreamFailed, UpstreamTimeout
from bastion.tools.config import HttpOperation, ToolSettings

#: Largest OpenAPI document read at start-up, in bytes.
MAX_OPENAPI_BYTES = 4 * 1024 * 1024
#: Seconds to wait for an OpenAPI document at start-up.
OPENAPI_TIMEOUT_SECONDS = 10.0
#: Connections kept open to HTTP tool backends, in all.
DEFAULT_MAX_CONNECTIONS = 100
_PATH_PARAM = re.compile(r"\{([A-Za-z0-9_.-]{1,64})\}")
_METHODS = ("get", "post", "put", "patch", "delete")

#: Makes the bearer token for one exact body (the token is bound to those bytes).
BearerFor = Callable[[bytes], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a backend answered: status, content type and the (bounded) body as text."""

    status: int
    content_type: str
    text: str

    @property
    def is_error(self) -> bool:
        """Whether the backend refused or failed."""
        return self.status >= 400

    def as_json(self) -> Any:
        """The body parsed as JSON, or the text when it is not JSON."""
        if "json" in self.content_type:
            try:
                return json.loads(self.text)
            except ValueError:
                return self.text
        return self.text


@dataclass(frozen=True, slots=True)
class ResolvedOperation:
    """A concrete method and path template."""

    method: str
    path: str


def encode_body(arguments: dict[str, Any]) -> bytes:
    """The canonical JSON bytes of ``arguments`` (the bytes the token's body hash covers)."""
    return json.dumps(arguments, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def build_request(
    base_url: str, op: ResolvedOperation, arguments: dict[str, Any]
) -> tuple[str, str, dict[str, str], bytes]:
    """Method, URL, query and body for a call: path parameters first, the rest as query or JSON body."""
    remaining = dict(arguments)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in remaining:
            raise UpstreamFailed(f"The tool needs the argument {name!r}.", code="invalid_arguments")
        # quote with safe="" so an argument can never add path segments or a query of its own.
        return quote(_scalar(remaining.pop(name)), safe="")

    path = _PATH_PARAM.sub(fill, op.path)
    url = base_url.rstrip("/") + path
    if op.method in ("GET", "DELETE"):
        return op.method, url, {k: _scalar(v) for k, v in sorted(remaining.items())}, b""
    return op.method, url, {}, encode_body(remaining)


async def resolve_operation(session: aiohttp.ClientSession, tool: ToolSettings) -> ResolvedOperation:
    """The method and path of an HTTP tool, looking its ``operation_id`` up in the OpenAPI document."""
    op: HttpOperation | None = tool.operation
    if op is None:
        raise ConfigError(f"tool {tool.name!r} has no operation")
    if op.method and op.path:
        return ResolvedOperation(op.method, op.path)
    assert op.openapi_url is not None and op.operation_id is not None
    try:
        async with session.get(op.openapi_url, timeout=aiohttp.ClientTimeout(total=OPENAPI_TIMEOUT_SECONDS),
                               allow_redirects=False) as resp:
            status = resp.status
            raw = await resp.content.read(MAX_OPENAPI_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ConfigError(f"tool {tool.name!r}: cannot fetch its OpenAPI document ({type(exc).__name__})") from None
    if status != 200 or len(raw) > MAX_OPENAPI_BYTES:
        raise ConfigError(f"tool {tool.name!r}: its OpenAPI document answered {status} or is too large")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ConfigError(f"tool {tool.name!r}: its OpenAPI document is not JSON") from None
    for path, item in (doc.get("paths") or {}).items():
        for method in _METHODS:
            spec = (item or {}).get(method)
            if isinstance(spec, dict) and spec.get("operationId") == op.operation_id:
                return ResolvedOperation(method.upper(), str(path))
    raise ConfigError(f"tool {tool.name!r}: operation {op.operation_id!r} is not in its OpenAPI document")


class HttpToolClient:
    """Sends one call to an HTTP tool's backend with a token minted for exactly that request.

    Calls go over one pooled aiohttp session (made on first use, inside the running
    loop, as aiohttp requires): on loopback it costs a third of what httpx does per call.
    """

    def __init__(self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._operations: dict[str, ResolvedOperation] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
                trust_env=False,
                auto_decompress=True,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def prepare(self, tool: ToolSettings) -> None:
        """Resolve the tool's operation once (at start-up)."""
        self._operations[tool.name] = await resolve_operation(self._client(), tool)

    def operation(self, tool: ToolSettings) -> ResolvedOperation:
        """The resolved operation; a method-and-path tool needs no preparation."""
        op = self._operations.get(tool.name)
        if op is None:
            if tool.operation is None or not (tool.operation.method and tool.operation.path):
                raise UpstreamFailed("The tool is not ready.", code="tool_unavailable")
            op = ResolvedOperation(tool.operation.method, tool.operation.path)
            self._operations[tool.name] = op
        return op

    async def call(
        self, tool: ToolSettings, arguments: dict[str, Any], *, bearer_for: BearerFor, request_id: str
    ) -> ToolResult:
        """Call the backend and return its bounded answer."""
        assert tool.base_url is not None
        method, url, query, body = build_request(tool.base_url, self.operation(tool), arguments)
        token = await bearer_for(body)
        headers = {"Authorization": f"Bearer {token}", "X-Request-Id": request_id, "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        try:
            async with self._client().request(
                method, url, params=query or None, data=body or None, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=tool.timeout_seconds),
            ) as resp:
                raw = await resp.content.read(tool.max_response_bytes + 1)
                status, content_type = resp.status, resp.headers.get("Content-Type", "")
        except TimeoutError:
            raise UpstreamTimeout("The tool did not answer in time.", code="tool_timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailed(
                f"The tool could not be reached ({type(exc).__name__}).", code="tool_unreachable"
            ) from None
        if len(raw) > tool.max_response_bytes:
            raise UpstreamFailed("The tool's answer is larger than allowed.", code="tool_response_too_large")
        return ToolResult(status, content_type, raw.decode("utf-8", errors="replace"))
