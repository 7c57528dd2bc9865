"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 for tests.

It checks requests the way the real API does (key and version headers,
``max_tokens`` required, turns alternating and opening with a user turn, a
tool result naming a tool use of the turn before) and answers 400 otherwise.
The model name picks the behaviour:

  claude-normal      "You said: <last user text>"; after a tool result, "Tool said: <result>"
  claude-tool        a short text, then a tool_use block for the first offered tool
  claude-maxtokens   a text cut off with stop_reason max_tokens
  slow:SECONDS       wait before answering (before the headers)
  error400|401|429|500|529   the matching error (401 quotes the key it was sent)
  midstream-error    stream: a first text delta, then an ``error`` event (overloaded)
  cutoff             stream: a first text delta, then the connection ends without message_stop
  hugeevent          stream: a first text delta, then a 2 MiB event
Every request is kept in ``received``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-ant-fake-" + "Q" * 24


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status,
                        headers=headers)


def _problem(request: Request, body: Any) -> str | None:
    """What the real API would refuse in this request, or None."""
    if request.headers.get("x-api-key") != API_KEY:
        return "auth"
    if not request.headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if not isinstance(body, dict) or not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if "system" in body and not isinstance(body["system"], str | list):
        return "system: must be a string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        return "messages: first message must use the user role"
    previous_tools: set[str] = set()
    for i, m in enumerate(messages):
        if i and m.get("role") == messages[i - 1].get("role"):
            return f"messages.{i}: roles must alternate between user and assistant"
        if m.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: must be user or assistant"
        content = m.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        uses: set[str] = set()
        for b in blocks:
            if b.get("type") == "tool_result" and b.get("tool_use_id") not in previous_tools:
                return f"messages.{i}: tool_result without a matching tool_use"
            if b.get("type") == "tool_use":
                if not isinstance(b.get("input"), dict):
                    return f"messages.{i}: tool_use.input must be an object"
                uses.add(str(b.get("id")))
        previous_tools = uses
    for t in body.get("tools") or []:
        if "input_schema" not in t or "name" not in t:
            return "tools: each tool needs name and input_schema"
    return None


def _last_user(body: dict[str, Any]) -> tuple[str, str | None]:
    """The last user turn's text, and the text of a tool result in it (if any)."""
    for m in reversed(body.get("messages", [])):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content, None
        texts, result = [], None
        for b in content:
            if b.get("type") == "text":
                texts.append(b.get("text", ""))
            elif b.get("type") == "tool_result":
                c = b.get("content")
                result = c if isinstance(c, str) else " ".join(x.get("text", "") for x in c or [])
        return " ".join(texts), result
    return "", None


@dataclass
class FakeAnthropic:
    """The server's state; start() runs it in a thread and returns its base URL."""

    received: list[Received] = field(default_factory=list)
    base_url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def app(self) -> Starlette:
        async def messages(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "invalid_request_error", "body is not JSON")
            self.received.append(Received(dict(request.headers), body))
            problem = _problem(request, body)
            if problem == "auth":
                key = request.headers.get("x-api-key", "")
                return _error(401, "authentication_error", f"invalid x-api-key {key}")
            if problem:
                return _error(400, "invalid_request_error", problem)
            model = str(body.get("model"))
            if model.startswith("slow:"):
                await asyncio.sleep(float(model.split(":", 1)[1]))
            if model == "error400":
                return _error(400, "invalid_request_error", "temperature: bad value; key sk-ant-" + "x" * 30)
            if model == "error401":
                return _error(401, "authentication_error", f"invalid x-api-key {request.headers.get('x-api-key')}")
            if model == "error429":
                return _error(429, "rate_limit_error", "slow down", headers={"retry-after": "9"})
            if model == "error500":
                return _error(500, "api_error", "shard db-7.internal:5432 down")
            if model == "error529":
                return _error(529, "overloaded_error", "Overloaded")
            blocks, stop = self._answer(body, model)
            if body.get("stream"):
                return StreamingResponse(self._stream(body, model, blocks, stop), media_type="text/event-stream")
            return JSONResponse({
                "id": "msg_fake01", "type": "message", "role": "assistant", "model": model,
                "content": blocks, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 7, "cache_read_input_tokens": 2},
            })

        return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])

    def _answer(self, body: dict[str, Any], model: str) -> tuple[list[dict[str, Any]], str]:
        text, result = _last_user(body)
        if result is not None:
            return [{"type": "text", "text": f"Tool said: {result}"}], "end_turn"
        if model == "claude-tool":
            tools = body.get("tools") or [{"name": "lookup"}]
            use = {"type": "tool_use", "id": "toolu_fake1", "name": tools[0]["name"], "input": {"query": text}}
            return [{"type": "text", "text": "Let me look."}, use], "tool_use"
        if model == "claude-maxtokens":
            return [{"type": "text", "text": "This is cut"}], "max_tokens"
        return [{"type": "text", "text": f"You said: {text}"}], "end_turn"

    async def _stream(
        self, body: dict[str, Any], model: str, blocks: list[dict[str, Any]], stop: str
    ) -> AsyncIterator[bytes]:
        yield _event("message_start", {"type": "message_start", "message": {
            "id": "msg_fake02", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "usage": {"input_tokens": 13, "output_tokens": 1}}})
        yield _event("ping", {"type": "ping"})
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                yield _event("content_block_start", {"type": "content_block_start", "index": i,
                                                     "content_block": {"type": "text", "text": ""}})
                words = block["text"].split(" ")
                for j, w in enumerate(words):
                    piece = w + (" " if j < len(words) - 1 else "")
                    yield _event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                         "delta": {"type": "text_delta", "text": piece}})
                    if model == "midstream-error":
                        yield _event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "Overloaded"}})
                        return
                    if model == "cutoff":
                        return
                    if model == "hugeevent":
                        yield _event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                             "delta": {"type": "text_delta", "text": "x" * 2**21}})
                        return
            else:
                start = {**block, "input": {}}
                yield _event("content_block_start", {"type": "content_block_start", "index": i,
                                                     "content_block": start})
                raw = json.dumps(block["input"])
                for k in range(0, len(raw), 7):
                    yield _event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                        "type": "input_json_delta", "partial_json": raw[k : k + 7]}})
            yield _event("content_block_stop", {"type": "content_block_stop", "index": i})
        yield _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop,
                                                                          "stop_sequence": None},
                                       "usage": {"output_tokens": 9}})
        yield _event("message_stop", {"type": "message_stop"})

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started and time.time() < deadline:
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
