"""The built-in offline model: answers with a deterministic summary of what it received.

It lets a newcomer try the gateway (with curl or the OpenAI SDK) without any
provider account, and lets operators check the whole pipeline end to end.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

from bastion.providers.base import UpstreamRequest

#: Dimensions of the echo embedding vectors.
ECHO_EMBEDDING_DIMS = 64
#: Characters of the last user message quoted back.
ECHO_QUOTE_CHARS = 2000
#: Characters per streamed chunk.
ECHO_CHUNK_CHARS = 16


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _count_tokens(text: str) -> int:
    # A rough, deterministic count (about four characters a token) good enough for an offline model.
    return max(1, math.ceil(len(text) / 4)) if text else 0


def summarise(body: dict[str, Any]) -> str:
    """The deterministic answer for a chat request."""
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    roles: dict[str, int] = {}
    for m in messages:
        roles[str(m.get("role"))] = roles.get(str(m.get("role")), 0) + 1
    last_user = next((_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    role_list = ", ".join(f"{n} {r}" for r, n in sorted(roles.items()))
    tools = body.get("tools") or []
    parts = [f"echo: received {len(messages)} message(s) ({role_list})."]
    if tools:
        names = [t.get("function", {}).get("name", "?") for t in tools if isinstance(t, dict)]
        parts.append(f"tools offered: {', '.join(names)}.")
    parts.append(f'last user message ({len(last_user)} chars): "{last_user[:ECHO_QUOTE_CHARS]}"')
    return " ".join(parts)


class EchoProvider:
    """A provider that needs no network: the ``echo`` and ``echo-embedding`` models."""

    type = "echo"

    def __init__(self, name: str) -> None:
        self.name = name

    def _usage(self, body: dict[str, Any], answer: str) -> dict[str, int]:
        prompt = sum(_count_tokens(_content_text(m.get("content"))) for m in body.get("messages", [])
                     if isinstance(m, dict))
        completion = _count_tokens(answer)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _id(self, req: UpstreamRequest) -> str:
        return "chatcmpl-echo-" + hashlib.sha256(req.request_id.encode()).hexdigest()[:24]

    async def chat(self, req: UpstreamRequest) -> dict[str, Any]:
        """Answer with the summary of the request."""
        answer = summarise(req.body)
        return {
            "id": self._id(req),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.upstream_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": self._usage(req.body, answer),
        }

    async def chat_stream(self, req: UpstreamRequest) -> AsyncIterator[dict[str, Any]]:
        """Stream the summary in small chunks, then a usage chunk."""
        answer = summarise(req.body)
        base = {"id": self._id(req), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": req.upstream_model}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        for i in range(0, len(answer), ECHO_CHUNK_CHARS):
            piece = answer[i : i + ECHO_CHUNK_CHARS]
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {**base, "choices": [], "usage": self._usage(req.body, answer)}

    async def embeddings(self, req: UpstreamRequest) -> dict[str, Any]:
        """A deterministic unit vector per input, derived from its SHA-256."""
        raw = req.body.get("input", "")
        inputs = [raw] if isinstance(raw, str) else list(raw)
        data = []
        tokens = 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(x) for x in item)
            tokens += _count_tokens(text)
            seed = hashlib.sha256(text.encode("utf-8")).digest()
            stream = b"".join(hashlib.sha256(seed + bytes([j])).digest() for j in range(ECHO_EMBEDDING_DIMS * 4 // 32))
            vec = [v / 2**31 - 1.0 for v in struct.unpack(f">{ECHO_EMBEDDING_DIMS}I", stream)]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        return {"object": "list", "data": data, "model": req.upstream_model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def aclose(self) -> None:
        """Nothing to release."""
