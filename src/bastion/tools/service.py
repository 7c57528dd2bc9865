"""The tool proxy as the gateway runs it: built once from settings, started and stopped with the app.

    service = ToolService.build(settings, db=rt.db, audit=rt.audit.append,
                                authenticator=authenticator, http=rt.http)
    routes = service.routes()          # mount these
    await service.start(); ...; await service.stop()   # in the lifespan
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from starlette.requests import Request

from bastion.context import Principal, new_request_id
from bastion.errors import AuthenticationFailed, BastionError, PermissionDenied
from bastion.identity import Authenticator
from bastion.policy.store import PolicyStore
from bastion.protect.injection import InjectionDetector, build_detector
from bastion.providers.secrets import SecretResolver
from bastion.tools.approvals import ApprovalStore, Sealer, WebhookNotifier
from bastion.tools.config import ToolsSettings
from bastion.tools.credentials import ToolCredentials
from bastion.tools.exchange import TokenExchangeClient
from bastion.tools.mcp.client import McpToolClient
from bastion.tools.proxy import ToolProxy
from bastion.tools.registry import ToolRegistry, scopes_with_roles
from bastion.tools.rest import HttpToolClient
from bastion.tools.tokens import PRINCIPAL_SCOPES_ATTRIBUTE, ToolTokenMinter, build_minter
from bastion.tools.workflows import MAX_WORKFLOW_ID_CHARS, WORKFLOW_HEADER, RedisWorkflowCounter, WorkflowLimits

__all__ = ["MAX_WORKFLOW_ID_CHARS", "WORKFLOW_HEADER", "ToolService", "WorkflowLimits"]

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bastion.settings import Settings
    from bastion.storage import Database

log = logging.getLogger("bastion.tools")

#: Path of the MCP endpoint.
MCP_PATH = "/mcp"
#: RFC 9728 metadata document, and its variant suffixed with the resource path.
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"
#: Header naming the client or agent acting for the user (becomes the token's ``act``).
ACTOR_HEADER = "x-bastion-actor"
#: Subject of the tokens Bastion mints for itself to list an MCP server's tools.
DISCOVERY_SUBJECT = "bastion:tool-discovery"
#: Least seconds between two attempts at listing an unreachable MCP server's tools.
DISCOVERY_RETRY_SECONDS = 30.0


def public_url_of(settings: Settings) -> str:
    """The gateway's URL as clients reach it."""
    configured = settings.tools.proxy.public_url
    if configured:
        return configured.rstrip("/")
    return f"http://{settings.server.host}:{settings.server.port}"


def _token_scopes(credential: str) -> list[str]:
    """Scopes in an already verified OIDC token (``scope`` string or ``scp`` list)."""
    try:
        claims = jwt.decode(credential, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list):
        return [s for s in raw if isinstance(s, str)]
    return []


def _token_audiences(credential: str) -> list[str]:
    try:
        claims = jwt.decode(credential, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]


