"""What one request carries through the pipeline: who, what was found, what was decided."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

PrincipalKind = Literal["user", "service"]
AuthMethod = Literal["api_key", "oidc", "none"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. Built only by the identify stage."""

    subject: str
    kind: PrincipalKind = "user"
    email: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    tenant: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    auth_method: AuthMethod = "api_key"
    key_id: str | None = None
    issuer: str | None = None
    #: Models this credential may use; ``None`` means no restriction from the credential.
    allowed_models: tuple[str, ...] | None = None

    def may_use_model(self, model: str) -> bool:
        """Whether the credential itself allows ``model`` (policy may narrow further)."""
        return self.allowed_models is None or model in self.allowed_models

    def to_audit(self) -> dict[str, Any]:
        """The principal as recorded in audit events (no secrets, no raw tokens)."""
        return {
            "subject": self.subject,
            "kind": self.kind,
            "email": self.email,
            "groups": list(self.groups),
            "roles": list(self.roles),
            "tenant": self.tenant,
            "auth_method": self.auth_method,
            "issuer": self.issuer,
        }


@dataclass(slots=True)
class Finding:
    """One piece of sensitive data or attack found in text."""

    type: str
    start: int
    end: int
    score: float
    detector: str
    data_classes: tuple[str, ...] = ()
    explanation: str = ""
    #: Where the text came from: ``messages[2].content``, ``output``, ``tool_result`` ...
    location: str = ""

    def to_audit(self) -> dict[str, Any]:
        """The finding as recorded: type and place, never the value."""
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
            "detector": self.detector,
            "data_classes": list(self.data_classes),
            "location": self.location,
        }


@dataclass(slots=True)
class Decision:
    """A decision a stage made, with the reason a person can read."""

    stage: str
    effect: str
    reason: str
    policies: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    def to_audit(self) -> dict[str, Any]:
        """The decision as recorded."""
        out: dict[str, Any] = {"stage": self.stage, "effect": self.effect, "reason": self.reason}
        if self.policies:
            out["policies"] = list(self.policies)
        if self.data:
            out["data"] = self.data
        return out


def new_request_id() -> str:
    """A request id that is unique and safe to show to anyone."""
    return "req_" + uuid.uuid4().hex


@dataclass(slots=True)
class Usage:
    """Token counts as reported by the provider (or counted while streaming)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def to_audit(self) -> dict[str, int]:
        """The usage as recorded."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class RequestContext:
    """Everything one request carries through the pipeline. Stages read and add to it."""

    endpoint: str
    request_id: str = field(default_factory=new_request_id)
    received_at: float = field(default_factory=time.time)
    started_ns: int = field(default_factory=time.perf_counter_ns)
    client_ip: str | None = None
    principal: Principal | None = None
    body: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    stream: bool = False
    findings: list[Finding] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    status: int = 0
    error_code: str | None = None
    #: Nanoseconds spent waiting on the provider (excluded from the gateway's overhead).
    upstream_ns: int = 0
    #: Nanoseconds spent waiting on the audit commit (part of the overhead, also reported apart).
    audit_ns: int = 0
    #: Prompt and answer text as they stand after protection, for the audit content modes.
    prompt_text: str | None = None
    response_text: str | None = None
    #: Free-form values stages share (e.g. the pseudonym vault of this conversation).
    state: dict[str, Any] = field(default_factory=dict)

    def decide(self, stage: str, effect: str, reason: str, **data: Any) -> Decision:
        """Record a decision and return it."""
        decision = Decision(stage=stage, effect=effect, reason=reason, data=data)
        self.decisions.append(decision)
        return decision

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return (time.perf_counter_ns() - self.started_ns) / 1e6

    def overhead_ms(self) -> float:
        """The gateway's own time so far: elapsed minus the wait on the provider."""
        own = time.perf_counter_ns() - self.started_ns - self.upstream_ns
        return max(0.0, own / 1e6)
