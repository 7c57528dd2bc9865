"""Anthropic's Messages API, spoken to OpenAI-SDK clients: requests, answers and streams translated.

Requests arrive in the OpenAI chat shape; this module turns them into a
``POST /v1/messages`` body (system prompt apart, tool calls and results as
content blocks, ``max_tokens`` always set), and turns the answer, or each
server-sent event of a stream, back into ``chat.completion`` objects and
``chat.completion.chunk`` dicts. Anthropic has no embeddings API.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp

from bastion.errors import InvalidRequest, UpstreamFailed, UpstreamTimeout
from bastion.providers.base import ChunkStream, UpstreamRequest
from bastion.providers.secrets import Secret
from bastion.providers.transport import SSELines, Transport
from bastion.settings import ProviderSettings

#: Most content blocks one streamed answer may open (each costs a little state here).
MAX_STREAM_BLOCKS = 1024
#: Longest stop sequence list Anthropic accepts from one request.
MAX_STOP_SEQUENCES = 16

# Anthropic's stop reasons in OpenAI's words; an unknown reason is reported as a plain stop.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=\s]+)$", re.DOTALL)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _index(event: dict[str, Any]) -> int:
    value = event.get("index")
    return value if isinstance(value, int) else -1


def _invalid(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, code="unsupported_for_provider", param=param)


# -- request: OpenAI chat -> Anthropic messages ------------------------------------


def _text_of(content: Any, where: str) -> str:
    """The text of a content that may only hold text (system prompts, tool results)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _invalid(f"{where} may only hold text parts for this model.", where)
            parts.append(part["text"])
        return "\n".join(parts)
    raise _invalid(f"{where} must be a string or an array of text parts.", where)


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _invalid(f"{where}: image_url.url must be a string.", where)
    m = _DATA_URL.match(url)
    if m:
        data = re.sub(r"\s+", "", m.group(2))
        return {"type": "image", "source": {"type": "base64", "media_type": m.group(1), "data": data}}
    if url.startswith("https://"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _invalid(f"{where}: images must be https:// URLs or base64 data: URLs of png, jpeg, gif or webp.", where)


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        return []
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part, f"{where}[{i}]"))
        else:
            raise _invalid(f"{where}[{i}]: content part type {str(kind)[:32]!r} is not supported for this model.",
                           where)
    return blocks


