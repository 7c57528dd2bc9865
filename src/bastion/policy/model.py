"""What is asked of policy and what it answers: PolicyRequest, ResourceRef, PolicyDecision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bastion.context import Decision, Finding, Principal
from bastion.errors import PermissionDenied

Effect = Literal["allow", "deny", "reroute", "require_approval"]

#: Stage name used in decisions and audit events.
STAGE = "decide"
#: Id reported when no policy permits a request (Cedar's default deny).
DEFAULT_DENY_ID = "bastion:default-deny"
#: Id reported when a policy could not be evaluated (the request is refused).
EVALUATION_ERROR_ID = "bastion:evaluation-error"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """The thing acted on: a model, provider, tool, feature or document collection."""

    #: ``Model``, ``Provider``, ``Tool``, ``Feature`` or ``Collection`` (``Bastion::`` optional).
    type: str
    id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def model(cls, name: str, *, provider: str = "", kind: str = "chat") -> ResourceRef:
        """A model, placed under its provider (so ``resource in Bastion::Provider::"x"`` works)."""
        return cls("Model", name, {"provider": provider, "kind": kind})

    @classmethod
    def provider(cls, name: str, *, tier: str = "api", region: str = "") -> ResourceRef:
        """A provider as a resource (used to ask which providers may receive some data)."""
        return cls("Provider", name, {"tier": tier, "region": region})

    @classmethod
    def feature(cls, name: str, *, risk_tier: str) -> ResourceRef:
        """A product feature with its risk tier (standard, elevated, high, not_recommended)."""
        return cls("Feature", name, {"risk_tier": risk_tier})

    @classmethod
    def tool(cls, name: str, *, risk_tier: str, server: str = "") -> ResourceRef:
        """A tool with its risk tier and the server it lives on."""
        return cls("Tool", name, {"risk_tier": risk_tier, "server": server})

    @classmethod
    def collection(cls, name: str, *, readers: Iterable[str] = (), classification: str = "internal") -> ResourceRef:
        """A document collection and the groups that may read it."""
        return cls("Collection", name, {"readers": list(readers), "classification": classification})


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One question for policy: may ``principal`` do ``action`` on ``resource`` in ``context``?

    Context keys (all optional): ``data_classes``, ``entity_types`` (iterables of str),
    ``injection_score`` (0..1), ``caller_region``, ``hour``, ``weekday`` (1 = Monday),
    ``request_bytes`` or ``request_kib``, ``approved``, ``model``, and ``provider``
    (a ProviderSettings or a mapping of its attributes). Unknown keys are refused.
    """

    principal: Principal
    action: str
    resource: ResourceRef
    context: Mapping[str, Any] = field(default_factory=dict)


def findings_context(findings: Sequence[Finding]) -> dict[str, Any]:
    """The ``data_classes`` and ``entity_types`` context entries of inspection findings."""
    classes: set[str] = set()
    types: set[str] = set()
    for f in findings:
        types.add(f.type)
        classes.update(f.data_classes)
    return {"data_classes": sorted(classes), "entity_types": sorted(types)}


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What policy decided, why, and by which policies."""

    allowed: bool
    effect: Effect
    #: Sentences a user can act on, one per policy that decided.
    reasons: list[str]
    #: Ids of the policies that decided (permits when allowed, forbids when refused).
    policies: list[str]
    #: Data class or entity type -> protection action (allow, mask, hash, pseudonymize, redact, block).
    protection: dict[str, str]
    #: Providers that may receive this request instead, when the effect is ``reroute``.
    reroute: list[str] | None
    require_approval: bool
    #: Hash of the policy set that decided.
    version: str

    def copy(self) -> PolicyDecision:
        """A copy whose lists and dicts the caller may change freely."""
        return make_decision(
            self.allowed,
            self.effect,
            list(self.reasons),
            list(self.policies),
            dict(self.protection),
            None if self.reroute is None else list(self.reroute),
            self.require_approval,
            self.version,
        )

    @property
    def message(self) -> str:
        """The refusal (or permission) as one message naming the deciding policies."""
        names = ", ".join(self.policies) or DEFAULT_DENY_ID
        text = " ".join(self.reasons)
        return f"{text} (policy: {names})" if text else f"Decided by policy {names}."

    def to_audit(self) -> dict[str, Any]:
        """The decision as recorded in audit events (policy version and ids included)."""
        out: dict[str, Any] = {
            "allowed": self.allowed,
            "effect": self.effect,
            "policies": list(self.policies),
            "policy_version": self.version,
        }
        if self.protection:
            out["protection"] = dict(self.protection)
        if self.reroute is not None:
            out["reroute"] = list(self.reroute)
        if self.require_approval:
            out["require_approval"] = True
        return out

    def to_context_decision(self) -> Decision:
        """The decision in the shape ``RequestContext.decisions`` holds."""
        return Decision(
            stage=STAGE,
            effect=self.effect,
            reason=" ".join(self.reasons),
            policies=tuple(self.policies),
            data=self.to_audit(),
        )

    def raise_if_refused(self) -> None:
        """Raise PermissionDenied (403 ``policy_denied``) with the reasons, unless allowed."""
        if self.allowed:
            return
        details: dict[str, Any] = {"policies": list(self.policies), "policy_version": self.version}
        if self.require_approval:
            details["require_approval"] = True
        raise PermissionDenied(self.message, code="policy_denied", details=details)


_new_decision = object.__new__
_slots = PolicyDecision.__dict__
_set_allowed = _slots["allowed"].__set__
_set_effect = _slots["effect"].__set__
_set_reasons = _slots["reasons"].__set__
_set_policies = _slots["policies"].__set__
_set_protection = _slots["protection"].__set__
_set_reroute = _slots["reroute"].__set__
_set_require_approval = _slots["require_approval"].__set__
_set_version = _slots["version"].__set__


def make_decision(
    allowed: bool,
    effect: Effect,
    reasons: list[str],
    policies: list[str],
    protection: dict[str, str],
    reroute: list[str] | None,
    require_approval: bool,
    version: str,
) -> PolicyDecision:
    """``PolicyDecision(...)`` with the fields in order, at half the cost (fills the slots directly).

    A frozen dataclass sets each field through ``object.__setattr__``; one decision is
    made for every request decided, so the policy engine makes them here.
    """
    d = _new_decision(PolicyDecision)
    _set_allowed(d, allowed)
    _set_effect(d, effect)
    _set_reasons(d, reasons)
    _set_policies(d, policies)
    _set_protection(d, protection)
    _set_reroute(d, reroute)
    _set_require_approval(d, require_approval)
    _set_version(d, version)
    return d
