"""The request path for the OpenAI-compatible API.

identify -> (limit, inspect, decide, transform: configured stages) -> model access
-> route -> upstream -> output filters -> record. ``record`` always runs; a response
is released only after its audit event has committed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from bastion.audit.events import build_request_event, make_event
from bastion.context import Principal, RequestContext, Usage
from bastion.errors import AuditUnavailable, BastionError, InvalidRequest
from bastion.limits.stage import ALERTS_STATE_KEY, HEADERS_STATE_KEY, LimitStage
from bastion.metrics import Metrics
from bastion.pipeline.base import Chain, Stage
from bastion.pipeline.output import OutputChain, OutputStage
from bastion.providers.base import UpstreamRequest
from bastion.providers.registry import ProviderRegistry
from bastion.settings import ModelSettings, Settings

log = logging.getLogger("bastion.gateway")

#: Appends one audit event and returns once it has committed; raises AuditUnavailable otherwise.
AuditAppend = Callable[[dict[str, Any]], Awaitable[int]]
#: Reads and parses the request body (called only after the caller is identified).
BodyParser = Callable[[], Awaitable[Any]]


async def _checked(read_json: BodyParser, validate: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return validate(await read_json())


@dataclass
class Outcome:
    """What the HTTP layer sends: a JSON body, or a stream of SSE chunks."""

    status: int
    body: dict[str, Any] | None = None
    stream: AsyncIterator[bytes] | None = None
    headers: dict[str, str] | None = None
    #: The provider's stream behind ``stream``, closed if the stream is never started.
    upstream: AsyncIterator[Any] | None = None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The prompt as one text, for the audit record."""
    return "\n".join(f"{m.get('role')}: {_text_of(m.get('content'))}" for m in messages)


def validate_chat_body(body: Any) -> dict[str, Any]:
    """Check the shape of a chat completion request; everything else passes through intact."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array.", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidRequest(f"messages[{i}] must be an object with a string 'role'.", param=f"messages[{i}]")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(f"messages[{i}].content must be a string or an array.", param=f"messages[{i}]")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    return body


def validate_embeddings_body(body: Any) -> dict[str, Any]:
    """Check the shape of an embeddings request."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    inp = body.get("input")
    ok = isinstance(inp, str) or (isinstance(inp, list) and inp and all(isinstance(x, str | list) for x in inp))
    if not ok:
        raise InvalidRequest("'input' must be a string or a non-empty array.", param="input")
    return body


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


