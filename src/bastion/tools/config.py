"""The tool registry and tool-token settings (the ``tools:`` section of ``bastion.yaml``).

A tool is an internal HTTP operation or an MCP server tool that models may call
on a user's behalf. Each declares who owns it, how risky it is, what it does
(read, write, delete), the scopes it needs, the data classes it returns and the
audience its backend expects in the tokens Bastion mints for it. Write and
delete tools stay disabled until an administrator sets ``enabled: true``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ToolKind = Literal["http", "mcp"]
RiskTier = Literal["standard", "elevated", "high", "not_recommended"]
ActionClass = Literal["read", "write", "delete"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
SigningAlgorithm = Literal["EdDSA", "ES256"]

#: Longest lifetime a minted tool token may have, in seconds (the issue asks for minutes at most).
MAX_TOOL_TOKEN_LIFETIME_SECONDS = 600
#: Default lifetime of a minted tool token, in seconds.
DEFAULT_TOOL_TOKEN_LIFETIME_SECONDS = 120
#: Default period between two signing-key rotations, in seconds (one day).
DEFAULT_KEY_ROTATION_SECONDS = 24 * 3600

_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$")  # RFC 6749 scope-token characters
_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_url(value: str | None, what: str) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"{what} must be an http:// or https:// URL")
    return value


class HttpOperation(_Section):
    """Which HTTP operation a tool calls: an OpenAPI operation id, or a method and path."""

    #: The OpenAPI document describing the backend (resolved by the proxy).
    openapi_url: str | None = None
    #: The ``operationId`` in that document.
    operation_id: str | None = None
    method: HttpMethod | None = None
    #: Path template relative to ``base_url``, e.g. ``/reviews/{employee_id}``.
    path: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> HttpOperation:
        by_openapi = self.operation_id is not None
        by_path = self.method is not None or self.path is not None
        if by_openapi == by_path:
            raise ValueError("give either operation_id (with openapi_url) or method and path")
        if by_openapi and not self.openapi_url:
            raise ValueError("operation_id needs openapi_url")
        if by_path and (self.method is None or not self.path or not self.path.startswith("/")):
            raise ValueError("method and a path starting with / are both needed")
        _check_url(self.openapi_url, "openapi_url")
        return self


class ToolSettings(_Section):
    """One registered tool."""

    name: str = Field(pattern=_NAME_PATTERN)
    kind: ToolKind = "http"
    description: str = Field(default="", max_length=2000)
    #: The team or person answerable for the tool.
    owner: str = Field(min_length=1, max_length=200)
    risk: RiskTier = "standard"
    action: ActionClass = "read"
    #: Scopes the tool needs; minted tokens carry at most these, and only those the user holds.
    scopes: list[str] = Field(default_factory=list)
    #: Data classes the tool may return (e.g. ``pii``, ``hr``), for protection and policy.
    data_classes: list[str] = Field(default_factory=list)
    #: The ``aud`` the tool's backend expects in Bastion's tokens.
    audience: str = Field(min_length=1, max_length=512)
    #: Base URL of an ``http`` tool's backend.
    base_url: str | None = None
    operation: HttpOperation | None = None
    #: URL of an ``mcp`` tool's server (Streamable HTTP).
    mcp_url: str | None = None
    #: The tool's name on that MCP server, when it differs from ``name``.
    mcp_tool: str | None = None
    #: JSON Schema the call's arguments must satisfy.
    arguments_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    #: ``None`` means the default: read tools on, write and delete tools off.
    enabled: bool | None = None
    #: ``mint`` a Bastion token per call, or ``exchange`` the user's token at the identity provider.
    token_mode: Literal["mint", "exchange"] = "mint"  # noqa: S105 - not a secret
    #: Seconds to wait on the backend.
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: Largest answer accepted from the backend, in bytes.
    max_response_bytes: int = Field(default=1024 * 1024, gt=0, le=64 * 1024 * 1024)

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, v: list[str]) -> list[str]:
        for s in v:
            if not _SCOPE_TOKEN.match(s):
                raise ValueError(f"scope {s!r} is not a valid scope token")
        return v

    @field_validator("arguments_schema")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(v)
        except SchemaError as exc:
            raise ValueError(f"arguments_schema is not a valid JSON Schema: {exc.message}") from None
        return v

    @model_validator(mode="after")
    def _kind_fields(self) -> ToolSettings:
        _check_url(self.base_url, "base_url")
        _check_url(self.mcp_url, "mcp_url")
        if self.kind == "http":
            if not self.base_url or self.operation is None:
                raise ValueError(f"http tool {self.name!r} needs base_url and operation")
            if self.mcp_url or self.mcp_tool:
                raise ValueError(f"http tool {self.name!r} may not set mcp_url or mcp_tool")
        else:
            if not self.mcp_url:
                raise ValueError(f"mcp tool {self.name!r} needs mcp_url")
            if self.base_url or self.operation:
                raise ValueError(f"mcp tool {self.name!r} may not set base_url or operation")
        return self

    @property
    def is_enabled(self) -> bool:
        """Whether calls may be made: reads unless off, writes and deletes only once enabled."""
        if self.enabled is None:
            return self.action == "read"
        return self.enabled

    @property
    def remote_name(self) -> str:
        """The tool's name on its MCP server."""
        return self.mcp_tool or self.name


