"""The decide stage: policy judges each model request, reroutes it to a compliant model, or refuses it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bastion.context import Principal, RequestContext
from bastion.errors import BastionError, PermissionDenied, ServiceUnavailable, UnknownModel
from bastion.policy.model import PolicyDecision, findings_context
from bastion.policy.store import PolicyStore

if TYPE_CHECKING:
    from bastion.settings import ModelSettings

log = logging.getLogger("bastion.policy")

#: ``ctx.state`` key holding the PolicyDecision (protection reads ``.protection`` from it).
POLICY_STATE_KEY = "policy_decision"
#: ``ctx.state`` key the inspect stage may set to its prompt-injection score (0..1).
INJECTION_STATE_KEY = "injection_score"
#: ``ctx.state`` key the transport may set to the request body size in bytes.
REQUEST_BYTES_STATE_KEY = "request_bytes"
#: ``ctx.state`` key the caller's region is read from, when the edge knows it.
CALLER_REGION_STATE_KEY = "caller_region"


class PolicyStage:
    """Decides ``invoke_model`` for the requested model; on ``reroute`` switches to a compliant model."""

    name = "decide"

    def __init__(self, store: PolicyStore, models: Sequence[ModelSettings]) -> None:
        self._store = store
        self._models = {m.name: m for m in models}
        self._order = list(models)

    def _context(self, ctx: RequestContext) -> dict[str, Any]:
        out = findings_context(ctx.findings)
        for key in (INJECTION_STATE_KEY, REQUEST_BYTES_STATE_KEY, CALLER_REGION_STATE_KEY):
            if ctx.state.get(key) is not None:
                out[key] = ctx.state[key]
        return out

    async def __call__(self, ctx: RequestContext) -> None:
        """Decide the request; raise PermissionDenied (403 policy_denied) when policy refuses it."""
        principal = ctx.principal
        if principal is None:
            raise PermissionDenied("No identified caller.", code="policy_denied")
        model = self._models.get(ctx.model or "")
        if model is None:
            raise UnknownModel(param="model")
        engine = self._store.engine  # one engine for the whole decision, even if a reload lands meanwhile
        context = self._context(ctx)
        try:
            decision = engine.decide(engine.request_for_model(principal, model, context))
            if decision.effect == "reroute":
                decision = self._reroute(ctx, principal, decision, model, context)
        except BastionError:
            raise
        except Exception:
            # Fail closed: no decision means no request.
            log.exception("policy engine failed; refusing")
            raise ServiceUnavailable("The request was refused because policy could not be evaluated.") from None
        ctx.decisions.append(decision.to_context_decision())
        ctx.state[POLICY_STATE_KEY] = decision
        decision.raise_if_refused()

    def _reroute(
        self,
        ctx: RequestContext,
        principal: Principal,
        decision: PolicyDecision,
        model: ModelSettings,
        context: dict[str, Any],
    ) -> PolicyDecision:
        """The first model (config order) of the same kind on an allowed provider that policy allows."""
        engine = self._store.engine
        allowed = set(decision.reroute or ())
        for candidate in self._order:
            if candidate.provider not in allowed or candidate.kind != model.kind:
                continue
            if not principal.may_use_model(candidate.name):
                continue
            second = engine.decide(engine.request_for_model(principal, candidate, context))
            if second.allowed:
                ctx.decisions.append(decision.to_context_decision())
                ctx.decide(
                    self.name,
                    "reroute",
                    f"model {model.name} rerouted to {candidate.name} by policy {', '.join(decision.policies)}",
                    from_model=model.name,
                    to_model=candidate.name,
                )
                ctx.model = candidate.name
                return second
        return PolicyDecision(
            allowed=False,
            effect="deny",
            reasons=[*decision.reasons, "No model you may use can receive this request as it stands."],
            policies=decision.policies,
            protection=decision.protection,
            reroute=None,
            require_approval=decision.require_approval,
            version=decision.version,
        )