def _tool_use_blocks(calls: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        raise _invalid(f"{where}.tool_calls must be an array.", where)
    blocks = []
    for i, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
            raise _invalid(f"{where}.tool_calls[{i}] needs an id and a function name.", where)
        raw = fn.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise _invalid(f"{where}.tool_calls[{i}].function.arguments is not valid JSON.", where) from None
        if not isinstance(args, dict):
            raise _invalid(f"{where}.tool_calls[{i}].function.arguments must be a JSON object.", where)
        blocks.append({"type": "tool_use", "id": call["id"], "name": fn["name"], "input": args})
    return blocks


def _messages(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the alternating user/assistant turns of an OpenAI message list."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return  # an empty turn would leave its neighbours adjacent
        # Anthropic wants user and assistant turns to alternate: consecutive ones are merged.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            text = _text_of(m.get("content"), f"{where}.content")
            if text:
                system.append(text)
        elif role == "user":
            add("user", _user_blocks(m.get("content"), f"{where}.content"))
        elif role == "assistant":
            blocks = []
            text = _text_of(m.get("content"), f"{where}.content")
            if text:
                blocks.append({"type": "text", "text": text})
            if m.get("tool_calls"):
                blocks.extend(_tool_use_blocks(m["tool_calls"], where))
            add("assistant", blocks)
        elif role == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _invalid(f"{where}: a tool message needs tool_call_id.", where)
            result = {"type": "tool_result", "tool_use_id": call_id,
                      "content": _text_of(m.get("content"), f"{where}.content")}
            add("user", [result])
        else:
            raise _invalid(f"{where}: role {str(role)[:32]!r} is not supported for this model.", where)
    if not turns or turns[0]["role"] != "user":
        # The Messages API must open with a user turn; inventing one would put words in the caller's mouth.
        raise _invalid("For this model the conversation must open with a non-empty user message.", "messages")
    return "\n\n".join(system), turns


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _invalid("'tools' must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _invalid(f"tools[{i}] must be a function with a name.", "tools")
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        entry: dict[str, Any] = {"name": fn["name"], "input_schema": schema}
        if isinstance(fn.get("description"), str):
            entry["description"] = fn["description"]
        out.append(entry)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise _invalid("'tool_choice' must be auto, required, none or a named function.", "tool_choice")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def to_messages_request(body: dict[str, Any], upstream_model: str, default_max_tokens: int) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat completion body."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _invalid("'messages' must be an array.", "messages")
    if body.get("n") not in (None, 1):
        raise _invalid("This model answers one choice per request ('n' must be 1).", "n")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise _invalid("This model does not support 'response_format'; describe the format in the prompt.",
                       "response_format")
    system, turns = _messages(messages)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("'max_tokens' must be a positive integer.", "max_tokens")
    out: dict[str, Any] = {"model": upstream_model, "max_tokens": max_tokens, "messages": turns}
    if system:
        out["system"] = system
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > MAX_STOP_SEQUENCES:
            raise _invalid(f"'stop' must be a string or up to {MAX_STOP_SEQUENCES} strings.", "stop")
        if stops:
            out["stop_sequences"] = stops
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and "tools" in out:
        out["tool_choice"] = choice
    if body.get("stream"):
        out["stream"] = True
    return out


# -- answers: Anthropic message -> OpenAI chat.completion -----------------------------


def _usage(usage: Any, output_tokens: int | None = None) -> dict[str, int]:
    u = usage if isinstance(usage, dict) else {}

    def num(key: str) -> int:
        v = u.get(key)
        return v if isinstance(v, int) and v >= 0 else 0

    # Cached prompt tokens are prompt tokens too: spend accounting must see all of them.
    prompt = num("input_tokens") + num("cache_creation_input_tokens") + num("cache_read_input_tokens")
    completion = num("output_tokens") if output_tokens is None else output_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def to_chat_completion(message: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat.completion for a Messages API answer."""
    blocks = message.get("content")
    if not isinstance(blocks, list):
        raise UpstreamFailed("The model provider's answer has no content.", code="upstream_invalid_response")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append({"id": str(block.get("id", "")), "type": "function",
                          "function": {"name": str(block.get("name", "")),
                                       "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})
        # thinking and other block kinds have no place in an OpenAI answer
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        msg["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + str(message.get("id", ""))[:64],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(message.get("model", "")),
        "choices": [{"index": 0, "message": msg,
                     "finish_reason": FINISH_REASONS.get(str(message.get("stop_reason")), "stop")}],
        "usage": _usage(message.get("usage")),
    }


class StreamTranslator:
    """Turns Messages API stream events into chat.completion.chunk dicts, one event at a time."""

    def __init__(self, upstream_model: str, include_usage: bool) -> None:
        self._base: dict[str, Any] = {"id": "chatcmpl-", "object": "chat.completion.chunk",
                                      "created": int(time.time()), "model": upstream_model}
        self._include_usage = include_usage
        self._usage: Any = {}
        self._output_tokens = 0
        #: content block index -> tool call index, for blocks that are tool calls
        self._tools: dict[int, int] = {}
        self._blocks = 0
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**self._base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks one event becomes (often none)."""
        kind = event.get("type")
        if kind == "message_start":
            msg = _dict(event.get("message"))
            self._base["id"] = "chatcmpl-" + str(msg.get("id", ""))[:64]
            self._base["model"] = str(msg.get("model") or self._base["model"])
            self._usage = msg.get("usage") or {}
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            self._blocks += 1
            if self._blocks > MAX_STREAM_BLOCKS:
                raise UpstreamFailed("The model provider sent too many content blocks.",
                                     code="upstream_invalid_response")
            block = _dict(event.get("content_block"))
            if block.get("type") == "tool_use":
                index = len(self._tools)
                self._tools[_index(event)] = index
                call = {"index": index, "id": str(block.get("id", "")), "type": "function",
                        "function": {"name": str(block.get("name", "")), "arguments": ""}}
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": str(block["text"])})]
            return []
        if kind == "content_block_delta":
            delta = _dict(event.get("delta"))
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                return [self._chunk({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta":
                known = self._tools.get(_index(event))
                if known is None:
                    raise UpstreamFailed("The model provider sent arguments for an unknown tool call.",
                                         code="upstream_invalid_response")
                part = {"index": known, "function": {"arguments": str(delta.get("partial_json", ""))}}
                return [self._chunk({"tool_calls": [part]})]
            return []  # thinking, signatures and future delta kinds
        if kind == "message_delta":
            usage = _dict(event.get("usage"))
            if isinstance(usage.get("output_tokens"), int):
                self._output_tokens = usage["output_tokens"]
            reason = _dict(event.get("delta")).get("stop_reason")
            if reason is None:
                return []
            return [self._chunk({}, FINISH_REASONS.get(str(reason), "stop"))]
        if kind == "message_stop":
            self.done = True
            if not self._include_usage:
                return []
            return [{**self._base, "choices": [], "usage": _usage(self._usage, self._output_tokens)}]
        if kind == "error":
            err = _dict(event.get("error"))
            if err.get("type") == "overloaded_error":
                raise UpstreamFailed("The model provider is overloaded; retry later.", code="upstream_overloaded")
            raise UpstreamFailed("The model provider failed while streaming.")
        return []  # ping, content_block_stop and event kinds added later


# -- the provider -----------------------------------------------------------------------


class AnthropicProvider:
    """A provider speaking Anthropic's Messages API, over one pooled aiohttp session."""

    def __init__(self, settings: ProviderSettings, api_key: Secret | None, *, max_response_bytes: int) -> None:
        self.name = settings.name
        self.type: str = settings.type
        self._settings = settings
        self._default_max_tokens = settings.default_max_tokens
        self._url = settings.base_url.rstrip("/") + "/messages"
        headers = {"anthropic-version": settings.anthropic_version}
        if api_key is not None:
            headers["x-api-key"] = api_key.reveal()
        self._http = Transport(settings, headers, max_response_bytes=max_response_bytes)

    async def _send(self, req: UpstreamRequest, *, stream: bool) -> aiohttp.ClientResponse:
        body = to_messages_request({**req.body, "stream": stream}, req.upstream_model, self._default_max_tokens)
        return await self._http.post(self._url, body, request_id=req.request_id)

    async def chat(self, req: UpstreamRequest) -> dict[str, Any]:
        """POST /messages and return the answer as an OpenAI chat.completion."""
        data = await self._http.read_json(await self._send(req, stream=False))
        return to_chat_completion(data)

    def chat_stream(self, req: UpstreamRequest) -> ChunkStream:
        """POST /messages with stream=true; OpenAI chunks translated from its events, as they arrive."""
        stream = ChunkStream()
        return stream.attach(self._chunks(req, stream))

    async def _chunks(self, req: UpstreamRequest, stream: ChunkStream) -> AsyncGenerator[dict[str, Any], None]:
        resp = await self._send(req, stream=True)
        await self._http.raise_for_status(resp)
        if "text/event-stream" not in resp.headers.get("content-type", ""):
            resp.release()
            raise UpstreamFailed("The model provider did not answer with a stream.", code="upstream_invalid_response")
        include_usage = bool((req.body.get("stream_options") or {}).get("include_usage"))
        translator = StreamTranslator(req.upstream_model, include_usage)
        lines = SSELines(resp.content)
        # One event may translate to several chunks: those not yet handed out are "ready" too.
        translated: deque[dict[str, Any]] = deque()
        stream.probe = lambda: bool(translated) or lines.ready()
        try:
            while (payload := await lines.next()) is not None:
                try:
                    event = json.loads(payload)
                except ValueError:
                    raise UpstreamFailed("The model provider sent an invalid stream event.",
                                         code="upstream_invalid_response") from None
                if not isinstance(event, dict):
                    raise UpstreamFailed("The model provider sent an invalid stream event.",
                                         code="upstream_invalid_response")
                translated.extend(translator.feed(event))
                while translated:
                    yield translated.popleft()
                if translator.done:
                    return
            # The connection closed without message_stop: the answer may be cut short.
            raise UpstreamFailed("The model provider ended the stream early.", code="upstream_incomplete")
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout() from None
        except (ValueError, aiohttp.http_exceptions.HttpProcessingError):
            # aiohttp's reader refuses a line far beyond its buffer (LineTooLong) before we can measure it.
            raise UpstreamFailed("The model provider sent an oversized event.",
                                 code="upstream_invalid_response") from None
        except aiohttp.ClientError:
            raise UpstreamFailed("The connection to the model provider failed.", code="upstream_unreachable") from None
        finally:
            stream.probe = None
            resp.release()

    async def embeddings(self, req: UpstreamRequest) -> dict[str, Any]:
        """Refuse: the Messages API has no embeddings."""
        raise InvalidRequest(f"Provider {self.name!r} (Anthropic) offers no embeddings; use an embedding model "
                             "from another provider.", code="unsupported_for_provider", param="model")

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()
