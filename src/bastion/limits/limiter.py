"""The limiter: admit a request against every rule that binds its caller, then settle usage.

The gateway calls ``admit(ctx)`` before the upstream call. It reserves one
request, the estimated tokens (prompt from characters, completion from
max_tokens or the default) and their price on every counter the caller's
rules name, all or nothing. After the answer, ``settle(admission, usage)``
corrects the reservation to the real usage. Streams use ``meter(admission)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bastion.context import Principal, RequestContext, Usage
from bastion.errors import ConfigError, InvalidRequest, LimitsUnavailable, RateLimited
from bastion.limits.admission import ANONYMOUS, Admission, Applied, describe_rule, limit_units
from bastion.limits.alerts import LimitAlert
from bastion.limits.anomaly import AnomalyDetector
from bastion.limits.backend import US, Charge, ChargeResult, CounterBackend
from bastion.limits.config import CALENDAR_WINDOWS, LimitRule, LimitSettings, ModelPrice
from bastion.limits.estimate import (
    cost_micro_usd,
    estimate_prompt_tokens,
    prices_from_models,
    requested_completion_tokens,
)
from bastion.limits.windows import (
    calendar_start,
    calendar_window,
    format_reset,
    rolling_seconds,
    subject_digest,
)

if TYPE_CHECKING:
    from bastion.limits.meter import StreamMeter

log = logging.getLogger("bastion.limits")

#: Header specificity: the narrowest scope a caller has a limit in is the one reported.
SCOPE_ORDER = {"workflow": -1, "key": 0, "user": 1, "group": 2, "tenant": 3, "global": 4}
#: ``ctx.state`` key of the workflow (agent run) a request belongs to, from ``X-Bastion-Workflow-Id``.
WORKFLOW_STATE = "workflow_id"
#: Longest workflow id accepted.
MAX_WORKFLOW_ID_CHARS = 128
#: Soft-limit alerts remembered for de-duplication.
MAX_ALERT_MEMORY = 100_000
#: Bucket name for principals without a tenant, so tenant limits still bind them.
NO_TENANT = "(none)"
_FREE = ModelPrice()
#: De-duplication key of the backend-outage alert.
OUTAGE_ALERT_KEY = "\0outage"


class Limiter:
    """Request, token and spend limits over one counter backend."""

    def __init__(
        self,
        settings: LimitSettings,
        backend: CounterBackend,
        *,
        prices: Mapping[str, ModelPrice] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self._prices = dict(prices or {})
        self._clock = clock or time.time
        self._anomaly = AnomalyDetector(settings.anomaly, clock=self._clock)
        #: Whether any rule counts per workflow (only then is the header read, and checked).
        self._by_workflow = settings.enabled and any(r.scope == "workflow" for r in settings.rules)
        self._soft_sent: OrderedDict[str, float] = OrderedDict()
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        # What each rule's counters share, worked out once: key prefix, limit in units, hard?
        self._compiled = {
            r.name: (
                f"{settings.key_prefix}:{r.name}:{r.scope}:",
                limit_units(r),
                r.mode == "hard",
            )
            for r in settings.rules
        }
        self._windows: dict[str, tuple[str, float, float]] = {}

    @classmethod
    def from_settings(cls, settings: Any, clock: Callable[[], float] | None = None) -> Limiter:
        """The limiter of a configuration: its ``limits`` section, backend and model prices."""
        limits: LimitSettings = getattr(settings, "limits", None) or LimitSettings()
        models = list(getattr(settings, "models", []))
        prices = prices_from_models(models)
        if any(r.metric == "spend" for r in limits.rules):
            unpriced = sorted(m.name for m in models if m.name not in prices)
            if unpriced:
                raise ConfigError(
                    "spend limits need a price on every model; unpriced: " + ", ".join(unpriced)
                )
        return cls(limits, make_backend(limits, clock=clock), prices=prices, clock=clock)

    # -- admission ---------------------------------------------------------------------------

    async def admit(self, ctx: RequestContext) -> Admission:
        """Reserve this request on every counter that binds it, or raise RateLimited."""
        principal = ctx.principal
        s = self.settings
        workflow = _workflow_of(ctx) if self._by_workflow else None
        body = ctx.body
        model = ctx.model or (body.get("model") if isinstance(body.get("model"), str) else None)
        prompt = estimate_prompt_tokens(body, s.chars_per_token)
        completion = requested_completion_tokens(body, s.default_completion_tokens)
        price = self._prices.get(model or "", _FREE)
        micro = cost_micro_usd(price, prompt, completion)
        adm = Admission(
            model=model,
            price=price,
            prompt_tokens=prompt,
            completion_tokens=completion,
            reserved_micro_usd=micro,
            user=principal.subject if principal else ANONYMOUS,
            key_id=self._key_of(principal),
        )
        if not s.enabled:
            return adm
        now = self._clock()
        costs = {"requests": 1, "tokens": prompt + completion, "spend": micro}
        charges: list[Charge] = []
        for rule in s.rules:
            if rule.models and model not in rule.models:
                continue
            cost = costs[rule.metric]
            for target in self._targets(rule, principal, workflow):
                applied, charge = self._charge_for(rule, target, cost, now)
                if rule.mode == "hard" and cost > applied.limit_units:
                    raise InvalidRequest(
                        f"This request needs more than the limit '{rule.name}' allows "
                        f"({describe_rule(rule, target)}); lower max_tokens or shorten the prompt.",
                        param="max_tokens",
                    )
                adm.applied.append(applied)
                charges.append(charge)
        if charges:
            try:
                admitted, results = await self.backend.charge(charges)
            except LimitsUnavailable as exc:
                self._backend_failed(exc)
                if s.on_backend_error == "fail_closed":
                    raise
                adm.applied.clear()
                adm.degraded = True
                self._add(adm, self._outage_alert())
                return adm
            self._backend_ok()
            adm.headers = self._headers(adm.applied, results)
            if not admitted:
                raise self._refusal(adm, results)
            self._soft_alerts(adm.applied, results, adm.alerts)
        self._observe(adm, "requests", 1)
        return adm

    async def settle(self, admission: Admission, usage: Usage | None) -> list[LimitAlert]:
        """Correct the reservation to real usage (None: the call failed; refund tokens, spend)."""
        if admission.settled:
            return []
        admission.settled = True
        if usage is None:
            prompt, completion = 0, 0
        else:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
            if usage.total_tokens > prompt + completion:
                # Providers that report only a total: bill the rest as completion.
                completion = usage.total_tokens - prompt
        if not admission.degraded and admission.applied:
            reserved_tokens = admission.prompt_tokens + admission.reserved_completion
            reserved_micro = admission.reserved_micro_usd + admission.extra_micro_usd
            delta = {
                "tokens": prompt + completion - reserved_tokens,
                "spend": cost_micro_usd(admission.price, prompt, completion) - reserved_micro,
            }
            fixes = [
                self._correction(a, delta[a.rule.metric])
                for a in admission.applied
                if a.rule.metric != "requests" and delta[a.rule.metric] != 0
            ]
            try:
                await self.backend.adjust(fixes)
                self._backend_ok()
            except LimitsUnavailable as exc:
                self._backend_failed(exc)
                self._add(admission, self._outage_alert(force=True))
        self._observe(admission, "tokens", prompt + completion)
        return self.take_alerts(admission)

    def take_alerts(self, admission: Admission) -> list[LimitAlert]:
        """Alerts raised for this request since they were last taken."""
        new = admission.alerts[admission.alerts_taken :]
        admission.alerts_taken = len(admission.alerts)
        return list(new)

    def meter(self, admission: Admission) -> StreamMeter:
        """A meter that counts a streamed answer against the admission's budgets."""
        from bastion.limits.meter import StreamMeter

        return StreamMeter(self, admission)

    async def extend(self, admission: Admission, tokens: int) -> bool:
        """Reserve ``tokens`` more completion tokens for a stream; False if a hard limit refuses."""
        if tokens <= 0 or not admission.metered:
            return True
        micro = cost_micro_usd(admission.price, 0, tokens)
        charges = [
            self._correction(
                a, tokens if a.rule.metric == "tokens" else micro, hard=a.rule.mode == "hard"
            )
            for a in admission.applied
            if a.rule.metric != "requests"
        ]
        try:
            admitted, results = await self.backend.charge(charges)
        except LimitsUnavailable as exc:
            self._backend_failed(exc)
            self._add(admission, self._outage_alert())
            return self.settings.on_backend_error == "fail_open"
        self._backend_ok()
        if admitted:
            admission.extra_completion_tokens += tokens
            admission.extra_micro_usd += micro
            metered = [a for a in admission.applied if a.rule.metric != "requests"]
            self._soft_alerts(metered, results, admission.alerts)
        return admitted

    # -- health ------------------------------------------------------------------------------

    async def healthy(self) -> bool:
        """Whether the counters answer now (for /readyz)."""
        try:
            await self.backend.ping()
        except LimitsUnavailable as exc:
            self._backend_failed(exc)
            return False
        self._backend_ok()
        return True

    async def readiness(self) -> tuple[bool, str]:
        """A /readyz check (never raises): ready unless the counters are down and fail_closed."""
        ok = await self.healthy()
        if ok:
            return True, f"{self.backend.name} counters reachable"
        if self.settings.on_backend_error == "fail_open":
            return (
                True,
                f"{self.backend.name} counters unreachable; admitting unmetered (fail_open)",
            )
        return False, f"{self.backend.name} counters unreachable; refusing requests (fail_closed)"

    def status(self) -> dict[str, Any]:
        """What /readyz shows: backend, last known health, and what an outage does to requests."""
        ok = self._last_error is None
        return {
            "backend": self.backend.name,
            "healthy": ok,
            "on_backend_error": self.settings.on_backend_error,
            # Fail-open keeps serving (unmetered) through an outage; fail-closed does not.
            "ready": ok or self.settings.on_backend_error == "fail_open",
            "last_error": self._last_error,
            "rules": len(self.settings.rules),
        }

    async def aclose(self) -> None:
        """Release the backend's connections."""
        await self.backend.aclose()

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _key_of(principal: Principal | None) -> str | None:
        if principal is None:
            return None
        if principal.key_id:
            return principal.key_id
        return principal.subject if principal.kind == "service" else None

    def _targets(self, rule: LimitRule, principal: Principal | None, workflow: str | None = None) -> list[str | None]:
        if rule.scope == "global":
            return [None]
        if rule.scope == "workflow":
            if workflow is None or rule.match not in ("*", workflow):
                return []
            # Within its user: one user's workflow id never spends another user's budget.
            return [f"{principal.subject if principal else ANONYMOUS}\n{workflow}"]
        if rule.scope == "user":
            subject = principal.subject if principal else ANONYMOUS
            email = principal.email if principal else None
            if rule.match == "*" or rule.match in (subject, email):
                return [subject]
            return []
        if rule.scope == "key":
            key = self._key_of(principal)
            return [key] if key and rule.match in ("*", key) else []
        if rule.scope == "group":
            groups = principal.groups if principal else ()
            return [g for g in groups if rule.match in ("*", g)]
        tenant = (principal.tenant if principal else None) or NO_TENANT
        return [tenant] if rule.match in ("*", tenant) else []

    def _charge_for(
        self, rule: LimitRule, target: str | None, cost: int, now: float
    ) -> tuple[Applied, Charge]:
        prefix, units, hard = self._compiled[rule.name]
        base = prefix + (subject_digest(target) if target is not None else "*")
        if rule.window in CALENDAR_WINDOWS:
            window_id, end = self._calendar(rule.window, now)
            key = f"{base}:{window_id}"
            left = max(1, math.ceil((end - now) * US))
            applied = Applied(rule, target, key, units, cost, window_end=end)
            return applied, Charge(key, False, units, cost, hard, left)
        window_us = rolling_seconds(rule.window) * US
        return Applied(rule, target, base, units, cost), Charge(
            base, True, units, cost, hard, window_us
        )

    def _calendar(self, window: str, now: float) -> tuple[str, float]:
        # A day or month changes rarely: keep the current one instead of recomputing dates.
        hit = self._windows.get(window)
        if hit is not None and hit[1] <= now < hit[2]:
            return hit[0], hit[2]
        window_id, end = calendar_window(window, now)
        start = calendar_start(window, now)
        self._windows[window] = (window_id, start, end)
        return window_id, end

    def _correction(self, a: Applied, delta: int, hard: bool = False) -> Charge:
        if a.window_end:
            left = max(1, math.ceil((a.window_end - self._clock()) * US))
            return Charge(a.key, False, a.limit_units, delta, hard, left)
        return Charge(a.key, True, a.limit_units, delta, hard, rolling_seconds(a.rule.window) * US)

    def _refusal(self, adm: Admission, results: list[ChargeResult]) -> RateLimited:
        refused = [
            (r.retry_after_seconds, a)
            for a, r in zip(adm.applied, results, strict=True)
            if a.rule.mode == "hard" and not r.allowed
        ]
        wait, worst = max(refused, key=lambda x: x[0])
        retry = max(1, math.ceil(wait))
        headers = dict(adm.headers)
        headers["Retry-After"] = str(retry)
        return RateLimited(
            f"Limit '{worst.rule.name}' reached: {describe_rule(worst.rule, worst.target)}. "
            f"Try again in {retry} s.",
            headers=headers,
        )

    def _soft_alerts(
        self, applied: list[Applied], results: list[ChargeResult], out: list[LimitAlert]
    ) -> None:
        interval = self.settings.soft_alert_interval_seconds
        now = time.monotonic()
        for a, r in zip(applied, results, strict=True):
            if a.rule.mode != "soft" or r.allowed:
                continue
            last = self._soft_sent.get(a.key)
            if last is not None and now - last < interval:
                continue
            self._soft_sent[a.key] = now
            self._soft_sent.move_to_end(a.key)
            if len(self._soft_sent) > MAX_ALERT_MEMORY:
                self._soft_sent.popitem(last=False)
            out.append(
                LimitAlert(
                    kind="soft_limit",
                    message=(
                        f"Soft limit '{a.rule.name}' exceeded: {describe_rule(a.rule, a.target)}."
                    ),
                    rule=a.rule.name,
                    scope=a.rule.scope,
                    subject=a.target,
                    metric=a.rule.metric,
                    window=a.rule.window,
                    limit=a.rule.limit,
                )
            )

    def _headers(self, applied: list[Applied], results: list[ChargeResult]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for metric, suffix in (("requests", "requests"), ("tokens", "tokens")):
            pairs = [
                (a, r) for a, r in zip(applied, results, strict=True) if a.rule.metric == metric
            ]
            if not pairs:
                continue
            a, r = min(
                pairs,
                key=lambda p: (
                    SCOPE_ORDER[p[0].rule.scope],
                    p[0].rule.match == "*",
                    p[0].rule.mode != "hard",
                    p[0].limit_units,
                ),
            )
            headers[f"x-ratelimit-limit-{suffix}"] = str(a.limit_units)
            headers[f"x-ratelimit-remaining-{suffix}"] = str(r.remaining)
            headers[f"x-ratelimit-reset-{suffix}"] = format_reset(r.reset_seconds)
        return headers

    def _observe(self, adm: Admission, metric: str, amount: int) -> None:
        if adm.key_id:
            alert = self._anomaly.observe("key", adm.key_id, metric, amount)
            if alert:
                adm.alerts.append(alert)
        alert = self._anomaly.observe("user", adm.user, metric, amount)
        if alert:
            adm.alerts.append(alert)

    def _outage_alert(self, force: bool = False) -> LimitAlert | None:
        # One alert per interval is enough for a SIEM; one per request would flood the audit log.
        now = time.monotonic()
        last = self._soft_sent.get(OUTAGE_ALERT_KEY)
        if (
            not force
            and last is not None
            and now - last < self.settings.soft_alert_interval_seconds
        ):
            return None
        self._soft_sent[OUTAGE_ALERT_KEY] = now
        return LimitAlert(
            kind="limits_unavailable",
            message="Usage counters could not be reached; the request was served without them."
            if not force
            else "Usage counters could not be reached; this request's usage was not counted.",
            data={"backend": self.backend.name, "on_backend_error": self.settings.on_backend_error},
        )

    @staticmethod
    def _add(adm: Admission, alert: LimitAlert | None) -> None:
        if alert is not None:
            adm.alerts.append(alert)

    def _backend_failed(self, exc: LimitsUnavailable) -> None:
        cause = exc.__cause__
        was_ok = self._last_error is None
        self._last_error = type(cause).__name__ if cause else exc.message
        self._last_error_at = time.time()
        if was_ok:
            # Once per outage: a log line per request would bury everything else.
            log.warning("limits backend %s failed: %s", self.backend.name, self._last_error)

    def _backend_ok(self) -> None:
        if self._last_error is not None:
            log.warning("limits backend %s recovered", self.backend.name)
        self._last_error = None


def _workflow_of(ctx: RequestContext) -> str | None:
    """The request's workflow id, or None; an unusable one is refused rather than ignored."""
    workflow = ctx.state.get(WORKFLOW_STATE)
    if workflow is None:
        return None
    if not isinstance(workflow, str) or not workflow or len(workflow) > MAX_WORKFLOW_ID_CHARS \
            or not workflow.isprintable():
        raise InvalidRequest("The X-Bastion-Workflow-Id header is empty, too long or not printable.",
                             code="invalid_workflow")
    return workflow


def make_backend(
    settings: LimitSettings, clock: Callable[[], float] | None = None
) -> CounterBackend:
    """The counter backend the settings ask for (Redis time unless a clock is injected)."""
    if settings.backend == "redis":
        from bastion.limits.redis_backend import RedisBackend

        return RedisBackend(
            settings.redis_url,
            timeout_seconds=settings.redis_timeout_seconds,
            max_connections=settings.redis_max_connections,
            clock=clock,
        )
    from bastion.limits.memory import MemoryBackend

    if clock is None:
        return MemoryBackend(max_keys=settings.memory_max_keys)
    tick = clock
    return MemoryBackend(max_keys=settings.memory_max_keys, clock_us=lambda: tick() * US)
