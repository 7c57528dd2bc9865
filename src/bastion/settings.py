"""The configuration file (``bastion.yaml``) as typed, validated settings.

Every section is a pydantic model with ``extra="forbid"``: a misspelt key is an
error at start-up that names the line it is on. Every limit has a safe default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bastion.errors import ConfigError
from bastion.limits.config import LimitSettings
from bastion.policy.config import PolicySettings
from bastion.protect.config import ProtectionSettings
from bastion.tools.config import ToolsSettings

DEFAULT_DATA_DIR = Path(".bastion")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: Largest request body accepted, in bytes.
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    #: Largest total size of the request headers, in bytes.
    max_header_bytes: int = Field(16 * 1024, gt=0)
    #: Longest time a streamed answer may run before the gateway ends it, in seconds.
    max_stream_seconds: float = Field(600.0, gt=0)
    #: Largest streamed answer relayed to a client, in bytes.
    max_stream_bytes: int = Field(32 * 1024 * 1024, gt=0)
    #: Largest non-streamed answer accepted from a provider, in bytes.
    max_response_bytes: int = Field(16 * 1024 * 1024, gt=0)
    #: Seconds a graceful shutdown waits for requests in flight.
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    #: Log format: ``text`` for people, ``json`` for collectors.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class StorageSettings(_Section):
    #: ``sqlite:///path/to/bastion.db`` or ``postgresql://user@host:5432/db``.
    url: str = ""
    #: Connections kept open to PostgreSQL (ignored for SQLite).
    pool_size: int = Field(5, ge=1, le=100)
    #: Seconds to wait for a database connection or statement.
    timeout_seconds: float = Field(5.0, gt=0)
    #: SQLite only: ``normal`` survives a killed process; ``full`` also survives a power cut, slower.
    sqlite_synchronous: Literal["normal", "full"] = "normal"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        if v and not v.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("storage.url must start with sqlite:/// or postgresql://")
        return v


class AuditSettings(_Section):
    #: What of the prompt and answer is kept: redacted (after protection), full, hash, none.
    content: Literal["redacted", "full", "hash", "none"] = "redacted"
    #: Write a signed checkpoint after this many events ...
    checkpoint_every: int = Field(100, ge=1)
    #: ... or after this many seconds with new events, whichever comes first.
    checkpoint_interval_seconds: float = Field(30.0, gt=0)
    #: Largest number of events committed together in one transaction.
    group_commit_max_batch: int = Field(256, ge=1, le=10000)
    #: Seconds a request waits for its audit commit before it is refused (503).
    commit_timeout_seconds: float = Field(5.0, gt=0)
    #: Optional extra copy of every event as JSON Lines (for a SIEM agent to tail).
    jsonl_path: str | None = None
    #: Events waiting for the writer; beyond this, new requests are refused (503) at once.
    max_queue: int = Field(10000, ge=1, le=1_000_000)
    #: Longest prompt or answer text kept per event, in characters (longer text is cut and marked).
    max_content_chars: int = Field(256 * 1024, ge=0)
    #: PEM files of other replicas' checkpoint keys, trusted by ``bastion audit verify``.
    trusted_public_keys: list[str] = Field(default_factory=list)


SignatureAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
DEFAULT_ALGORITHMS: tuple[SignatureAlgorithm, ...] = ("RS256", "PS256", "ES256", "EdDSA")


class ClaimNames(_Section):
    subject: str = "sub"
    email: str = "email"
    groups: str = "groups"
    roles: str = "roles"
    tenant: str = "tid"


class OIDCIssuer(_Section):
    #: The issuer URL exactly as it appears in the ``iss`` claim.
    issuer: str
    #: Accepted ``aud`` values; a token must carry at least one of them.
    audience: list[str] = Field(min_length=1)
    #: Where to discover the JWKS; defaults to ``{issuer}/.well-known/openid-configuration``.
    discovery_url: str | None = None
    #: Skip discovery and fetch keys from here.
    jwks_uri: str | None = None
    algorithms: list[SignatureAlgorithm] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    #: Largest clock difference tolerated for ``exp``/``nbf``/``iat``, in seconds.
    clock_skew_seconds: int = Field(60, ge=0, le=300)
    #: Seconds a fetched key set is trusted before it is fetched again.
    jwks_cache_seconds: int = Field(300, ge=10)
    #: Least seconds between two fetches caused by an unknown ``kid``.
    jwks_min_refetch_seconds: int = Field(30, ge=1)
    #: Seconds to wait on the identity provider.
    http_timeout_seconds: float = Field(5.0, gt=0)
    #: Claims a token must carry; ``iss``, ``aud`` and ``exp`` are required whatever this says.
    required_claims: list[str] = Field(default_factory=lambda: ["iss", "aud", "exp", "nbf"])
    claims: ClaimNames = ClaimNames()

    @model_validator(mode="after")
    def _https_unless_loopback(self) -> OIDCIssuer:
        # Keys fetched over plain HTTP could be swapped in transit; only a local IdP may use it.
        for url in (self.issuer, self.discovery_url, self.jwks_uri):
            if url is None or url.startswith("https://"):
                continue
            host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
            if not url.startswith("http://") or host not in ("127.0.0.1", "localhost", "::1"):
                raise ValueError(f"{url!r} must be an https:// URL (http:// only for 127.0.0.1/localhost)")
        return self


class APIKeySettings(_Section):
    enabled: bool = True
    #: Seconds between refreshes of the in-memory key table from storage (revocation delay).
    refresh_seconds: float = Field(1.0, gt=0, le=60)


class IdentitySettings(_Section):
    api_keys: APIKeySettings = APIKeySettings()
    oidc: list[OIDCIssuer] = Field(default_factory=list)


class UpstreamTimeouts(_Section):
    connect_seconds: float = Field(5.0, gt=0)
    #: Longest wait for the first byte and between two bytes of an answer.
    read_seconds: float = Field(120.0, gt=0)
    write_seconds: float = Field(30.0, gt=0)
    pool_seconds: float = Field(5.0, gt=0)


class ProviderSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    #: ``openai`` (any OpenAI-compatible server), ``azure_openai``, ``anthropic`` or ``echo`` (built-in, offline).
    type: Literal["openai", "azure_openai", "anthropic", "echo"] = "openai"
    base_url: str = ""
    #: Name of the environment variable (or secrets-file entry) holding the provider's key.
    api_key_env: str | None = None
    #: Azure OpenAI ``api-version`` query parameter.
    api_version: str | None = None
    #: Anthropic ``anthropic-version`` header.
    anthropic_version: str = Field("2023-06-01", pattern=r"^[0-9A-Za-z.-]{1,32}$")
    #: Anthropic requires ``max_tokens``: used when a request gives none.
    default_max_tokens: int = Field(4096, ge=1, le=1_000_000)
    #: Extra headers sent upstream (never secrets: use api_key_env).
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: UpstreamTimeouts = UpstreamTimeouts()
    max_connections: int = Field(100, ge=1, le=10000)
    #: What policy knows of the provider (docs/policy.md): its terms and where it runs.
    tier: Literal["consumer", "enterprise", "api", "on_prem"] = "api"
    #: Bastion's region label, e.g. ``eu-west-1``; EU regions start with ``eu``. Empty: unknown.
    region: str = Field("", max_length=64)
    zero_data_retention: bool = False
    #: A Business Associate Agreement (HIPAA) is in place with this provider.
    baa: bool = False
    #: The provider's terms allow training on what it receives.
    trains_on_inputs: bool = False
    certifications: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _echo_is_on_prem(cls, data: Any) -> Any:
        # The built-in echo model never sends data anywhere, so it is on premises unless told otherwise.
        if isinstance(data, dict) and data.get("type") == "echo" and "tier" not in data:
            data = {**data, "tier": "on_prem"}
        return data

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderSettings:
        if self.type != "echo" and not self.base_url:
            raise ValueError(f"provider {self.name!r} needs a base_url")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        if self.type == "azure_openai" and not self.api_version:
            raise ValueError("an azure_openai provider needs api_version")
        for k, v in self.headers.items():
            if any(c in k + v for c in "\r\n\0"):
                raise ValueError("header names and values may not contain CR, LF or NUL")
        return self


class ModelSettings(_Section):
    #: The name clients use.
    name: str = Field(pattern=r"^[A-Za-z0-9_.:/-]{1,128}$")
    provider: str
    #: The provider's own name for it (Azure: the deployment). Defaults to ``name``.
    upstream_model: str | None = None
    #: ``chat`` models serve /v1/chat/completions, ``embedding`` models /v1/embeddings.
    kind: Literal["chat", "embedding"] = "chat"
    #: Prices in dollars per million tokens, for spend accounting.
    price_input_per_mtok: float | None = Field(None, ge=0)
    price_output_per_mtok: float | None = Field(None, ge=0)
    #: Models tried in order when this one's provider fails (timeout, 5xx, 429, unreachable) before
    #: any byte reached the client; only those policy allows for the request are tried.
    fallbacks: list[str] = Field(default_factory=list, max_length=8)


class Settings(_Section):
    """The whole configuration."""

    #: Where the embedded defaults keep their files (database, signing key, secrets).
    data_dir: str = str(DEFAULT_DATA_DIR)
    #: A file of ``NAME=value`` lines read for provider keys (after the environment).
    secrets_file: str | None = None
    #: Environment variable (or secrets-file entry) holding the gateway secret shared by replicas.
    secret_env: str | None = None
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    audit: AuditSettings = AuditSettings()
    identity: IdentitySettings = IdentitySettings()
    providers: list[ProviderSettings] = Field(default_factory=list)
    models: list[ModelSettings] = Field(default_factory=list)
    policy: PolicySettings = PolicySettings()
    limits: LimitSettings = LimitSettings()
    tools: ToolsSettings = ToolsSettings()
    protection: ProtectionSettings = ProtectionSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        names = [p.name for p in self.providers]
        if len(names) != len(set(names)):
            raise ValueError("provider names must be unique")
        models = [m.name for m in self.models]
        if len(models) != len(set(models)):
            raise ValueError("model names must be unique")
        for m in self.models:
            if m.provider not in names:
                raise ValueError(f"model {m.name!r} names provider {m.provider!r}, which is not defined")
        return self

    @property
    def data_path(self) -> Path:
        """The data directory as a path."""
        return Path(self.data_dir).expanduser()

    @property
    def storage_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        return self.storage.url or f"sqlite:///{(self.data_path / 'bastion.db').as_posix()}"


def embedded_defaults(data_dir: str | Path = DEFAULT_DATA_DIR) -> Settings:
    """The settings used when no configuration file is given: SQLite and the offline echo model."""
    return Settings(
        data_dir=str(data_dir),
        providers=[ProviderSettings(name="builtin", type="echo")],
        models=[
            ModelSettings(name="echo", provider="builtin"),
            ModelSettings(name="echo-embedding", provider="builtin", kind="embedding"),
        ],
    )


class _LineLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A YAML loader that remembers the line of every mapping key and sequence item."""


def _compose_lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _compose_lines(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _compose_lines(item, (*path, i), out)


def _line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def parse_settings(text: str, source: str = "<config>") -> Settings:
    """Parse YAML text into settings; errors name the file and line."""
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader) or {}  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping of sections")
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _compose_lines(node, (), lines)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(lines, loc)
            dotted = ".".join(str(p) for p in loc) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{source}:{line or '?'}: {dotted}: {msg}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None


def load_settings(path: str | Path | None) -> Settings:
    """Load the configuration file, or the embedded defaults when ``path`` is None."""
    if path is None:
        return embedded_defaults(os.environ.get("BASTION_DATA_DIR", DEFAULT_DATA_DIR))
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {p}: {exc.strerror}") from None
    settings = parse_settings(text, str(p))
    # A relative data_dir is relative to the config file, so the file can move with its data.
    if not Path(settings.data_dir).expanduser().is_absolute():
        settings = settings.model_copy(update={"data_dir": str((p.parent / settings.data_dir).resolve())})
    return settings
