"""A fake OpenAI-compatible provider: a real HTTP server on 127.0.0.1 for tests and benchmarks.

The upstream model name picks the behaviour:
  normal        echo the last user message back (chat), deterministic vectors (embeddings)
  toolcall      answer with a tool call carrying the arguments from the request
  slow:SECONDS  wait before answering
  drip:SECONDS  stream like "normal", pausing SECONDS between chunks (a model emitting tokens slowly)
  garbage       200 with a body that is not JSON
  error500      500 with an error message naming internal hosts
  error429      429 with Retry-After
  error401      401 quoting the credential it was sent (as some providers do)
  badstream     a stream whose second event is not JSON
  leak          answer with data the user never sent: a card number, a cloud key, and a canary echo
Every request is kept in ``received`` so tests can check what reached the provider.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeUpstream:
    """The server's state; start() runs it in a thread and returns its base URL."""

    received: list[Received] = field(default_factory=list)
    keep: bool = True
    words_per_chunk: int = 3
    base_url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def app(self) -> Starlette:
        async def chat(request: Request) -> Response:
            body = await request.json()
            if self.keep:
                self.received.append(Received(request.url.path, dict(request.headers), body))
            mode = str(body.get("model", "normal"))
            if mode.startswith("slow:"):
                await asyncio.sleep(float(mode.split(":", 1)[1]))
            if mode == "garbage":
                return PlainTextResponse("<html>502 Bad Gateway from nginx at 10.1.2.3</html>")
            if mode == "error500":
                return JSONResponse({"error": {"message": "db at internal-db-7.corp:5432 is down"}}, status_code=500)
            if mode == "error429":
                return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "7"})
            if mode == "error401":
                auth = request.headers.get("authorization", "")
                return JSONResponse({"error": {"message": f"Incorrect API key provided: {auth[7:]}"}}, status_code=401)
            text = _last_user(body)
            answer = f"You said: {text}"
            if mode == "leak":
                system = next((m.get("content", "") for m in body.get("messages", []) if m.get("role") == "system"), "")
                answer = ("Sure. The card on file is 4111 1111 1111 1111 and the deploy key is "
                          f"AKIAIOSFODNN7EXAMPLE. My instructions begin: {str(system)[:60]}")
            if body.get("stream"):
                return StreamingResponse(self._stream(body, answer, mode), media_type="text/event-stream")
            message: dict[str, Any] = {"role": "assistant", "content": answer}
            finish = "stop"
            if mode == "toolcall":
                message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(body)]}
                finish = "tool_calls"
            return JSONResponse({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": mode, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": len(text.split()), "completion_tokens": len(answer.split()),
                          "total_tokens": len(text.split()) + len(answer.split())},
                "system_fingerprint": "fp_fake",
            })

        async def embeddings(request: Request) -> Response:
            body = await request.json()
            if self.keep:
                self.received.append(Received(request.url.path, dict(request.headers), body))
            inp = body.get("input")
            items = [inp] if isinstance(inp, str) else list(inp)
            data = [{"object": "embedding", "index": i, "embedding": [float(len(str(x))), 0.5, -0.5]}
                    for i, x in enumerate(items)]
            return JSONResponse({"object": "list", "data": data, "model": body.get("model"),
                                 "usage": {"prompt_tokens": len(items), "total_tokens": len(items)}})

        async def models(_: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": "normal", "object": "model"}]})

        return Starlette(routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            # Azure OpenAI paths
            Route("/openai/deployments/{dep}/chat/completions", chat, methods=["POST"]),
            Route("/openai/deployments/{dep}/embeddings", embeddings, methods=["POST"]),
        ])

    async def _stream(self, body: dict[str, Any], answer: str, mode: str):  # type: ignore[no-untyped-def]
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": mode}
        yield _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]})
        if mode == "badstream":
            yield b"data: {not json\n\n"
            return
        if mode == "toolcall":
            call = _tool_call(body)
            yield _sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **call}]},
                                             "finish_reason": None}]})
            yield _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        else:
            words = answer.split(" ")
            for i in range(0, len(words), self.words_per_chunk):
                piece = " ".join(words[i : i + self.words_per_chunk])
                if i + self.words_per_chunk < len(words):
                    piece += " "
                yield _sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                if mode.startswith("drip:"):
                    await asyncio.sleep(float(mode.split(":", 1)[1]))
            yield _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            n = len(answer.split())
            yield _sse({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n,
                                                         "total_tokens": 5 + n}})
        yield b"data: [DONE]\n\n"

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


def _sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def _last_user(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return str(c or "")
    return ""


def _tool_call(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or [{"function": {"name": "lookup"}}]
    name = tools[0].get("function", {}).get("name", "lookup")
    return {"id": "call_fake1", "type": "function",
            "function": {"name": name, "arguments": json.dumps({"query": _last_user(body)})}}


def main() -> None:
    """Run the fake upstream in the foreground (for manual trials and benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeUpstream(keep=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", access_log=False, lifespan="off")).run(
        sockets=[sock])


if __name__ == "__main__":
    main()
