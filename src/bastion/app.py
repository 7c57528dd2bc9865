"""create_app(settings): builds every part once, wires the pipeline, and runs it under a lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from bastion.audit.signing import AuditSigner
from bastion.audit.writer import AuditLog
from bastion.errors import BastionError, InvalidRequest
from bastion.gateway import Gateway
from bastion.gateway_secret import load_gateway_secret
from bastion.http import openai_api, ops
from bastion.http.middleware import LimitsMiddleware, admit, send_error
from bastion.identity import Authenticator, IdentifyStage
from bastion.identity.apikeys import KeyStore
from bastion.identity.oidc import OIDCVerifier
from bastion.limits.limiter import Limiter
from bastion.limits.stage import LimitStage
from bastion.metrics import Metrics
from bastion.pipeline.base import Stage
from bastion.pipeline.output import OutputStage
from bastion.pipeline.protection import Protection, build_protection
from bastion.pipeline.route import ModelAccessStage, RouteStage
from bastion.policy.stage import PolicyStage
from bastion.policy.store import PolicyStore
from bastion.providers.fallback import FallbackStage
from bastion.providers.registry import ProviderRegistry
from bastion.providers.secrets import SecretResolver
from bastion.settings import Settings
from bastion.storage import Database, open_database
from bastion.tools.service import ToolService

log = logging.getLogger("bastion")

#: Seconds a readiness probe waits on the database.
READINESS_DB_TIMEOUT_SECONDS = 2.0


@dataclass
class Runtime:
    """Everything a running gateway holds, built once at start-up."""

    settings: Settings
    db: Database
    keys: KeyStore
    audit: AuditLog
    registry: ProviderRegistry
    metrics: Metrics
    gateway: Gateway
    http: httpx.AsyncClient
    limiter: Limiter | None = None
    policies: PolicyStore | None = None
    protection: Protection | None = None
    tools: ToolService | None = None
    startup_notes: list[str] = field(default_factory=list)
    extra_checks: dict[str, Any] = field(default_factory=dict)


def build_runtime(settings: Settings, config_path: str | Path | None = None) -> Runtime:
    """Open storage, load keys, policies and detectors, build providers and the pipeline; start nothing yet."""
    settings.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = open_database(settings.storage_url, pool_size=settings.storage.pool_size,
                       timeout=settings.storage.timeout_seconds,
                       sqlite_synchronous=settings.storage.sqlite_synchronous)
    metrics = Metrics()
    keys = KeyStore(db, refresh_seconds=settings.identity.api_keys.refresh_seconds)
    http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
    oidc = OIDCVerifier(list(settings.identity.oidc), http) if settings.identity.oidc else None
    authenticator = Authenticator(keys if settings.identity.api_keys.enabled else None, oidc)
    signer = AuditSigner.load_or_create(settings.data_path / "audit-signing.key")
    audit = AuditLog(db, signer, settings.audit, jsonl_path=settings.audit.jsonl_path)
    resolver = SecretResolver(settings.secrets_file)
    registry = ProviderRegistry.from_settings(settings, resolver)
    protection = build_protection(settings, load_gateway_secret(settings, resolver))

    limiter = Limiter.from_settings(settings) if settings.limits.enabled else None
    limit_stage = LimitStage(limiter) if limiter is not None else None
    policies = PolicyStore.from_settings(settings, config_path)
    decide = PolicyStage(policies, settings.models)
    # The pipeline's order: (model known and allowed) limit, inspect, decide, transform, route.
    chat_stages: list[Stage] = [ModelAccessStage(registry, "chat")]
    embedding_stages: list[Stage] = [ModelAccessStage(registry, "embedding")]
    if limit_stage is not None:
        chat_stages.append(limit_stage)
        embedding_stages.append(limit_stage)
    chat_stages += [protection.inspect, decide, protection.transform, RouteStage(registry, "chat"),
                    FallbackStage(settings.models, policies)]
    embedding_stages += [protection.inspect, decide, protection.transform, RouteStage(registry, "embedding")]
    output_stages: list[OutputStage] = [protection.output]
    gateway = Gateway(
        settings, registry,
        identify=IdentifyStage(authenticator),
        chat_stages=chat_stages,
        embedding_stages=embedding_stages,
        output_stages=output_stages,
        audit=audit.append,
        metrics=metrics,
        limits=limit_stage,
        visible_models=lambda p: policies.engine.models_for(p, registry.models()),
    )
    tools = ToolService.build(settings, db=db, audit=audit.append, authenticator=authenticator, http=http,
                              policy=policies, scan=protection.scanner.scan, injection=protection.injection,
                              config_path=str(config_path) if config_path else None)
    rt = Runtime(settings, db, keys, audit, registry, metrics, gateway, http, limiter=limiter, policies=policies,
                 protection=protection, tools=tools)
    rt.startup_notes.extend(protection.notes)
    if limiter is not None:
        rt.extra_checks["limits"] = limiter.readiness
    return rt


def _freeze_startup_objects() -> None:
    """Keep what start-up built (detectors, models, policies) out of the cyclic collector's passes.

    It lives as long as the process, yet every full collection would walk all of it again:
    with the detectors and the NER model loaded, a pass takes tens of milliseconds, and the
    requests in flight wait for it. Frozen objects are still freed normally if released.
    """
    gc.collect()
    gc.freeze()


class BastionApp(Starlette):
    """The gateway's ASGI application.

    Model calls (``openai_api.endpoints``) are dispatched straight to their endpoints;
    everything else goes through Starlette's middleware and router. Both ways give a
    request its id and refuse oversized headers first, and answer an unexpected error
    with an OpenAI-shaped 500 that says nothing of the cause.
    """

    def __init__(self, *, endpoints: dict[tuple[str, str], openai_api.Endpoint], max_header_bytes: int,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._endpoints = endpoints
        self._max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self._endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["app"] = self
                request_id = await admit(scope, send, self._max_header_bytes)
                if request_id is not None:
                    await _guarded(endpoint, scope, receive, send, request_id)
                return
        await super().__call__(scope, receive, send)


async def _guarded(endpoint: openai_api.Endpoint, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
    started = False

    async def tracked(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
            headers = message.get("headers") or []
            if not any(k.lower() == b"x-request-id" for k, _ in headers):
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
        await send(message)

    try:
        await endpoint(scope, receive, tracked, request_id)
    except Exception as exc:
        log.error("unhandled error on %s: %s", scope["path"][:100], type(exc).__name__, exc_info=exc)
        if started:
            raise  # the answer is under way: the server ends the connection
        await send_error(send, BastionError(), request_id)


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    """The ASGI application for ``settings``."""
    rt = runtime or build_runtime(settings)

    async def db_ready() -> tuple[bool, str]:
        def ping() -> None:
            with rt.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(ping), READINESS_DB_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
            return False, f"database unreachable ({type(exc).__name__})"
        return True, "ok"

    async def audit_ready() -> tuple[bool, str]:
        ok = rt.audit.healthy()
        return ok, "ok" if ok else "audit writer is failing to commit"

    async def policy_ready() -> tuple[bool, str]:
        if rt.policies is None:
            return True, "no policies"
        status = rt.policies.status()
        error = status.get("last_error")
        detail = f"version {status.get('version')}, {status.get('policies')} policies"
        # A failed reload keeps the working set: still ready, but say so.
        return True, detail + (f"; last reload failed: {error}" if error else "")

    checks = {"database": db_ready, "audit": audit_ready, "policy": policy_ready, **rt.extra_checks}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await rt.audit.start()
        await rt.keys.start()
        if rt.policies is not None:
            rt.policies.start()
        if rt.tools is not None:
            await rt.tools.start()
        _freeze_startup_objects()
        try:
            yield
        finally:
            if rt.tools is not None:
                await rt.tools.stop()
            if rt.policies is not None:
                await rt.policies.stop()
            await rt.keys.stop()
            await rt.audit.stop()
            await rt.registry.aclose()
            if rt.limiter is not None:
                await rt.limiter.aclose()
            if rt.protection is not None:
                await rt.protection.aclose()
            await rt.http.aclose()
            rt.db.close()

    async def on_error(request: Request, exc: Exception) -> Response:
        rid = request.scope.get("state", {}).get("request_id")
        if isinstance(exc, BastionError):
            return JSONResponse(exc.to_body(rid), status_code=exc.status_code)
        log.error("unhandled error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
        return JSONResponse(BastionError().to_body(rid), status_code=500)

    async def not_found(request: Request, exc: Exception) -> Response:
        rid = request.scope.get("state", {}).get("request_id")
        err = InvalidRequest(f"Unknown path {request.url.path[:100]}.", code="not_found")
        return JSONResponse(err.to_body(rid), status_code=404)

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        rid = request.scope.get("state", {}).get("request_id")
        err = InvalidRequest("This method is not allowed on this path.", code="method_not_allowed")
        return JSONResponse(err.to_body(rid), status_code=405)

    app = BastionApp(
        endpoints=openai_api.endpoints(rt.gateway),
        max_header_bytes=settings.server.max_header_bytes,
        routes=[*openai_api.routes(rt.gateway), *ops.routes(rt.metrics, checks),
                *(rt.tools.routes() if rt.tools is not None else [])],
        middleware=[Middleware(LimitsMiddleware, max_header_bytes=settings.server.max_header_bytes)],
        exception_handlers={Exception: on_error, 404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )
    app.state.runtime = rt
    return app