class Gateway:
    """Runs one request through the pipeline and produces its outcome."""

    def __init__(
        self,
        settings: Settings,
        registry: ProviderRegistry,
        *,
        identify: Stage,
        chat_stages: Sequence[Stage],
        embedding_stages: Sequence[Stage],
        output_stages: Sequence[OutputStage],
        audit: AuditAppend,
        metrics: Metrics,
        limits: LimitStage | None = None,
        visible_models: Callable[[Principal], list[ModelSettings]] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._identify = identify
        self._chat_chain = Chain(chat_stages)
        self._embedding_chain = Chain(embedding_stages)
        self._output_stages = tuple(output_stages)
        self._append = audit
        self._limits = limits
        self._visible_models = visible_models or (
            lambda p: [m for m in registry.models() if p.may_use_model(m.name)]
        )
        self.metrics = metrics

    # -- the edges ---------------------------------------------------------------

    async def _record(self, ctx: RequestContext, kind: str) -> None:
        """Commit the request's event, then any alerts the request raised."""
        event = build_request_event(ctx, self.settings.audit.content,
                                    max_content_chars=self.settings.audit.max_content_chars)
        event["kind"] = kind
        await self._append(event)
        alerts = ctx.state.pop(ALERTS_STATE_KEY, None) or []
        for alert in alerts:
            await self._append(make_event("alert", request_id=ctx.request_id, **alert.to_audit()))

    async def _settle(self, ctx: RequestContext, ok: bool) -> None:
        """Correct the caller's reserved budget with what was really used (or refund it)."""
        if self._limits is None:
            return
        try:
            await self._limits.settle(ctx, ctx.usage if ok else None)
        except BastionError as exc:
            # The answer is already produced; a settle failure is counted, not turned into an error.
            self.metrics.errors.labels(exc.code).inc()

    async def _recorded(self, ctx: RequestContext, outcome: Outcome) -> Outcome:
        """Commit the audit event; only then may the outcome be released."""
        if outcome.stream is None:
            await self._settle(ctx, outcome.status == 200)
        limit_headers = ctx.state.get(HEADERS_STATE_KEY)
        if limit_headers:
            outcome.headers = {**limit_headers, **(outcome.headers or {})}
        started = time.perf_counter_ns()
        try:
            await self._record(ctx, "request")
        except AuditUnavailable as exc:
            self.metrics.errors.labels(exc.code).inc()
            if outcome.stream is not None:
                await _close_stream(outcome.stream)
            if outcome.upstream is not None:
                await _close_stream(outcome.upstream)
            ctx.status, ctx.error_code = exc.status_code, exc.code
            self._observe(ctx)
            return Outcome(exc.status_code, exc.to_body(ctx.request_id))
        finally:
            ctx.audit_ns += time.perf_counter_ns() - started
            self.metrics.audit_commit.observe((time.perf_counter_ns() - started) / 1e9)
        if outcome.stream is None:
            self._observe(ctx)
        return outcome

    def _failure(self, ctx: RequestContext, exc: BastionError) -> Outcome:
        ctx.status, ctx.error_code = exc.status_code, exc.code
        self.metrics.errors.labels(exc.code).inc()
        return Outcome(exc.status_code, exc.to_body(ctx.request_id), headers=exc.headers or None)

    def _unexpected(self, ctx: RequestContext, exc: BaseException) -> Outcome:
        log.error("request %s failed: %s", ctx.request_id, type(exc).__name__, exc_info=exc)
        err = BastionError()
        ctx.decide("gateway", "error", "internal error")
        return self._failure(ctx, err)

    async def _identify_then(self, ctx: RequestContext, parse: BodyParser) -> None:
        await self._identify(ctx)
        ctx.body = await parse()
        ctx.model = ctx.body.get("model")

    # -- chat completions ----------------------------------------------------------

    async def chat(self, ctx: RequestContext, read_json: BodyParser) -> Outcome:
        """Handle POST /v1/chat/completions."""
        try:
            await self._identify_then(ctx, lambda: _checked(read_json, validate_chat_body))
            ctx.stream = bool(ctx.body.get("stream"))
            await self._chat_chain(ctx)
            ctx.prompt_text = prompt_text(ctx.body["messages"])
            outcome = await (self._chat_stream(ctx) if ctx.stream else self._chat_once(ctx))
        except BastionError as exc:
            outcome = self._failure(ctx, exc)
        except Exception as exc:  # noqa: BLE001 - the edge: anything else is a 500 without details
            outcome = self._unexpected(ctx, exc)
        return await self._recorded(ctx, outcome)

    def _upstream(self, ctx: RequestContext) -> UpstreamRequest:
        return UpstreamRequest(body=ctx.body, upstream_model=ctx.upstream_model or "", request_id=ctx.request_id)

    async def _chat_once(self, ctx: RequestContext) -> Outcome:
        provider = self.registry.providers[ctx.provider or ""]
        started = time.perf_counter_ns()
        try:
            answer = await provider.chat(self._upstream(ctx))
        finally:
            ctx.upstream_ns += time.perf_counter_ns() - started
            self.metrics.upstream.labels(provider.name).observe((time.perf_counter_ns() - started) / 1e9)
        texts = []
        for choice in answer.get("choices", []):
            msg = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                if self._output_stages:
                    # Each choice is an answer of its own, with its own filter state.
                    msg["content"] = OutputChain(self._output_stages, ctx).whole(msg["content"])
                texts.append(msg["content"])
        ctx.response_text = "\n".join(texts)
        _take_usage(ctx, answer.get("usage"))
        ctx.status = 200
        return Outcome(200, answer)

    async def _chat_stream(self, ctx: RequestContext) -> Outcome:
        provider = self.registry.providers[ctx.provider or ""]
        body = dict(ctx.body)
        client_wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        req = UpstreamRequest(body=body, upstream_model=ctx.upstream_model or "", request_id=ctx.request_id)
        chunks = provider.chat_stream(req)
        started = time.perf_counter_ns()
        try:
            first = await chunks.__anext__()  # upstream errors surface here, before any byte is sent
        except StopAsyncIteration:
            first = None
        finally:
            ctx.upstream_ns += time.perf_counter_ns() - started
        ctx.status = 200
        relay = self._relay(ctx, first, chunks, client_wants_usage)
        return Outcome(200, stream=relay, upstream=chunks)

    async def _relay(
        self,
        ctx: RequestContext,
        first: dict[str, Any] | None,
        chunks: AsyncIterator[dict[str, Any]],
        client_wants_usage: bool,
    ) -> AsyncIterator[bytes]:
        """Relay the provider's chunks, filtered, within the stream limits; record the end.

        Chunks that arrived from the provider together are sent on together, in one write:
        nothing waits for more to arrive, so the first token is never held back.
        """
        limits = self.settings.server
        deadline = time.monotonic() + limits.max_stream_seconds
        sent = 0
        output = OutputChain(self._output_stages, ctx)
        pieces: list[str] = []
        template: dict[str, Any] | None = None
        ended_by: BastionError | None = None
        meter = self._limits.meter(ctx) if self._limits is not None else None
        usage_seen = False
        flushed = False
        ready = getattr(chunks, "ready", None)
        out: list[bytes] = []
        carry: dict[str, Any] | None = None
        ended = False
        try:
            pending = first
            while pending is not None:
                chunk = pending
                text0 = _content_of(chunk) if ready is not None and ready() else None
                if text0 is not None and ready is not None:
                    # Text deltas that arrived together become one delta: one scan, one event.
                    texts = [text0]
                    started = time.perf_counter_ns()
                    try:
                        while ready():
                            try:
                                nxt = await chunks.__anext__()
                            except StopAsyncIteration:
                                ended = True
                                break
                            more = _content_of(nxt)
                            if more is None or not _same_frame(chunk, nxt):
                                carry = nxt
                                break
                            texts.append(more)
                    finally:
                        ctx.upstream_ns += time.perf_counter_ns() - started
                    if len(texts) > 1:
                        chunk["choices"][0]["delta"]["content"] = "".join(texts)
                template = template or chunk
                if chunk.get("usage"):
                    _take_usage(ctx, chunk["usage"])
                    usage_seen = True
                choices = chunk.get("choices") or []
                produced = 0
                for choice in choices:
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                        produced += len(delta["content"])
                        text = output.feed(delta["content"]) if output else delta["content"]
                        delta["content"] = text
                        pieces.append(text)
                if meter is not None and produced and not await meter.add(chars=produced):
                    # The caller's budget is spent: end the answer cleanly, as a length stop.
                    ctx.decide("limit", "truncate", "the answer reached the caller's budget")
                    pieces.pop() if pieces else None
                    out.append(sse(_finish_chunk(template, "length")))
                    break
                ending = not choices or any(isinstance(c, dict) and c.get("finish_reason") for c in choices)
                if ending and output and not flushed:
                    # Release what the filters held back before the answer's last events.
                    flushed = True
                    tail = output.finish()
                    if tail:
                        pieces.append(tail)
                        out.append(sse(_content_chunk(template, tail)))
                if choices or client_wants_usage:
                    data = sse(chunk)
                    sent += len(data)
                    if sent > limits.max_stream_bytes:
                        raise BastionError("The answer exceeded the gateway's stream size limit.",
                                           code="stream_too_large")
                    out.append(data)
                if time.monotonic() > deadline:
                    raise BastionError("The answer exceeded the gateway's stream time limit.", code="stream_timeout")
                if not (ready is not None and ready()):
                    # Nothing more has arrived: release what the filters only held to batch their
                    # scans, and send everything before waiting for the provider.
                    if output and not flushed:
                        drained = output.drain()
                        if drained:
                            pieces.append(drained)
                            out.append(sse(_content_chunk(template, drained)))
                    if out:
                        yield b"".join(out) if len(out) > 1 else out[0]
                        out.clear()
                if carry is not None or ended:
                    pending, carry = carry, None
                    continue
                started = time.perf_counter_ns()
                try:
                    pending = await chunks.__anext__()
                except StopAsyncIteration:
                    pending = None
                finally:
                    ctx.upstream_ns += time.perf_counter_ns() - started
            if output and not flushed:
                tail = output.finish()
                if tail:
                    pieces.append(tail)
                    out.append(sse(_content_chunk(template, tail)))
            out.append(sse("[DONE]"))
            yield b"".join(out)
            out.clear()
        except BastionError as exc:
            ended_by = exc
            yield b"".join([*out, sse(exc.to_body(ctx.request_id)), sse("[DONE]")])
            out.clear()
        except Exception as exc:  # noqa: BLE001 - mid-stream: end cleanly, record, never echo internals
            log.error("stream %s failed: %s", ctx.request_id, type(exc).__name__, exc_info=exc)
            ended_by = BastionError()
            yield b"".join([*out, sse(ended_by.to_body(ctx.request_id)), sse("[DONE]")])
            out.clear()
        finally:
            ctx.response_text = "".join(pieces)
            if ended_by is not None:
                ctx.error_code = ended_by.code
                self.metrics.errors.labels(ended_by.code).inc()
            await _close_stream(chunks)
            if meter is not None and not usage_seen:
                ctx.usage = meter.usage()
            await self._settle_shielded(ctx)
            with anyio.CancelScope(shield=True):
                try:
                    await self._record(ctx, "stream_end")
                except AuditUnavailable:
                    # The opening event is committed; the end could not be. Counted so operators see it.
                    self.metrics.errors.labels("audit_unavailable").inc()
                    log.error("stream %s: closing audit event could not be committed", ctx.request_id)
            self._observe(ctx)

    async def _settle_shielded(self, ctx: RequestContext) -> None:
        with anyio.CancelScope(shield=True):
            await self._settle(ctx, True)

    # -- embeddings --------------------------------------------------------------

    async def embeddings(self, ctx: RequestContext, read_json: BodyParser) -> Outcome:
        """Handle POST /v1/embeddings."""
        try:
            await self._identify_then(ctx, lambda: _checked(read_json, validate_embeddings_body))
            await self._embedding_chain(ctx)
            inp = ctx.body["input"]
            ctx.prompt_text = inp if isinstance(inp, str) else "\n".join(x for x in inp if isinstance(x, str))
            provider = self.registry.providers[ctx.provider or ""]
            started = time.perf_counter_ns()
            try:
                answer = await provider.embeddings(self._upstream(ctx))
            finally:
                ctx.upstream_ns += time.perf_counter_ns() - started
            _take_usage(ctx, answer.get("usage"))
            ctx.status = 200
            outcome = Outcome(200, answer)
        except BastionError as exc:
            outcome = self._failure(ctx, exc)
        except Exception as exc:  # noqa: BLE001 - the edge
            outcome = self._unexpected(ctx, exc)
        return await self._recorded(ctx, outcome)

    # -- models --------------------------------------------------------------------

    async def models(self, ctx: RequestContext) -> Outcome:
        """Handle GET /v1/models: only the models the caller may use."""
        try:
            await self._identify(ctx)
            principal = ctx.principal
            assert principal is not None  # noqa: S101 - identify either sets it or raises
            data = [
                {"id": m.name, "object": "model", "created": 0, "owned_by": m.provider}
                for m in self._visible_models(principal)
            ]
            ctx.status = 200
            outcome = Outcome(200, {"object": "list", "data": data})
        except BastionError as exc:
            outcome = self._failure(ctx, exc)
        except Exception as exc:  # noqa: BLE001 - the edge
            outcome = self._unexpected(ctx, exc)
        return await self._recorded(ctx, outcome)

    def _observe(self, ctx: RequestContext) -> None:
        self.metrics.requests.labels(ctx.endpoint, str(ctx.status)).inc()
        self.metrics.latency.labels(ctx.endpoint).observe(ctx.elapsed_ms() / 1000)
        self.metrics.overhead.labels(ctx.endpoint).observe(ctx.overhead_ms() / 1000)
        if ctx.model and ctx.usage.total_tokens:
            self.metrics.tokens.labels(ctx.model, "prompt").inc(ctx.usage.prompt_tokens)
            self.metrics.tokens.labels(ctx.model, "completion").inc(ctx.usage.completion_tokens)


def _take_usage(ctx: RequestContext, usage: Any) -> None:
    if not isinstance(usage, dict):
        return

    def num(key: str) -> int:
        v = usage.get(key)
        return v if isinstance(v, int) and v >= 0 else 0

    ctx.usage = Usage(num("prompt_tokens"), num("completion_tokens"), num("total_tokens"))


#: Keys of a chunk's only choice when it carries nothing but text.
_TEXT_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})


