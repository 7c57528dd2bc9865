"""What a provider is to the gateway: something that answers chat and embedding requests."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
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


class ChunkStream:
    """A provider's stream of chunks that can also say whether the next one has already arrived.

    The gateway sends every chunk that arrived together in one write to the client (and
    waits for nothing to do so): ``ready()`` tells it whether the next chunk can be had
    without waiting for the network. The generator behind the stream sets ``probe`` once
    it has a connection to look at.
    """

    def __init__(self) -> None:
        self._gen: AsyncGenerator[dict[str, Any], None] | None = None
        #: Whether more is buffered; None until the generator knows.
        self.probe: Callable[[], bool] | None = None

    def attach(self, gen: AsyncGenerator[dict[str, Any], None]) -> ChunkStream:
        """Serve the chunks of ``gen``."""
        self._gen = gen
        return self

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        assert self._gen is not None
        return await self._gen.__anext__()

    def ready(self) -> bool:
        """Whether the next chunk (or the stream's end) is already here."""
        probe = self.probe
        return probe() if probe is not None else False

    async def aclose(self) -> None:
        """Stop the stream and release its connection."""
        if self._gen is not None:
            await self._gen.aclose()
