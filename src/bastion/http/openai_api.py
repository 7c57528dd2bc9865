"""The OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models.

These are the paths every model call takes, so besides the Starlette routes they are
offered as plain ASGI endpoints (``endpoints``) that the application dispatches to
directly, without the router and middleware layers the rest of the API goes through.
Both forms share the same code and give the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bastion.context import RequestContext
from bastion.errors import InvalidRequest
from bastion.gateway import Gateway, Outcome
from bastion.http.middleware import read_body
from bastion.limits.limiter import WORKFLOW_STATE

_NO_STORE = {"Cache-Control": "no-store"}


def _context(request: Request, endpoint: str) -> RequestContext:
    ctx = RequestContext(endpoint=endpoint, request_id=request.scope["state"]["request_id"])
    ctx.client_ip = request.client.host if request.client else None
    ctx.state["authorization"] = request.headers.get("authorization")
    ctx.state["x_api_key"] = request.headers.get("x-api-key")
    ctx.state["conversation_id"] = request.headers.get("x-bastion-conversation")
    workflow = request.headers.get("x-bastion-workflow-id")
    if workflow is not None:
        ctx.state[WORKFLOW_STATE] = workflow
    return ctx


def _scope_context(scope: Scope, endpoint: str, request_id: str) -> tuple[RequestContext, str | None]:
    """The context of a request straight from its ASGI scope; and its Content-Length."""
    ctx = RequestContext(endpoint=endpoint, request_id=request_id)
    client = scope.get("client")
    ctx.client_ip = client[0] if client else None
    wanted = {b"authorization": None, b"x-api-key": None, b"x-bastion-conversation": None,
              b"x-bastion-workflow-id": None, b"content-length": None}
    for key, value in scope["headers"]:
        key = key.lower()
        if key in wanted and wanted[key] is None:
            wanted[key] = value.decode("latin-1")
    ctx.state["authorization"] = wanted[b"authorization"]
    ctx.state["x_api_key"] = wanted[b"x-api-key"]
    ctx.state["conversation_id"] = wanted[b"x-bastion-conversation"]
    if wanted[b"x-bastion-workflow-id"] is not None:
        ctx.state[WORKFLOW_STATE] = wanted[b"x-bastion-workflow-id"]
    return ctx, wanted[b"content-length"]


def _body_reader(receive: Receive, content_length: str | None, limit: int) -> Any:
    async def read() -> Any:
        raw = await read_body(receive, content_length, limit)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None

    return read


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


#: A plain ASGI endpoint: the scope, receive, send, and the request id already given.
Endpoint = Callable[[Scope, Receive, Send, str], Awaitable[None]]


def endpoints(gateway: Gateway) -> dict[tuple[str, str], Endpoint]:
    """The model-call routes as plain ASGI endpoints, keyed by (method, path)."""
    limit = gateway.settings.server.max_body_bytes

    def body_endpoint(endpoint: str, handle: Callable[[RequestContext, Any], Awaitable[Outcome]]) -> Endpoint:
        async def run(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
            ctx, length = _scope_context(scope, endpoint, request_id)
            outcome = await handle(ctx, _body_reader(receive, length, limit))
            await _response(ctx, outcome)(scope, receive, send)

        return run

    async def models(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        ctx, _ = _scope_context(scope, "models", request_id)
        await _response(ctx, await gateway.models(ctx))(scope, receive, send)

    chat = body_endpoint("chat.completions", gateway.chat)
    embed = body_endpoint("embeddings", gateway.embeddings)
    table: dict[tuple[str, str], Endpoint] = {}
    for prefix in ("/v1", ""):
        table[("POST", prefix + "/chat/completions")] = chat
        table[("POST", prefix + "/embeddings")] = embed
        table[("GET", prefix + "/models")] = models
    return table