def _content_of(chunk: dict[str, Any]) -> str | None:
    """The text of a chunk that carries only text (one choice, no usage, no end): else None."""
    if chunk.get("usage"):
        return None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return None
    choice = choices[0]
    if not isinstance(choice, dict) or choice.get("finish_reason") is not None or choice.get("logprobs") is not None:
        return None
    if not _TEXT_CHOICE_KEYS.issuperset(choice):
        return None
    delta = choice.get("delta")
    if not isinstance(delta, dict) or len(delta) != 1:
        return None
    text = delta.get("content")
    return text if isinstance(text, str) else None


def _same_frame(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two text chunks differ only in their text (same id, model, choice index...)."""
    if a.keys() != b.keys() or a["choices"][0].get("index") != b["choices"][0].get("index"):
        return False
    return all(a[k] == b[k] for k in a if k != "choices")


def _finish_chunk(template: dict[str, Any] | None, reason: str) -> dict[str, Any]:
    base = {k: v for k, v in (template or {}).items() if k in ("id", "object", "created", "model")}
    return {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


def _content_chunk(template: dict[str, Any] | None, text: str) -> dict[str, Any]:
    base = {k: v for k, v in (template or {}).items() if k in ("id", "object", "created", "model")}
    return {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


async def _close_stream(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - closing a broken upstream must not mask the real outcome
                log.debug("closing an upstream stream failed", exc_info=True)
