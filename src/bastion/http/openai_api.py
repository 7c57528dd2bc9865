"""The OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bastion.context import RequestContext
from bastion.errors import InvalidRequest
from bastion.gateway import Gateway, Outcome
from bastion.http.middleware import read_body

_NO_STORE = {"Cache-Control": "no-store"}


def _context(request: Request, endpoint: str) -> RequestContext:
    ctx = RequestContext(endpoint=endpoint, request_id=request.scope["state"]["request_id"])
    ctx.client_ip = request.client.host if request.client else None
    ctx.state["authorization"] = request.headers.get("authorization")
    ctx.state["x_api_key"] = request.headers.get("x-api-key")
    ctx.state["conversation_id"] = request.headers.get("x-bastion-conversation")
    return ctx


def _json_reader(request: Request, limit: int) -> Any:
    async def read() -> Any:
        raw = await read_body(request.receive, request.headers.get("content-length"), limit)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None

    return read


def _response(ctx: RequestContext, outcome: Outcome) -> Response:
    headers = {"X-Request-Id": ctx.request_id, "X-Bastion-Overhead-Ms": f"{ctx.overhead_ms():.3f}", **_NO_STORE}
    if outcome.headers:
        headers.update(outcome.headers)
    if outcome.stream is not None:
        headers["X-Accel-Buffering"] = "no"
        return StreamingResponse(outcome.stream, status_code=outcome.status, media_type="text/event-stream",
                                 headers=headers)
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)


def routes(gateway: Gateway) -> list[Route]:
    """The OpenAI-compatible routes bound to ``gateway``."""
    limit = gateway.settings.server.max_body_bytes

    async def chat_completions(request: Request) -> Response:
        ctx = _context(request, "chat.completions")
        return _response(ctx, await gateway.chat(ctx, _json_reader(request, limit)))

    async def embeddings(request: Request) -> Response:
        ctx = _context(request, "embeddings")
        return _response(ctx, await gateway.embeddings(ctx, _json_reader(request, limit)))

    async def models(request: Request) -> Response:
        ctx = _context(request, "models")
        return _response(ctx, await gateway.models(ctx))

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        # Clients configured with a base URL lacking /v1 still work.
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
        Route("/models", models, methods=["GET"]),
    ]