class ToolService:
    """Everything the tool proxy needs, with the lifespan hooks and the routes to mount."""

    def __init__(
        self,
        settings: Settings,
        *,
        proxy: ToolProxy,
        minter: ToolTokenMinter,
        authenticator: Authenticator,
        policy: PolicyStore,
        own_policy: bool,
        notifier: WebhookNotifier,
        http_tools: HttpToolClient,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.minter = minter
        self.authenticator = authenticator
        self.policy = policy
        self._own_policy = own_policy
        self.notifier = notifier
        self._http_tools = http_tools
        self.public_url = public_url_of(settings)
        proxy_settings = settings.tools.proxy
        self._pending_discovery: dict[str, list[str]] = {}
        for tool in proxy.registry:
            if proxy.registry.needs_discovery(tool):
                self._pending_discovery.setdefault(tool.settings.mcp_url or "", []).append(tool.name)
        self._discovery_lock = asyncio.Lock()
        self._next_discovery = 0.0
        limits = settings.limits
        shared = None
        if limits.backend == "redis":
            # Every replica counts a workflow's tool calls in the same place as its model calls.
            shared = RedisWorkflowCounter(limits.redis_url, prefix=limits.key_prefix,
                                          timeout_seconds=limits.redis_timeout_seconds,
                                          max_connections=limits.redis_max_connections)
        self.workflows = WorkflowLimits(
            max_calls=proxy_settings.workflow_max_calls,
            max_seconds=proxy_settings.workflow_max_seconds,
            max_tracked=proxy_settings.workflow_max_tracked,
            shared=shared,
            fail_open=limits.on_backend_error == "fail_open",
        )

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        db: Database,
        audit: Callable[[dict[str, Any]], Awaitable[int]],
        authenticator: Authenticator,
        http: httpx.AsyncClient,
        policy: PolicyStore | None = None,
        scan: Callable[[str], Any] | None = None,
        injection: InjectionDetector | None = None,
        config_path: str | None = None,
    ) -> ToolService:
        """Build the proxy from settings; pass the gateway's policy store, scanner and detector to share them."""
        tools: ToolsSettings = settings.tools
        minter = build_minter(tools.tokens, data_dir=settings.data_path, public_url=public_url_of(settings))
        exchange = None
        if tools.tokens.exchange is not None:
            secret = SecretResolver(settings.secrets_file).get(tools.tokens.exchange.client_secret_env)
            exchange = TokenExchangeClient(tools.tokens.exchange, client_secret=secret, http=http)
        own_policy = policy is None
        store = policy or PolicyStore.from_settings(settings, config_path)
        if scan is None:
            from bastion.protect.scanner import Scanner

            scan = Scanner.from_settings(settings.protection).scan
        notifier = WebhookNotifier(tools.approvals.webhook_url, http,
                                   timeout_seconds=tools.approvals.webhook_timeout_seconds)
        http_tools = HttpToolClient()
        proxy = ToolProxy(
            ToolRegistry(tools),
            engine=lambda: store.engine,
            credentials=ToolCredentials(minter, exchange),
            http_tools=http_tools,
            mcp_tools=McpToolClient(timeout_seconds=tools.proxy.mcp_timeout_seconds),
            scan=scan,
            # Tool results are always untrusted: they are scored even where prompts are not.
            injection=injection or build_detector(settings.protection.injection),
            approvals=ApprovalStore(db, Sealer.load_or_create(settings.data_path / "approvals-seal.key"),
                                    ttl_seconds=tools.approvals.ttl_seconds),
            notifier=notifier,
            audit=audit,
            settings=tools.proxy,
        )
        return cls(settings, proxy=proxy, minter=minter, authenticator=authenticator, policy=store,
                   own_policy=own_policy, notifier=notifier, http_tools=http_tools)

    async def start(self) -> None:
        """Resolve OpenAPI operations and start the policy watcher (when the service owns the store)."""
        for tool in self.proxy.registry:
            if tool.settings.kind == "http" and tool.settings.operation and tool.settings.operation.operation_id:
                try:
                    await self._http_tools.prepare(tool.settings)
                except Exception as exc:  # noqa: BLE001 - one broken backend must not stop the gateway
                    log.error("tool %s is unavailable: %s", tool.name, exc)
        if self._own_policy:
            self.policy.start()

    async def ensure_discovered(self) -> None:
        """Learn what the registry left to MCP servers, once, on first use.

        Not at start-up: an MCP server that verifies Bastion's tokens fetches Bastion's
        JWKS, which is not served until start-up is over. A server that could not be
        reached is asked again on a later request, at most every DISCOVERY_RETRY_SECONDS.
        """
        if not self._pending_discovery:
            return
        now = time.monotonic()
        if now < self._next_discovery:
            return
        async with self._discovery_lock:
            if not self._pending_discovery or time.monotonic() < self._next_discovery:
                return
            self._next_discovery = time.monotonic() + DISCOVERY_RETRY_SECONDS
            for server in list(self._pending_discovery):
                if await self._discover_server(self._pending_discovery[server]):
                    del self._pending_discovery[server]

    async def _discover_server(self, names: list[str]) -> bool:
        registry = self.proxy.registry
        first = registry.get(names[0]).settings
        # Bastion lists tools as itself, with only the scopes the tool needs: metadata, never user data.
        service = Principal(subject=DISCOVERY_SUBJECT, kind="service", auth_method="none",
                            attributes={PRINCIPAL_SCOPES_ATTRIBUTE: list(first.scopes)})
        request_id = new_request_id()

        async def bearer_for(body: bytes) -> str:
            return self.minter.mint_tool_token(service, first, actor=self.settings.tools.proxy.default_actor,
                                               scopes=None, request_id=request_id, body=body)

        try:
            offered = await self.proxy.mcp_tools.list_tools(first, bearer_for=bearer_for, request_id=request_id)
        except BastionError as exc:
            log.warning("cannot list the tools of %s's server (%s); keeping the registry's entries",
                        first.name, exc.code)
            return False
        remote = {t.get("name"): t for t in offered}
        for name in names:
            found = remote.get(registry.get(name).settings.remote_name)
            if found is None:
                log.warning("MCP tool %s is not offered by its server", name)
            elif registry.adopt_remote(name, found):
                log.info("MCP tool %s: description and schema taken from its server", name)
        return True

    async def stop(self) -> None:
        """Let webhook notes finish, close backend connections and stop the policy watcher."""
        await self.notifier.drain()
        await self._http_tools.aclose()
        await self.proxy.mcp_tools.aclose()
        await self.workflows.aclose()
        if self._own_policy:
            await self.policy.stop()

    # -- who is calling ---------------------------------------------------------------

    @property
    def resource_url(self) -> str:
        """The MCP endpoint's canonical URL (the ``resource`` of RFC 9728 and RFC 8707)."""
        return self.public_url + MCP_PATH

    @property
    def resource_metadata_url(self) -> str:
        """Where clients find the protected-resource metadata for ``/mcp``."""
        return self.public_url + RESOURCE_METADATA_PATH + MCP_PATH

    def resource_metadata(self) -> dict[str, Any]:
        """The RFC 9728 document: the resource, its authorization servers, the scopes it knows."""
        scopes = sorted({s for t in self.settings.tools.registry for s in t.scopes})
        return {
            "resource": self.resource_url,
            "authorization_servers": [i.issuer for i in self.settings.identity.oidc],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "Bastion tool gateway",
        }

    async def authenticate(self, request: Request, *, for_mcp: bool = False) -> Principal:
        """The caller, with the scopes their token and their groups or roles grant."""
        authorization = request.headers.get("authorization")
        principal = await self.authenticator.authenticate(authorization, request.headers.get("x-api-key"))
        scopes: list[str] = []
        if principal.auth_method == "oidc" and authorization:
            credential = authorization.partition(" ")[2].strip()
            if for_mcp:
                # MCP clients must use tokens issued for this resource (or this gateway), not any token
                # the identity provider ever issued for something else (the confused-deputy problem).
                accepted = {self.resource_url, self.public_url, self.public_url + "/"}
                if not accepted.intersection(_token_audiences(credential)):
                    raise AuthenticationFailed("The token was not issued for this resource.", code="invalid_token")
            scopes = _token_scopes(credential)
        if scopes:
            principal = _with_scopes(principal, scopes)
        return scopes_with_roles(principal, self.settings.tools.proxy.role_scopes)

    def actor_of(self, request: Request, principal: Principal) -> str:
        """Who acts for the user: the named agent header, the OIDC client, or the proxy itself."""
        named = request.headers.get(ACTOR_HEADER)
        if named and len(named) <= MAX_WORKFLOW_ID_CHARS and named.isprintable():
            return named
        client = principal.attributes.get("azp") or principal.attributes.get("client_id")
        return str(client) if client else self.settings.tools.proxy.default_actor

    def subject_token_of(self, request: Request, principal: Principal) -> str | None:
        """The user's own token, kept only for tools that exchange it."""
        if principal.auth_method != "oidc":
            return None
        return (request.headers.get("authorization") or "").partition(" ")[2].strip() or None

    def may_review(self, principal: Principal, tool_name: str) -> bool:
        """Whether ``principal`` may decide approval requests (a reviewer role, and policy's ``approve``)."""
        from bastion.policy.model import PolicyRequest, ResourceRef

        if not set(principal.roles) & set(self.settings.tools.approvals.reviewer_roles):
            return False
        try:
            resource = self.proxy.registry.get(tool_name).resource()
        except PermissionDenied:  # a tool since removed from the registry, or the queue as a whole ("*")
            resource = ResourceRef.tool(tool_name, risk_tier="standard")
        return self.policy.engine.decide(PolicyRequest(principal, "approve", resource, {})).allowed

    def routes(self) -> list[BaseRoute]:
        """Every route of the tool proxy: /mcp, /v1/tools/..., /admin/approvals..., the well-known documents."""
        from bastion.http import admin_api, tools_api

        return [*tools_api.routes(self), *admin_api.routes(self)]


def _with_scopes(principal: Principal, scopes: list[str]) -> Principal:
    attributes = {**principal.attributes, PRINCIPAL_SCOPES_ATTRIBUTE: sorted(set(scopes))}
    return Principal(
        subject=principal.subject, kind=principal.kind, email=principal.email, groups=principal.groups,
        roles=principal.roles, tenant=principal.tenant, attributes=attributes, auth_method=principal.auth_method,
        key_id=principal.key_id, issuer=principal.issuer, allowed_models=principal.allowed_models,
    )
