"""Transport concerns only: request ids, header and body size limits."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.context import new_request_id
from bastion.errors import BastionError, InvalidRequest, RequestTooLarge


async def send_error(send: Send, exc: BastionError, request_id: str, status: int | None = None) -> None:
    """Send an OpenAI-shaped error response straight from ASGI."""
    body = json.dumps(exc.to_body(request_id)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status or exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    """Gives each request an id and refuses oversized headers before any work is done."""

    def __init__(self, app: ASGIApp, *, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = await admit(scope, send, self.max_header_bytes)
        if request_id is None:
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


async def admit(scope: Scope, send: Send, max_header_bytes: int) -> str | None:
    """Give an HTTP request its id; refuse it (431, and None) when its headers are too large."""
    request_id = new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    size = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
    if size > max_header_bytes:
        err = InvalidRequest("The request headers are larger than this gateway accepts.",
                             code="request_header_too_large")
        await send_error(send, err, request_id, status=431)
        return None
    return request_id


async def read_body(receive: Receive, content_length: str | None, limit: int) -> bytes:
    """Read the whole request body, refusing more than ``limit`` bytes without buffering them."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise InvalidRequest("The Content-Length header is not a number.") from None
        if declared > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client went away before sending the whole request.", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
