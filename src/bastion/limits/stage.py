"""The ``limit`` pipeline stage: admit before the upstream call, settle after it."""

from __future__ import annotations

from bastion.context import RequestContext, Usage
from bastion.errors import BastionError
from bastion.limits.admission import Admission
from bastion.limits.alerts import LimitAlert
from bastion.limits.limiter import Limiter
from bastion.limits.meter import StreamMeter

#: Where the stage leaves its admission in ``ctx.state``.
ADMISSION_STATE_KEY = "limits.admission"
#: Where the stage appends alerts (LimitAlert) for the gateway to record as audit events.
ALERTS_STATE_KEY = "alerts"
#: Where the stage leaves the x-ratelimit-* headers for the response.
HEADERS_STATE_KEY = "limits.headers"


class LimitStage:
    """Reserves the request on its caller's limits; refuses with 429 (or 503 when fail-closed)."""

    name = "limit"

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def __call__(self, ctx: RequestContext) -> None:
        """Admit the request or raise; record the decision, headers and any alerts."""
        try:
            admission = await self.limiter.admit(ctx)
        except BastionError as exc:
            ctx.decide(self.name, "deny", exc.message, code=exc.code)
            headers = {k: v for k, v in exc.headers.items() if k.lower().startswith("x-ratelimit")}
            if headers:
                ctx.state[HEADERS_STATE_KEY] = headers
            raise
        ctx.state[ADMISSION_STATE_KEY] = admission
        ctx.state[HEADERS_STATE_KEY] = dict(admission.headers)
        _record(ctx, self.limiter.take_alerts(admission))
        if admission.degraded:
            ctx.decide(
                self.name, "allow", "usage limits unavailable; admitted unmetered (fail_open)"
            )
        elif admission.applied:
            ctx.decide(
                self.name,
                "allow",
                "within limits",
                limits=sorted({a.rule.name for a in admission.applied}),
            )

    async def settle(self, ctx: RequestContext, usage: Usage | None) -> list[LimitAlert]:
        """Settle the request's reservation with real usage; returns (and records) new alerts."""
        admission = admission_of(ctx)
        if admission is None:
            return []
        alerts = await self.limiter.settle(admission, usage)
        _record(ctx, alerts)
        return alerts

    def meter(self, ctx: RequestContext) -> StreamMeter | None:
        """A stream meter for the request, or None when it was never admitted."""
        admission = admission_of(ctx)
        return None if admission is None else self.limiter.meter(admission)


def admission_of(ctx: RequestContext) -> Admission | None:
    """The admission the limit stage left on a request, if any."""
    value = ctx.state.get(ADMISSION_STATE_KEY)
    return value if isinstance(value, Admission) else None


def _record(ctx: RequestContext, alerts: list[LimitAlert]) -> None:
    if alerts:
        ctx.state.setdefault(ALERTS_STATE_KEY, []).extend(alerts)
