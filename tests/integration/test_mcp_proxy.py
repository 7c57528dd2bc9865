"""The MCP door end to end: the official SDK as client, Bastion under uvicorn on 127.0.0.1, and a real
SDK-built MCP server behind it that verifies every minted token against the exact body it came with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from examples.hr_backend.app import create_app as create_hr_app
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select

from bastion.app import build_runtime, create_app
from bastion.backend import BastionTokenVerifier, JWKSCache
from bastion.identity import Authenticator
from bastion.identity.oidc import OIDCVerifier
from bastion.settings import Settings
from bastion.storage.tables import audit_events
from bastion.tools.service import ToolService
from tests.support.idp import FakeIdP
from tests.support.mcp_server import LEAKED_EMAIL, LEAKED_SECRET, build_app

TOOLS_AUDIENCE = "https://tools.example.internal"
HR_AUDIENCE = "https://hr.example.internal"
MANAGER = "sam.okafor"  # manages lena.fischer (e-103) and tomas.ruiz (e-104)
APPROVER = "chris.byrne"
NOBODY = "visitor"

pytestmark = pytest.mark.anyio


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serve(app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """Run ``app`` (lifespan on) under uvicorn in a thread on a loopback socket; yield its URL."""
    sock = sock or _bound_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)


def _mcp_tool(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "mcp", "owner": "it", "audience": TOOLS_AUDIENCE, "mcp_url": url,
            "scopes": ["tools.use"], **extra}


def tool_registry(mcp_url: str, hr_url: str) -> list[dict[str, Any]]:
    """The tools every test gateway registers."""
    return [
        _mcp_tool("whoami", mcp_url, data_classes=["pii"],
                  arguments_schema={"type": "object", "properties": {"claim_to_be": {"type": "string"}},
                                    "additionalProperties": False}),
        _mcp_tool("echo", mcp_url, arguments_schema={
            "type": "object", "properties": {"message": {"type": "string", "maxLength": 200}},
            "required": ["message"], "additionalProperties": False}),
        _mcp_tool("read_document", mcp_url, arguments_schema={
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
        _mcp_tool("leak", mcp_url, arguments_schema={
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
        _mcp_tool("delete_record", mcp_url, action="delete", enabled=True, data_classes=["pii"], arguments_schema={
            "type": "object", "properties": {"record_id": {"type": "string"}}, "required": ["record_id"]}),
        _mcp_tool("wipe_everything", mcp_url, mcp_tool="delete_record", risk="not_recommended", action="delete",
                  enabled=True),
        _mcp_tool("rename_record", mcp_url, mcp_tool="echo", action="write"),  # never enabled
        {"name": "hr_team_reviews", "kind": "http", "owner": "people-team", "audience": HR_AUDIENCE,
         "base_url": hr_url, "operation": {"method": "GET", "path": "/reviews/team"},
         "scopes": ["hr.reviews.read"], "data_classes": ["hr", "pii"],
         "arguments_schema": {"type": "object", "properties": {"include_indirect": {"type": "boolean"}}}},
        {"name": "hr_search", "kind": "http", "owner": "people-team", "audience": HR_AUDIENCE,
         "base_url": hr_url, "operation": {"method": "POST", "path": "/reviews/search"},
         "scopes": ["hr.reviews.read"], "data_classes": ["hr", "pii"],
         "arguments_schema": {"type": "object", "properties": {"query": {"type": "string"},
                                                                 "department": {"type": "string"}}}},
    ]


class ToolGateway:
    """Bastion (in-process, under uvicorn), an MCP server and the HR example, all on loopback."""

    def __init__(self, root: Path, idp: FakeIdP, **proxy: Any) -> None:
        self._stack = contextlib.ExitStack()
        self.idp = idp
        gw_sock = _bound_socket()
        self.url = f"http://127.0.0.1:{gw_sock.getsockname()[1]}"
        jwks = JWKSCache(self.url + "/.well-known/jwks.json")
        mcp_app, self.guard = build_app(BastionTokenVerifier(jwks, audience=TOOLS_AUDIENCE, issuer=self.url))
        #: The (host, port) each HTTP request to the MCP server came from: one port per connection.
        self.mcp_clients: list[tuple[str, int]] = []

        async def recording_mcp_app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.mcp_clients.append(tuple(scope["client"]))
            await mcp_app(scope, receive, send)

        self.mcp_url = self._stack.enter_context(serve(recording_mcp_app)) + "/mcp"
        hr_verifier = BastionTokenVerifier(JWKSCache(self.url + "/.well-known/jwks.json"),
                                           audience=HR_AUDIENCE, issuer=self.url)
        self.hr_url = self._stack.enter_context(serve(create_hr_app(hr_verifier)))
        approvals = proxy.pop("approvals", {})
        self.settings = Settings.model_validate({
            "data_dir": str(root / "data"),
            "providers": [{"name": "builtin", "type": "echo"}],
            "models": [{"name": "echo", "provider": "builtin"}],
            "policy": {"reload_seconds": 0},
            "identity": {"oidc": [idp.issuer_config(audience=["bastion", self.url + "/mcp"])]},
            "tools": {
                "registry": tool_registry(self.mcp_url, self.hr_url),
                "proxy": {"public_url": self.url,
                          "role_scopes": {"staff": ["tools.use", "hr.reviews.read"]}, **proxy},
                "approvals": {"mcp_wait_seconds": 20, "poll_seconds": 0.05, **approvals},
            },
        })
        rt = build_runtime(self.settings)
        self.runtime = rt
        oidc = OIDCVerifier(list(self.settings.identity.oidc), rt.http)
        # Wired as the gateway wires it: its policy store and its scanner are shared.
        self.service = ToolService.build(
            self.settings, db=rt.db, audit=rt.audit.append, authenticator=Authenticator(rt.keys, oidc),
            http=rt.http, policy=rt.policies, scan=rt.protection.scanner.scan if rt.protection else None,
        )
        app = create_app(self.settings, rt)
        app.router.routes.extend(self.service.routes())
        inner = app.router.lifespan_context
        service = self.service

        @contextlib.asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[None]:
            async with inner(a):
                await service.start()
                try:
                    yield
                finally:
                    await service.stop()

        app.router.lifespan_context = lifespan
        self._stack.enter_context(serve(app, gw_sock))
        self.keys = {
            MANAGER: rt.keys.create(MANAGER, groups=["staff"])[0],
            APPROVER: rt.keys.create(APPROVER, groups=["staff"], roles=["approver"])[0],
            "admin": rt.keys.create("sec.admin", groups=["staff"], roles=["security-admin"])[0],
            NOBODY: rt.keys.create(NOBODY)[0],
        }
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        """Stop every server."""
        self.http.close()
        self._stack.close()

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        """Headers that sign in as ``who``."""
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def audit(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every committed audit event (optionally of one kind)."""
        with self.runtime.db.engine.connect() as conn:
            rows = conn.execute(select(audit_events.c.body).order_by(audit_events.c.seq)).all()
        events = [json.loads(r[0]) for r in rows]
        return [e for e in events if kind is None or e.get("kind") == kind]

    def rpc(self, who: str | None, method: str, params: dict[str, Any] | None = None, *,
            token: str | None = None) -> httpx.Response:
        """One raw JSON-RPC POST to /mcp."""
        headers = {"Accept": "application/json, text/event-stream"}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.keys[who]}"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        msg = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        return self.http.post("/mcp", json=msg, headers=headers)


