"""What admission hands back: the counters charged, headers, alerts, and the reservation."""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.limits.alerts import LimitAlert
from bastion.limits.backend import US
from bastion.limits.config import LimitRule, ModelPrice

#: Subject used when no principal was established (endpoints without authentication).
ANONYMOUS = "anonymous"


@dataclass(slots=True)
class Applied:
    """One counter a request was charged on, with what it reserved there."""

    rule: LimitRule
    #: The subject, key, group or tenant the counter belongs to (None for global).
    target: str | None
    key: str
    limit_units: int
    reserved: int
    #: Epoch second a calendar window ends (0 for rolling windows).
    window_end: float = 0.0


@dataclass(slots=True)
class Admission:
    """What admit() let through: reservations to settle, headers to send, alerts to record."""

    model: str | None
    price: ModelPrice
    prompt_tokens: int
    completion_tokens: int
    reserved_micro_usd: int
    applied: list[Applied] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    alerts: list[LimitAlert] = field(default_factory=list)
    #: Admitted without counting because the backend failed and the policy is fail_open.
    degraded: bool = False
    #: Completion tokens, and their price, reserved beyond the first reservation (streams).
    extra_completion_tokens: int = 0
    extra_micro_usd: int = 0
    settled: bool = False
    user: str = ANONYMOUS
    key_id: str | None = None
    #: Alerts already handed to the gateway (the rest are returned by settle()).
    alerts_taken: int = 0

    @property
    def metered(self) -> bool:
        """Whether any token or spend counter bounds this request's answer."""
        return not self.degraded and any(a.rule.metric != "requests" for a in self.applied)

    @property
    def reserved_completion(self) -> int:
        """Completion tokens reserved so far, first reservation and extensions together."""
        return self.completion_tokens + self.extra_completion_tokens


def describe_rule(rule: LimitRule, target: str | None) -> str:
    """A limit as its caller reads it: amount, window and whose counter (never another's data)."""
    unit = {"requests": "requests", "tokens": "tokens", "spend": "USD"}[rule.metric]
    amount = f"${rule.limit:,.2f}" if rule.metric == "spend" else f"{rule.limit:,.0f} {unit}"
    whose = {
        "user": "for your user",
        "key": "for this API key",
        "group": f"for group '{target}'",
        "tenant": "for your organisation",
        "global": "across the gateway",
        "workflow": "for this workflow",
    }[rule.scope]
    return f"{amount} per {rule.window} {whose}"


def limit_units(rule: LimitRule) -> int:
    """A rule's limit in counter units: requests, tokens or micro-dollars."""
    return int(round(rule.limit * US)) if rule.metric == "spend" else int(rule.limit)
