"""The application's direct dispatch of model calls: same limits, ids and errors as the router."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bastion.app import BastionApp


async def _boom(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
    raise RuntimeError("secret internal detail /var/lib/db")


async def _late_boom(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("after the start")


async def _ok(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
    await JSONResponse({"request_id": request_id, "app": scope["app"] is not None})(scope, receive, send)


async def _routed(request: Any) -> JSONResponse:
    return JSONResponse({"routed": True})


def _app() -> BastionApp:
    return BastionApp(
        endpoints={("POST", "/direct"): _ok, ("POST", "/boom"): _boom, ("POST", "/late"): _late_boom},
        max_header_bytes=2048,
        routes=[Route("/routed", _routed, methods=["GET"]), Route("/direct", _routed, methods=["GET"])],
    )


def _call(method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def test_direct_endpoint_gets_a_request_id() -> None:
    r = _call("POST", "/direct")
    assert r.status_code == 200
    assert r.json() == {"request_id": r.headers["x-request-id"], "app": True}


def test_other_methods_and_paths_go_through_the_router() -> None:
    assert _call("GET", "/direct").json() == {"routed": True}
    assert _call("GET", "/routed").json() == {"routed": True}


def test_oversized_headers_are_refused_before_the_endpoint() -> None:
    r = _call("POST", "/direct", headers={"x-big": "a" * 4096})
    assert r.status_code == 431
    assert r.json()["error"]["code"] == "request_header_too_large"
    assert r.headers["x-request-id"]


def test_an_unexpected_error_is_an_openai_shaped_500_without_details() -> None:
    r = _call("POST", "/boom")
    assert r.status_code == 500
    body = r.json()
    assert set(body["error"]) >= {"message", "type", "code"}
    assert "secret" not in r.text and "/var/lib" not in r.text
    assert r.headers["x-request-id"]


def test_an_error_after_the_answer_started_ends_the_connection() -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.post("/late")

    try:
        asyncio.run(go())
    except RuntimeError as exc:
        assert "after the start" in str(exc)
    else:
        raise AssertionError("the error must reach the server, which drops the connection")
