"""The HTTP side every remote provider shares: one pooled session, deadlines, size caps, error mapping.

Provider modules translate bodies; this module moves bytes and turns the
provider's failures into Bastion's errors without ever forwarding words that
could quote the gateway's credential or name internal hosts.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from typing import Any

import aiohttp

from bastion import __version__
from bastion.errors import InvalidRequest, RateLimited, UpstreamFailed, UpstreamTimeout
from bastion.settings import ProviderSettings

#: Longest upstream error message passed on to a client, in characters.
MAX_UPSTREAM_MESSAGE_CHARS = 300
#: Longest single SSE line accepted from a provider, in bytes.
MAX_SSE_LINE_BYTES = 1024 * 1024
#: Longest single response header accepted from a provider, in bytes.
MAX_HEADER_FIELD_BYTES = 16 * 1024
#: Bytes read from a provider's answer at a time.
READ_CHUNK_BYTES = 64 * 1024

# Upstream error messages are shown to clients only after anything key-like is cut out:
# some providers quote part of the credential they rejected.
_KEYLIKE = re.compile(r"(?:sk|bst|key|rk|pk)[-_][A-Za-z0-9_*\-]{6,}|[A-Za-z0-9+/_\-]{32,}")


def clean_message(msg: Any) -> str:
    """A provider's error text, cut short and with anything key-like removed."""
    return _KEYLIKE.sub("[redacted]", str(msg or "")[:MAX_UPSTREAM_MESSAGE_CHARS])


class SSELines:
    """The ``data:`` lines of a server-sent event stream, split from whatever has arrived.

    Unlike reading line by line, this can tell (``ready``) whether a complete line is
    already buffered, so chunks that arrived together can leave together. A line longer
    than ``max_line_bytes`` is refused.
    """

    def __init__(self, content: aiohttp.StreamReader, *, max_line_bytes: int = MAX_SSE_LINE_BYTES) -> None:
        self._content = content
        self._max = max_line_bytes
        self._lines: deque[bytes] = deque()
        self._partial = b""
        self._eof = False

    def _split(self, data: bytes) -> None:
        if self._partial:
            data = self._partial + data
        parts = data.split(b"\n")
        self._partial = parts.pop()
        for line in parts:
            if len(line) > self._max:
                raise UpstreamFailed("The model provider sent an oversized event.", code="upstream_invalid_response")
            if line.startswith(b"data:"):
                self._lines.append(line)
        if len(self._partial) > self._max:
            raise UpstreamFailed("The model provider sent an oversized event.", code="upstream_invalid_response")

    def ready(self) -> bool:
        """Whether a complete line (or the end of the stream) can be had without waiting."""
        if not self._lines and not self._eof:
            data = self._content.read_nowait()
            if data:
                self._split(data)
            elif self._content.at_eof():
                return True
        return bool(self._lines) or self._eof

    async def next(self) -> str | None:
        """The next ``data:`` line's payload (stripped), or None at the end of the stream."""
        while not self._lines:
            if self._eof:
                return None
            data = self._content.read_nowait()
            if not data:
                data = await self._content.readany()
            if not data:
                self._eof = True
                if self._partial.startswith(b"data:"):
                    self._lines.append(self._partial)
                self._partial = b""
                continue
            self._split(data)
        line = self._lines.popleft()
        return line[5:].decode("utf-8", "replace").strip()


class Transport:
    """One provider's pooled HTTP session, with its deadlines and limits."""

    def __init__(self, settings: ProviderSettings, headers: dict[str, str], *, max_response_bytes: int) -> None:
        self._settings = settings
        self._headers = {"Content-Type": "application/json", "User-Agent": f"bastion/{__version__}",
                         **settings.headers, **headers}
        self.max_response_bytes = max_response_bytes
        t = settings.timeouts
        # Waiting for a pooled connection counts against connect; reading against sock_read.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=t.pool_seconds + t.connect_seconds, sock_connect=t.connect_seconds,
            sock_read=t.read_seconds,
        )
        #: Bound on sending the request and receiving the answer's headers.
        self._head_deadline = t.pool_seconds + t.connect_seconds + t.write_seconds + t.read_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop, as aiohttp requires.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._settings.max_connections, ttl_dns_cache=300,
                                               enable_cleanup_closed=True),
                headers=self._headers,
                timeout=self._timeout,
                trust_env=False,
                read_bufsize=MAX_SSE_LINE_BYTES,
                max_line_size=MAX_SSE_LINE_BYTES,
                max_field_size=MAX_HEADER_FIELD_BYTES,
                raise_for_status=False,
            )
        return self._session

    async def post(self, url: str, body: dict[str, Any], *, request_id: str,
                   params: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """POST ``body`` as JSON; the response once its headers have arrived."""
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            async with asyncio.timeout(self._head_deadline):
                return await self._client().post(url, params=params, data=data, allow_redirects=False,
                                                 headers={"X-Request-Id": request_id})
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout() from None
        except aiohttp.ClientError:
            raise UpstreamFailed("The model provider could not be reached.", code="upstream_unreachable") from None

    async def read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        """The whole answer body, refused beyond ``max_response_bytes``."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in resp.content.iter_chunked(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise UpstreamFailed("The model provider's answer is too large.",
                                         code="upstream_response_too_large")
                chunks.append(chunk)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout() from None
        except aiohttp.ClientError:
            raise UpstreamFailed("The connection to the model provider failed.", code="upstream_unreachable") from None
        finally:
            resp.release()
        return b"".join(chunks)

    async def read_json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        """The answer as a JSON object, after mapping an error status."""
        await self.raise_for_status(resp)
        raw = await self.read_capped(resp)
        try:
            data = json.loads(raw)
        except ValueError:
            raise UpstreamFailed("The model provider's answer is not valid JSON.",
                                 code="upstream_invalid_response") from None
        if not isinstance(data, dict):
            raise UpstreamFailed("The model provider's answer is not a JSON object.", code="upstream_invalid_response")
        return data

    async def raise_for_status(self, resp: aiohttp.ClientResponse) -> None:
        """Map an error status to a Bastion error; forward the provider's words only for its 4xx."""
        status = resp.status
        if status < 400:
            return
        raw = await self.read_capped(resp)
        upstream_msg = ""
        try:
            parsed = json.loads(raw)
            err = parsed.get("error") if isinstance(parsed, dict) else None
            upstream_msg = str(err.get("message", "")) if isinstance(err, dict) else str(err or "")
        except ValueError:
            pass
        if status == 429:
            retry = resp.headers.get("retry-after", "")
            headers = {"Retry-After": retry} if retry.isdigit() else {}
            raise RateLimited("The model provider is rate limiting requests; retry later.",
                              code="upstream_rate_limited", headers=headers)
        if status in (401, 403):
            # Never forward: the provider's words may quote our credential.
            raise UpstreamFailed("The gateway's credentials for this provider were rejected.",
                                 code="upstream_auth_failed")
        if status == 529:
            raise UpstreamFailed("The model provider is overloaded; retry later.", code="upstream_overloaded")
        if 400 <= status < 500:
            msg = "The model provider rejected the request"
            cleaned = clean_message(upstream_msg)
            raise InvalidRequest(f"{msg}: {cleaned}" if cleaned else msg + ".", code="upstream_bad_request")
        raise UpstreamFailed(f"The model provider returned an error (HTTP {status}).")

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
