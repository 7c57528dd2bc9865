"""The Anthropic provider against a real fake Messages API server: answers, streams, tools, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.fake_anthropic import API_KEY, FakeAnthropic

from bastion.errors import BastionError, InvalidRequest, RateLimited, UpstreamFailed, UpstreamTimeout
from bastion.providers.anthropic import MAX_STREAM_BLOCKS, AnthropicProvider, StreamTranslator, to_messages_request
from bastion.providers.base import UpstreamRequest
from bastion.providers.secrets import Secret
from bastion.settings import ProviderSettings, UpstreamTimeouts

TOOLS: list[dict[str, Any]] = [{"type": "function", "function": {"name": "lookup", "description": "Find a record.",
                                             "parameters": {"type": "object",
                                                            "properties": {"query": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic()
    server.start()
    yield server
    server.stop()


def _provider(fake: FakeAnthropic, key: str | None = API_KEY, **kw: Any) -> AnthropicProvider:
    settings = ProviderSettings(name="claude", type="anthropic", base_url=fake.base_url, **kw)
    return AnthropicProvider(settings, Secret(key) if key else None, max_response_bytes=1024 * 1024)


def _req(model: str, **body: Any) -> UpstreamRequest:
    body.setdefault("messages", [{"role": "user", "content": "hello there"}])
    return UpstreamRequest(body={"model": "alias", **body}, upstream_model=model, request_id="req_test")


def _chat(provider: AnthropicProvider, req: UpstreamRequest) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        try:
            return await provider.chat(req)
        finally:
            await provider.aclose()

    return asyncio.run(run())


def _stream(provider: AnthropicProvider, req: UpstreamRequest) -> tuple[list[dict[str, Any]], BastionError | None]:
    async def run() -> tuple[list[dict[str, Any]], BastionError | None]:
        chunks: list[dict[str, Any]] = []
        try:
            async for chunk in provider.chat_stream(req):
                chunks.append(chunk)
        except BastionError as exc:
            return chunks, exc
        finally:
            await provider.aclose()
        return chunks, None

    return asyncio.run(run())


def test_chat_translates_request_and_answer(fake: FakeAnthropic) -> None:
    answer = _chat(_provider(fake), _req("claude-normal", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "No jokes."}]},
        {"role": "user", "content": "hello there"},
    ], temperature=0.2, top_p=0.9, stop="END"))
    sent = fake.received[-1]
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.body["system"] == "Be brief.\n\nNo jokes."
    assert sent.body["max_tokens"] == 4096  # the provider's default: Anthropic requires one
    assert sent.body["model"] == "claude-normal"
    assert sent.body["stop_sequences"] == ["END"]
    assert (sent.body["temperature"], sent.body["top_p"]) == (0.2, 0.9)
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "You said: hello there"}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 13, "completion_tokens": 7, "total_tokens": 20}


def test_max_tokens_from_request_and_setting(fake: FakeAnthropic) -> None:
    _chat(_provider(fake, default_max_tokens=77), _req("claude-normal"))
    assert fake.received[-1].body["max_tokens"] == 77
    _chat(_provider(fake), _req("claude-normal", max_completion_tokens=12))
    assert fake.received[-1].body["max_tokens"] == 12
    answer = _chat(_provider(fake), _req("claude-maxtokens", max_tokens=3))
    assert answer["choices"][0]["finish_reason"] == "length"


def test_tool_use_round_trip(fake: FakeAnthropic) -> None:
    first = _chat(_provider(fake), _req("claude-tool", tools=TOOLS, tool_choice="required",
                                        parallel_tool_calls=False))
    sent = fake.received[-1].body
    assert sent["tools"] == [{"name": "lookup", "input_schema": TOOLS[0]["function"]["parameters"],
                              "description": "Find a record."}]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    msg = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["content"] == "Let me look."
    call = msg["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"query": "hello there"}
    # The client sends the tool's result back, OpenAI style: it becomes a tool_result block.
    second = _chat(_provider(fake), _req("claude-tool", tools=TOOLS, messages=[
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": msg["content"], "tool_calls": msg["tool_calls"]},
        {"role": "tool", "tool_call_id": call["id"], "content": "record 42"},
    ]))
    turns = fake.received[-1].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][1] == {"type": "tool_use", "id": "toolu_fake1", "name": "lookup",
                                      "input": {"query": "hello there"}}
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_fake1", "content": "record 42"}]
    assert second["choices"][0]["message"]["content"] == "Tool said: record 42"


@pytest.mark.parametrize("choice, expected", [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "lookup"}}, {"type": "tool", "name": "lookup"}),
])
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tools": TOOLS, "tool_choice": choice}
    assert to_messages_request(body, "m", 10)["tool_choice"] == expected


def test_images_and_merged_turns() -> None:
    body = {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO Rw=="}},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]},
        {"role": "user", "content": "and quickly"},
    ]}
    out = to_messages_request(body, "m", 10)
    assert len(out["messages"]) == 1
    blocks = out["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
    assert blocks[3] == {"type": "text", "text": "and quickly"}


@pytest.mark.parametrize("body, param", [
    ({"n": 2}, "n"),
    ({"response_format": {"type": "json_schema"}}, "response_format"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "function": {"name": "f", "arguments": "{not json"}}]}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}]},
     "messages[0].content[0]"),
    ({"stop": ["a"] * 17}, "stop"),
    ({"messages": [{"role": "system", "content": "only rules"}]}, "messages"),
    ({"messages": [{"role": "assistant", "content": "I start"}, {"role": "user", "content": "x"}]}, "messages"),
    ({"tool_choice": "sometimes", "tools": TOOLS}, "tool_choice"),
])
def test_unsupported_requests_are_refused_clearly(body: dict[str, Any], param: str) -> None:
    full = {"messages": [{"role": "user", "content": "x"}], **body}
    with pytest.raises(InvalidRequest) as info:
        to_messages_request(full, "m", 10)
    assert info.value.param == param


def test_empty_turns_do_not_break_alternation() -> None:
    body = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": None},
                         {"role": "user", "content": "b"}, {"role": "assistant", "content": ""}]}
    out = to_messages_request(body, "m", 10)
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                            {"type": "text", "text": "b"}]}]


@pytest.mark.parametrize("events, expected", [
    ([{"type": "content_block_start", "index": 0, "content_block": "oops"}], []),
    ([{"type": "content_block_delta", "index": "x", "delta": None}], []),
    ([{"type": "ping"}, {"type": "content_block_stop", "index": 0}, {"type": "some_future_event"}], []),
    ([{"type": "message_delta", "delta": {"stop_reason": "refusal"}}], ["content_filter"]),
    ([{"type": "message_delta", "delta": {"stop_reason": "something_new"}}], ["stop"]),
])
def test_stream_translator_tolerates_odd_events(events: list[dict[str, Any]], expected: list[str]) -> None:
    translator = StreamTranslator("m", include_usage=False)
    chunks = [c for e in events for c in translator.feed(e)]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == expected


@pytest.mark.parametrize("event, code", [
    ({"type": "content_block_delta", "index": 5, "delta": {"type": "input_json_delta", "partial_json": "{"}},
     "upstream_invalid_response"),
    ({"type": "error", "error": {"type": "api_error"}}, "upstream_error"),
    ({"type": "error", "error": {"type": "overloaded_error"}}, "upstream_overloaded"),
])
def test_stream_translator_refuses_broken_events(event: dict[str, Any], code: str) -> None:
    with pytest.raises(UpstreamFailed) as info:
        StreamTranslator("m", include_usage=False).feed(event)
    assert info.value.code == code


def test_stream_translator_limits_blocks() -> None:
    translator = StreamTranslator("m", include_usage=False)
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    for _ in range(MAX_STREAM_BLOCKS):
        translator.feed(start)
    with pytest.raises(UpstreamFailed):
        translator.feed(start)


def test_stream_text(fake: FakeAnthropic) -> None:
    chunks, err = _stream(_provider(fake), _req("claude-normal", stream=True,
                                                stream_options={"include_usage": True}))
    assert err is None
    assert fake.received[-1].body["stream"] is True
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-msg_fake02" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "You said: hello there"
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {"prompt_tokens": 13, "completion_tokens": 9,
                                                                   "total_tokens": 22}


def test_stream_without_usage_request_has_no_usage_chunk(fake: FakeAnthropic) -> None:
    chunks, err = _stream(_provider(fake), _req("claude-normal", stream=True))
    assert err is None and all(c["choices"] for c in chunks)


def test_stream_tool_call_arguments_arrive_as_deltas(fake: FakeAnthropic) -> None:
    chunks, err = _stream(_provider(fake), _req("claude-tool", stream=True, tools=TOOLS))
    assert err is None
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "toolu_fake1" and calls[0]["function"] == {"name": "lookup", "arguments": ""}
    assert len(calls) > 2 and all(tc["index"] == 0 for tc in calls)
    assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"query": "hello there"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("model, code", [
    ("midstream-error", "upstream_overloaded"),
    ("cutoff", "upstream_incomplete"),
    ("hugeevent", "upstream_invalid_response"),
])
def test_stream_failures_after_first_chunk(fake: FakeAnthropic, model: str, code: str) -> None:
    chunks, err = _stream(_provider(fake), _req(model, stream=True))
    assert chunks and isinstance(err, UpstreamFailed) and err.code == code


@pytest.mark.parametrize("model, kind, code, status", [
    ("error400", InvalidRequest, "upstream_bad_request", 400),
    ("error401", UpstreamFailed, "upstream_auth_failed", 502),
    ("error429", RateLimited, "upstream_rate_limited", 429),
    ("error500", UpstreamFailed, "upstream_error", 502),
    ("error529", UpstreamFailed, "upstream_overloaded", 502),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors_are_mapped_without_leaking(
    fake: FakeAnthropic, model: str, kind: type[BastionError], code: str, status: int, stream: bool
) -> None:
    req = _req(model, stream=stream)
    if stream:
        chunks, err = _stream(_provider(fake), req)
        assert chunks == []
    else:
        with pytest.raises(BastionError) as info:
            _chat(_provider(fake), req)
        err = info.value
    assert isinstance(err, kind) and err.code == code and err.status_code == status
    text = json.dumps(err.to_body())
    assert API_KEY not in text and "sk-ant-" not in text and "db-7" not in text
    if model == "error429":
        assert err.headers == {"Retry-After": "9"}


def test_rejected_key_is_not_forwarded(fake: FakeAnthropic) -> None:
    with pytest.raises(UpstreamFailed) as info:
        _chat(_provider(fake, key="sk-ant-wrong-" + "W" * 20), _req("claude-normal"))
    assert info.value.code == "upstream_auth_failed" and "W" * 20 not in info.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_timeout(fake: FakeAnthropic, stream: bool) -> None:
    provider = _provider(fake, timeouts=UpstreamTimeouts(read_seconds=0.3))
    if stream:
        _, err = _stream(provider, _req("slow:2", stream=True))
        assert isinstance(err, UpstreamTimeout)
    else:
        with pytest.raises(UpstreamTimeout):
            _chat(provider, _req("slow:2"))


def test_unreachable() -> None:
    settings = ProviderSettings(name="c", type="anthropic", base_url="http://127.0.0.1:9/v1")
    provider = AnthropicProvider(settings, None, max_response_bytes=1024)
    with pytest.raises(UpstreamFailed) as info:
        _chat(provider, _req("claude-normal"))
    assert info.value.code == "upstream_unreachable"


def test_oversized_answer_is_refused(fake: FakeAnthropic) -> None:
    settings = ProviderSettings(name="c", type="anthropic", base_url=fake.base_url)
    provider = AnthropicProvider(settings, Secret(API_KEY), max_response_bytes=64)
    with pytest.raises(UpstreamFailed) as info:
        _chat(provider, _req("claude-normal"))
    assert info.value.code == "upstream_response_too_large"


def test_embeddings_are_refused(fake: FakeAnthropic) -> None:
    provider = _provider(fake)

    async def run() -> None:
        try:
            await provider.embeddings(UpstreamRequest(body={"input": "x"}, upstream_model="m", request_id="r"))
        finally:
            await provider.aclose()

    with pytest.raises(InvalidRequest, match="no embeddings"):
        asyncio.run(run())