class TokenExchangeSettings(_Section):
    """An RFC 8693 token endpoint at the company's identity provider."""

    token_endpoint: str
    client_id: str = Field(min_length=1)
    #: Name of the environment variable (or secrets-file entry) holding the client secret.
    client_secret_env: str | None = None
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    subject_token_type: str = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
    actor_token_type: str = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
    requested_token_type: str = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
    #: Seconds to wait on the token endpoint.
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: A cached token is not reused this close to its expiry, in seconds.
    refresh_before_expiry_seconds: int = Field(default=30, ge=0, le=600)
    #: Most exchanged tokens kept in memory.
    max_cache_entries: int = Field(default=10_000, ge=0, le=1_000_000)
    #: Largest answer accepted from the token endpoint, in bytes.
    max_response_bytes: int = Field(default=64 * 1024, gt=0, le=1024 * 1024)

    @field_validator("token_endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        _check_url(v, "token_endpoint")
        return v


class ToolTokenSettings(_Section):
    """How Bastion mints the per-call tokens its tool backends verify."""

    #: The ``iss`` of minted tokens; ``None`` means the gateway's public URL.
    issuer: str | None = None
    lifetime_seconds: int = Field(
        default=DEFAULT_TOOL_TOKEN_LIFETIME_SECONDS, ge=10, le=MAX_TOOL_TOKEN_LIFETIME_SECONDS
    )
    algorithm: SigningAlgorithm = "EdDSA"
    #: Seconds between two rotations of the signing key.
    rotation_seconds: int = Field(default=DEFAULT_KEY_ROTATION_SECONDS, ge=60)
    #: Directory of the key files; ``None`` means ``{data_dir}/tool_keys``.
    key_dir: str | None = None
    exchange: TokenExchangeSettings | None = None

    @model_validator(mode="after")
    def _rotation_outlives_tokens(self) -> ToolTokenSettings:
        # The previous key is dropped at the next rotation, so every token it signed
        # must have expired by then.
        if self.rotation_seconds < 2 * self.lifetime_seconds:
            raise ValueError("rotation_seconds must be at least twice lifetime_seconds")
        return self


class ToolProxySettings(_Section):
    """How the MCP and REST tool proxy serves calls (docs/tool-proxy.md)."""

    #: The gateway's URL as clients reach it; ``None``: ``http://{server.host}:{server.port}``.
    public_url: str | None = None
    #: Scopes a user holds by group or role name (added to the scopes of their OIDC token).
    role_scopes: dict[str, list[str]] = Field(default_factory=dict)
    #: Id of the acting client when the caller names none (the ``act`` claim of minted tokens).
    default_actor: str = Field(default="bastion-tool-proxy", pattern=_NAME_PATTERN)
    #: Action classes held for approval whatever policy says (the issue's default: writes and deletes).
    approval_actions: list[ActionClass] = Field(default_factory=lambda: list[ActionClass](["write", "delete"]))
    #: ``spotlight`` wraps a result that looks like an injection as data; ``block`` withholds it.
    result_injection: Literal["spotlight", "block"] = "spotlight"
    #: Largest JSON body of a REST invoke or MCP message, in bytes.
    max_request_bytes: int = Field(default=1024 * 1024, gt=0, le=16 * 1024 * 1024)
    #: Tool calls one workflow (``X-Bastion-Workflow-Id``) may make.
    workflow_max_calls: int = Field(default=50, ge=1, le=100_000)
    #: Seconds a workflow may run from its first call.
    workflow_max_seconds: float = Field(default=900.0, gt=0, le=86_400)
    #: Workflows remembered at once (oldest forgotten first).
    workflow_max_tracked: int = Field(default=100_000, ge=100, le=10_000_000)
    #: Seconds one MCP client connection to an upstream server may take, end to end.
    mcp_timeout_seconds: float = Field(default=15.0, gt=0, le=300)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        return _check_url(v, "public_url")


class ApprovalSettings(_Section):
    """Human approval of held tool calls."""

    #: Roles whose holders may approve or deny (never their own requests).
    reviewer_roles: list[str] = Field(default_factory=lambda: ["approver", "admin"])
    #: Seconds a request stays open before it expires.
    ttl_seconds: int = Field(default=3600, ge=10, le=30 * 86_400)
    #: Seconds an MCP call waits for a decision before answering that it is still pending.
    mcp_wait_seconds: float = Field(default=60.0, ge=0, le=3600)
    #: Seconds between two looks at the database while an MCP call waits.
    poll_seconds: float = Field(default=0.5, gt=0, le=30)
    #: Run an approved REST call as soon as it is approved (else on ``POST .../execute``).
    auto_execute: bool = False
    #: URL notified (POST JSON) of new and decided requests; failures are logged, never block.
    webhook_url: str | None = None
    webhook_timeout_seconds: float = Field(default=3.0, gt=0, le=60)

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        return _check_url(v, "webhook_url")


class ToolsSettings(_Section):
    """The ``tools:`` section: token settings and the registered tools."""

    tokens: ToolTokenSettings = ToolTokenSettings()
    registry: list[ToolSettings] = Field(default_factory=list)
    proxy: ToolProxySettings = ToolProxySettings()
    approvals: ApprovalSettings = ApprovalSettings()

    @model_validator(mode="after")
    def _consistent(self) -> ToolsSettings:
        names = [t.name for t in self.registry]
        if len(names) != len(set(names)):
            raise ValueError("tool names must be unique")
        for t in self.registry:
            needs_exchange = t.token_mode == "exchange"  # noqa: S105 - a mode name
            if needs_exchange and self.tokens.exchange is None:
                raise ValueError(f"tool {t.name!r} uses token exchange, but tokens.exchange is not set")
        return self

    def get(self, name: str) -> ToolSettings | None:
        """The tool called ``name``, if registered."""
        for t in self.registry:
            if t.name == name:
                return t
        return None