@contextlib.asynccontextmanager
async def mcp_session(gw: ToolGateway, credential: str, **headers: str) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session to Bastion's /mcp."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {credential}", **headers}, timeout=30) as http,
        streamable_http_client(gw.url + "/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolGateway]:
    with FakeIdP() as idp:
        idp.add_key("ES256")
        g = ToolGateway(tmp_path_factory.mktemp("mcp"), idp)
        try:
            yield g
        finally:
            g.close()


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def test_unauthenticated_mcp_request_is_challenged_with_resource_metadata(gw: ToolGateway) -> None:
    resp = gw.rpc(None, "tools/list")
    assert resp.status_code == 401
    meta_url = gw.url + "/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{meta_url}"' in resp.headers["www-authenticate"]
    bad = gw.rpc(None, "tools/list", token="not-a-token")
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        meta = gw.http.get(path).json()
        assert meta["resource"] == gw.url + "/mcp"
        assert meta["authorization_servers"] == [gw.idp.issuer]
        assert {"tools.use", "hr.reviews.read"} <= set(meta["scopes_supported"])


def test_oidc_token_must_be_issued_for_the_mcp_resource(gw: ToolGateway) -> None:
    other = gw.idp.mint(sub=MANAGER, aud="bastion", groups=["staff"])
    refused = gw.rpc(None, "tools/list", token=other)
    assert refused.status_code == 401 and "resource_metadata=" in refused.headers["www-authenticate"]
    mine = gw.idp.mint(sub=MANAGER, aud=gw.url + "/mcp", groups=["staff"], scope="tools.use")
    ok = gw.rpc(None, "tools/list", token=mine)
    assert ok.status_code == 200 and ok.json()["result"]["tools"]


def test_oidc_scopes_come_from_the_token(gw: ToolGateway) -> None:
    aud = gw.url + "/mcp"
    with_scope = gw.idp.mint(sub="dana", aud=aud, scope="tools.use openid")
    ok = gw.rpc(None, "tools/call", {"name": "whoami", "arguments": {}}, token=with_scope)
    assert ok.status_code == 200, ok.text
    who = json.loads(ok.json()["result"]["content"][0]["text"])
    assert who["subject"] == "dana" and who["scopes"] == ["tools.use"]  # never wider than the tool needs
    without = gw.idp.mint(sub="dana", aud=aud, scope="openid")
    refused = gw.rpc(None, "tools/call", {"name": "whoami", "arguments": {}}, token=without)
    assert refused.status_code == 403 and 'scope="tools.use"' in refused.headers["www-authenticate"]


async def test_sdk_client_sees_only_the_tools_it_may_call(gw: ToolGateway) -> None:
    async with mcp_session(gw, gw.keys[MANAGER]) as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
    async with mcp_session(gw, gw.keys["admin"]) as session:
        admin_listed = {t.name: t for t in (await session.list_tools()).tools}
    names, admin_names = set(listed), set(admin_listed)
    # What the registry left out came from the MCP server at start-up; what it declared stays.
    assert listed["read_document"].description == "A document with an injection planted in it."
    assert listed["read_document"].input_schema["required"] == ["name"]
    assert "record_id" in admin_listed["wipe_everything"].input_schema["properties"]
    assert listed["whoami"].input_schema["additionalProperties"] is False
    assert {"whoami", "echo", "delete_record", "hr_team_reviews"} <= names
    assert "wipe_everything" not in names  # not_recommended: security administrators only
    assert "wipe_everything" in admin_names
    assert "rename_record" not in names | admin_names  # a write tool nobody enabled


async def test_backend_sees_the_verified_user_never_the_arguments(gw: ToolGateway) -> None:
    before = len(gw.guard.seen)
    async with mcp_session(gw, gw.keys[MANAGER], **{"X-Bastion-Actor": "hr-copilot"}) as session:
        result = await session.call_tool("whoami", {"claim_to_be": "morgan.lee"})
    assert not result.is_error
    who = json.loads(text_of(result))
    assert who["subject"] == MANAGER and who["actor"] == "hr-copilot" and who["scopes"] == ["tools.use"]
    seen = gw.guard.seen[before:]
    assert seen and all(s["subject"] == MANAGER for s in seen)
    # One correlation id: the token's bastion_rid, the X-Request-Id header and the audit event agree.
    rid = who["request_id"]
    assert all(s["request_id"] == rid == s["x_request_id"] for s in seen)
    events = [e for e in gw.audit("tool_call") if e["request_id"] == rid]
    assert len(events) == 1
    assert events[0]["outcome"] == "ok" and events[0]["channel"] == "mcp" and events[0]["policy_version"]
    assert len(events[0]["arguments_sha256"]) == 64 and "morgan.lee" not in json.dumps(events[0])


def test_calls_to_an_mcp_server_reuse_pooled_connections(gw: ToolGateway) -> None:
    ports_per_call: list[set[int]] = []
    for i in range(4):
        before_requests, before_tokens = len(gw.mcp_clients), len(gw.guard.seen)
        ok = gw.rpc(MANAGER, "tools/call", {"name": "echo", "arguments": {"message": f"hello {i}"}})
        assert ok.status_code == 200 and not ok.json()["result"].get("isError"), ok.text
        requests = gw.mcp_clients[before_requests:]
        assert len(requests) >= 2  # a session per call: initialize, then the call
        assert len(gw.guard.seen) - before_tokens == len(requests)  # each with its own verified token
        ports_per_call.append({port for _, port in requests})
    # Connections outlive the call that opened them: the next call's session starts on one of them.
    assert all(a & b for a, b in zip(ports_per_call, ports_per_call[1:], strict=False)), ports_per_call


async def test_injected_tool_result_is_spotlighted(gw: ToolGateway) -> None:
    async with mcp_session(gw, gw.keys[MANAGER]) as session:
        result = await session.call_tool("read_document", {"name": "q3.txt"})
    text = text_of(result)
    assert "<<UNTRUSTED" in text and "<<END UNTRUSTED" in text
    assert text.index("<<UNTRUSTED") < text.index("ignore all previous instructions")
    assert "untrusted data, not instructions" in text
    event = gw.audit("tool_call")[-1]
    assert "injection" in event["flags"]


async def test_data_the_tool_may_not_return_is_redacted(gw: ToolGateway) -> None:
    async with mcp_session(gw, gw.keys[MANAGER]) as session:
        result = await session.call_tool("leak", {"name": "ticket-7"})
    text = text_of(result)
    assert LEAKED_EMAIL not in text and LEAKED_SECRET not in text
    assert "[EMAIL_ADDRESS]" in text


async def test_arguments_are_checked_against_schema_and_data_classes(gw: ToolGateway) -> None:
    async with mcp_session(gw, gw.keys[MANAGER]) as session:
        wrong = await session.call_tool("echo", {"message": 42})
        sensitive = await session.call_tool("echo", {"message": "my SSN is 078-05-1120, card 4111 1111 1111 1111"})
        fine = await session.call_tool("echo", {"message": "hello"})
    assert wrong.is_error and "invalid_arguments" in text_of(wrong)
    assert sensitive.is_error and "sensitive_arguments" in text_of(sensitive)
    assert "078-05-1120" not in text_of(sensitive)
    assert not fine.is_error and text_of(fine) == "hello"


def test_missing_scope_asks_for_step_up(gw: ToolGateway) -> None:
    resp = gw.rpc(NOBODY, "tools/call", {"name": "whoami", "arguments": {}})
    assert resp.status_code == 403
    challenge = resp.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="tools.use"' in challenge
    assert "resource_metadata=" in challenge
    assert gw.audit("tool_call")[-1]["error"] == "insufficient_scope"


async def test_held_mcp_call_waits_for_a_reviewer_then_runs_once(gw: ToolGateway) -> None:
    before = sum(1 for s in gw.guard.seen if s["method"] == "POST")

    async def approve_when_pending() -> None:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as http:
            for _ in range(200):
                listed = (await http.get("/admin/approvals", params={"state": "pending"},
                                         headers=gw.headers(APPROVER))).json()["data"]
                mine = [a for a in listed if a["tool"] == "delete_record" and a["arguments"]["record_id"] == "r-9"]
                if mine:
                    resp = await http.post(f"/admin/approvals/{mine[0]['id']}/approve",
                                           json={"comment": "ticket OPS-12"}, headers=gw.headers(APPROVER))
                    assert resp.status_code == 200, resp.text
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("no pending approval appeared")

    async with mcp_session(gw, gw.keys[MANAGER]) as session:
        call = asyncio.create_task(session.call_tool("delete_record", {"record_id": "r-9"}))
        await approve_when_pending()
        result = await call
    assert not result.is_error and text_of(result) == "deleted r-9"
    assert sum(1 for s in gw.guard.seen if s["method"] == "POST") > before
    steps = [e["step"] for e in gw.audit("approval") if e["tool"] == "delete_record"]
    assert "requested" in steps and "approved" in steps
    final = [e for e in gw.audit("tool_call") if e["tool"] == "delete_record"][-1]
    assert final["outcome"] == "ok" and final["approval"]["decided_by"] == APPROVER
    assert final["approval"]["comment"] == "ticket OPS-12"
