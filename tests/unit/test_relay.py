"""The stream relay: text deltas that arrived together leave as one; nothing waits for more."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bastion.context import RequestContext
from bastion.gateway import Gateway
from bastion.metrics import Metrics
from bastion.providers.registry import ProviderRegistry
from bastion.settings import Settings

BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def _text(t: str) -> dict[str, Any]:
    return {**BASE, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}


class _Burst:
    """Chunks in bursts: everything within a burst has 'arrived together'."""

    def __init__(self, bursts: list[list[dict[str, Any]]]) -> None:
        self._items = [(c, i < len(b) - 1) for b in bursts for i, c in enumerate(b)]
        self._at = 0
        self.reads = 0

    def __aiter__(self) -> _Burst:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._at >= len(self._items):
            raise StopAsyncIteration
        self.reads += 1
        chunk, _ = self._items[self._at]
        self._at += 1
        return json.loads(json.dumps(chunk))

    def ready(self) -> bool:
        # The chunk just read was followed, in the same burst, by another (or the end is here).
        if self._at >= len(self._items):
            return True
        return self._at > 0 and self._items[self._at - 1][1]


def _gateway() -> Gateway:
    events: list[dict[str, Any]] = []

    async def append(event: dict[str, Any]) -> int:
        events.append(event)
        return len(events)

    async def identify(ctx: RequestContext) -> None:
        return None

    return Gateway(Settings(), ProviderRegistry({}, []), identify=identify, chat_stages=[], embedding_stages=[],
                   output_stages=[], audit=append, metrics=Metrics())


async def _relay(bursts: list[list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[bytes]]:
    stream = _Burst(bursts)
    first = await stream.__anext__()
    ctx = RequestContext(endpoint="/v1/chat/completions")
    writes = [w async for w in _gateway()._relay(ctx, first, stream, False)]
    events = [json.loads(line[6:]) for w in writes for line in w.decode().split("\n\n")
              if line.startswith("data: {")]
    return events, writes


def test_text_that_arrived_together_leaves_as_one_delta() -> None:
    words = [f"w{i} " for i in range(40)]
    finish = {**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events, writes = asyncio.run(_relay([[_text(w) for w in words[:30]], [_text(w) for w in words[30:]] + [finish]]))
    texts = [e["choices"][0]["delta"].get("content") for e in events]
    assert "".join(t or "" for t in texts) == "".join(words)
    # Two bursts of text: two deltas (not forty), then the provider's own end.
    assert texts == ["".join(words[:30]), "".join(words[30:]), None]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(e["id"] == "chatcmpl-1" and e["model"] == "m" for e in events)
    # The first burst was written before the relay waited for the second.
    assert len(writes) >= 2 and b"w29" in writes[0] and b"w30" not in writes[0]


def test_chunks_that_are_more_than_text_are_never_merged() -> None:
    role = {**BASE, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    tool = {**BASE, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1"}]},
                                 "finish_reason": None}]}
    other_model = {**_text("x "), "model": "other"}
    second_choice = {**BASE, "choices": [{"index": 1, "delta": {"content": "b "}, "finish_reason": None}]}
    with_logprobs = {**BASE, "choices": [{"index": 0, "delta": {"content": "lp "}, "finish_reason": None,
                                          "logprobs": {"content": []}}]}
    burst = [role, _text("a "), _text("b "), tool, _text("c "), other_model, second_choice, with_logprobs,
             _text("d "), _text("e ")]
    events, _ = asyncio.run(_relay([burst]))
    deltas = [e["choices"][0]["delta"] for e in events]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "a b "},
        {"tool_calls": [{"index": 0, "id": "c1"}]},
        {"content": "c "},
        {"content": "x "},
        {"content": "b "},
        {"content": "lp "},
        {"content": "d e "},
    ]
    assert [e["model"] for e in events].count("other") == 1
    assert events[6]["choices"][0]["logprobs"] == {"content": []}


def test_a_lone_chunk_is_sent_as_it_came() -> None:
    events, writes = asyncio.run(_relay([[_text("one ")], [_text("two ")], [_text("three")]]))
    assert [e["choices"][0]["delta"]["content"] for e in events] == ["one ", "two ", "three"]
    assert len(writes) >= 3  # each was written before the next was awaited
