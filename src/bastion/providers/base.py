"""What a provider is to the gateway: something that answers chat and embedding requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One call to a provider: the body as it will be sent, and the provider's model name."""

    body: dict[str, Any]
    upstream_model: str
    request_id: str


class Provider(Protocol):
    """A model provider. Implementations map their own failures to bastion.errors types."""

    name: str
    type: str

    async def chat(self, req: UpstreamRequest) -> dict[str, Any]:
        """Answer a non-streaming chat completion request with the provider's JSON."""
        ...

    def chat_stream(self, req: UpstreamRequest) -> AsyncIterator[dict[str, Any]]:
        """Answer a streaming chat completion request: one parsed chunk per SSE event."""
        ...

    async def embeddings(self, req: UpstreamRequest) -> dict[str, Any]:
        """Answer an embeddings request with the provider's JSON."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
