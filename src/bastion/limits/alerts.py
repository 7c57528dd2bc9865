"""Alerts the limit stage hands to the gateway, to record as audit events of kind ``alert``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AlertKind = Literal["soft_limit", "anomaly", "limits_unavailable"]


@dataclass(frozen=True, slots=True)
class LimitAlert:
    """Something a SIEM rule may want to catch: a soft limit crossed, a usage jump, an outage."""

    kind: AlertKind
    message: str
    #: The limit rule involved, when there is one.
    rule: str | None = None
    #: user, key, group, tenant or global.
    scope: str | None = None
    #: Whose usage it is (subject, key id, group or tenant name); never a secret.
    subject: str | None = None
    metric: str | None = None
    window: str | None = None
    limit: float | None = None
    observed: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_audit(self) -> dict[str, Any]:
        """The alert as recorded in the audit event's payload."""
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        for name in ("rule", "scope", "subject", "metric", "window", "limit", "observed"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.data:
            out["data"] = dict(self.data)
        return out
