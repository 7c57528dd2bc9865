"""Any OpenAI-compatible server: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, LM Studio."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

import aiohttp

from bastion.errors import UpstreamFailed, UpstreamTimeout
from bastion.providers.base import ChunkStream, UpstreamRequest
from bastion.providers.secrets import Secret
from bastion.providers.transport import SSELines, Transport
from bastion.settings import ProviderSettings


class OpenAICompatibleProvider:
    """A provider speaking the OpenAI HTTP API."""

    def __init__(self, settings: ProviderSettings, api_key: Secret | None, *, max_response_bytes: int) -> None:
        self.name = settings.name
        self.type: str = settings.type
        self._settings = settings
        self._azure = settings.type == "azure_openai"
        self._base = settings.base_url.rstrip("/")
        headers: dict[str, str] = {}
        if api_key is not None:
            if self._azure:
                headers["api-key"] = api_key.reveal()
            else:
                headers["Authorization"] = f"Bearer {api_key.reveal()}"
        self._http = Transport(settings, headers, max_response_bytes=max_response_bytes)

    def _url(self, operation: str, upstream_model: str) -> tuple[str, dict[str, str]]:
        if self._azure:
            params = {"api-version": self._settings.api_version or ""}
            return f"{self._base}/openai/deployments/{quote(upstream_model, safe='')}/{operation}", params
        return f"{self._base}/{operation}", {}

    async def _send(self, operation: str, req: UpstreamRequest) -> aiohttp.ClientResponse:
        url, params = self._url(operation, req.upstream_model)
        return await self._http.post(url, {**req.body, "model": req.upstream_model}, request_id=req.request_id,
                                     params=params)

    async def chat(self, req: UpstreamRequest) -> dict[str, Any]:
        """POST /chat/completions and return the JSON answer."""
        data = await self._http.read_json(await self._send("chat/completions", req))
        if not isinstance(data.get("choices"), list):
            raise UpstreamFailed("The model provider's answer has no choices.", code="upstream_invalid_response")
        return data

    async def embeddings(self, req: UpstreamRequest) -> dict[str, Any]:
        """POST /embeddings and return the JSON answer."""
        data = await self._http.read_json(await self._send("embeddings", req))
        if not isinstance(data.get("data"), list):
            raise UpstreamFailed("The model provider's answer has no data.", code="upstream_invalid_response")
        return data

    def chat_stream(self, req: UpstreamRequest) -> ChunkStream:
        """POST /chat/completions with stream=true; the stream of parsed SSE chunks."""
        stream = ChunkStream()
        return stream.attach(self._chunks(req, stream))

    async def _chunks(self, req: UpstreamRequest, stream: ChunkStream) -> AsyncGenerator[dict[str, Any], None]:
        resp = await self._send("chat/completions", req)
        await self._http.raise_for_status(resp)
        if "text/event-stream" not in resp.headers.get("content-type", ""):
            resp.release()
            raise UpstreamFailed("The model provider did not answer with a stream.", code="upstream_invalid_response")
        lines = SSELines(resp.content)
        stream.probe = lines.ready
        try:
            while (payload := await lines.next()) is not None:
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
            raise UpstreamFailed("The model provider sent an oversized event.",
                                 code="upstream_invalid_response") from None
        except aiohttp.ClientError:
            raise UpstreamFailed("The connection to the model provider failed.", code="upstream_unreachable") from None
        finally:
            stream.probe = None
            resp.release()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()
