"""Any OpenAI-compatible server: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, LM Studio."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from bastion import __version__
from bastion.errors import InvalidRequest, RateLimited, UpstreamFailed, UpstreamTimeout
from bastion.providers.base import UpstreamRequest
from bastion.providers.secrets import Secret
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


def _clean_message(msg: Any) -> str:
    text = str(msg or "")[:MAX_UPSTREAM_MESSAGE_CHARS]
    return _KEYLIKE.sub("[redacted]", text)


class OpenAICompatibleProvider:
    """A provider speaking the OpenAI HTTP API, over one pooled aiohttp session."""

    def __init__(self, settings: ProviderSettings, api_key: Secret | None, *, max_response_bytes: int) -> None:
        self.name = settings.name
        self.type = settings.type
        self._settings = settings
        self._azure = settings.type == "azure_openai"
        self._max_response_bytes = max_response_bytes
        self._base = settings.base_url.rstrip("/")
        headers = {"Content-Type": "application/json", "User-Agent": f"bastion/{__version__}", **settings.headers}
        if api_key is not None:
            if self._azure:
                headers["api-key"] = api_key.reveal()
            else:
                headers["Authorization"] = f"Bearer {api_key.reveal()}"
        self._headers = headers
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

    def _url(self, operation: str, upstream_model: str) -> tuple[str, dict[str, str]]:
        if self._azure:
            params = {"api-version": self._settings.api_version or ""}
            return f"{self._base}/openai/deployments/{quote(upstream_model, safe='')}/{operation}", params
        return f"{self._base}/{operation}", {}

    async def _send(self, operation: str, req: UpstreamRequest) -> aiohttp.ClientResponse:
        url, params = self._url(operation, req.upstream_model)
        body = dict(req.body)
        body["model"] = req.upstream_model
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            async with asyncio.timeout(self._head_deadline):
                return await self._client().post(url, params=params, data=data, allow_redirects=False,
                                                 headers={"X-Request-Id": req.request_id})
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout() from None
        except aiohttp.ClientError:
            raise UpstreamFailed("The model provider could not be reached.", code="upstream_unreachable") from None

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in resp.content.iter_chunked(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > self._max_response_bytes:
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

    async def _raise_for_status(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status < 400:
            return
        raw = await self._read_capped(resp)
        upstream_msg = ""
        try:
            parsed = json.loads(raw)
            err = parsed.get("error") if isinstance(parsed, dict) else None
            upstream_msg = err.get("message", "") if isinstance(err, dict) else str(err or "")
        except ValueError:
            pass
        status = resp.status
        if status == 429:
            retry = resp.headers.get("retry-after", "")
            headers = {"Retry-After": retry} if retry.isdigit() else {}
            raise RateLimited("The model provider is rate limiting requests; retry later.",
                              code="upstream_rate_limited", headers=headers)
        if status in (401, 403):
            # Never forward: the provider's words may quote our credential.
            raise UpstreamFailed("The gateway's credentials for this provider were rejected.",
                                 code="upstream_auth_failed")
        if 400 <= status < 500:
            msg = "The model provider rejected the request"
            cleaned = _clean_message(upstream_msg)
            raise InvalidRequest(f"{msg}: {cleaned}" if cleaned else msg + ".", code="upstream_bad_request")
        raise UpstreamFailed(f"The model provider returned an error (HTTP {status}).")

    async def _json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        await self._raise_for_status(resp)
        raw = await self._read_capped(resp)
        try:
            data = json.loads(raw)
        except ValueError:
            raise UpstreamFailed("The model provider's answer is not valid JSON.",
                                 code="upstream_invalid_response") from None
        if not isinstance(data, dict):
            raise UpstreamFailed("The model provider's answer is not a JSON object.", code="upstream_invalid_response")
        return data

    async def chat(self, req: UpstreamRequest) -> dict[str, Any]:
        """POST /chat/completions and return the JSON answer."""
        data = await self._json(await self._send("chat/completions", req))
        if not isinstance(data.get("choices"), list):
            raise UpstreamFailed("The model provider's answer has no choices.", code="upstream_invalid_response")
        return data

    async def embeddings(self, req: UpstreamRequest) -> dict[str, Any]:
        """POST /embeddings and return the JSON answer."""
        data = await self._json(await self._send("embeddings", req))
        if not isinstance(data.get("data"), list):
            raise UpstreamFailed("The model provider's answer has no data.", code="upstream_invalid_response")
        return data

    async def chat_stream(self, req: UpstreamRequest) -> AsyncIterator[dict[str, Any]]:
        """POST /chat/completions with stream=true and yield each parsed SSE chunk."""
        resp = await self._send("chat/completions", req)
        await self._raise_for_status(resp)
        if "text/event-stream" not in resp.headers.get("content-type", ""):
            resp.release()
            raise UpstreamFailed("The model provider did not answer with a stream.", code="upstream_invalid_response")
        try:
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line.startswith("data:"):
                    continue  # comments, event names, retry hints and blank separators
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise UpstreamFailed("The model provider sent an invalid stream event.",
                                         code="upstream_invalid_response") from None
                if not isinstance(chunk, dict):
                    raise UpstreamFailed("The model provider sent an invalid stream event.",
                                         code="upstream_invalid_response")
                if "error" in chunk and "choices" not in chunk:
                    raise UpstreamFailed("The model provider failed while streaming.")
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout() from None
        except (ValueError, aiohttp.http_exceptions.HttpProcessingError):
            # aiohttp refuses a line far beyond its buffer (LineTooLong) before it reaches us.
            raise UpstreamFailed("The model provider sent an oversized event.",
                                 code="upstream_invalid_response") from None
        except aiohttp.ClientError:
            raise UpstreamFailed("The connection to the model provider failed.", code="upstream_unreachable") from None
        finally:
            resp.release()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
