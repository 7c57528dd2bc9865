"""The policy engine: Cedar's semantics decide every request; annotations add reroute, approval and protection.

A policy set is split per action at load, and per principal and resource
scope at request time (bastion.policy.index), so a request is evaluated only
against the policies whose scope can match it, less those whose first test is
false for it (bastion.policy.guards). The slice is evaluated by the policies
compiled at load (bastion.policy.evaluate); Cedar itself is called when a
policy in it is not compiled or fails for the request. Two kinds of set exist: the
authorization set (permit / forbid, with deny, reroute and
require_approval forbids) and the protection set (policies with
``@applies_to``, all evaluated as permits so that every match is reported).
Decisions are pure functions of the request and the policy version, so
identical requests are answered from a bounded cache.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import cedarpy

from bastion.context import Principal
from bastion.errors import ConfigError
from bastion.policy.config import PolicySettings
from bastion.policy.encode import Encoded, Encoder, ProviderTarget
from bastion.policy.evaluate import Outcome
from bastion.policy.index import ScopeIndex, put_bounded
from bastion.policy.model import (
    DEFAULT_DENY_ID,
    EVALUATION_ERROR_ID,
    Effect,
    PolicyDecision,
    PolicyRequest,
    ResourceRef,
    make_decision,
)
from bastion.policy.schema import ACTIONS
from bastion.policy.source import (
    PROTECTION_STRICTNESS,
    CompiledPolicy,
    CompileResult,
    PolicySource,
    compile_sources,
    default_sources,
    read_sources,
)

if TYPE_CHECKING:
    from bastion.settings import ModelSettings, ProviderSettings

log = logging.getLogger("bastion.policy")

#: Parsed (principal, resource) entity sets kept per engine.
MAX_PARSED_ENTITIES = 4096

_ERROR_POLICY = re.compile(r"policy `([^`]+)`")
_TARGETS = attrgetter("targets")


_Authz = Outcome


_NOTHING = _Authz(False, (), ())


def _clean_allow(authz: _Authz) -> bool:
    """Allowed with no policy failing: Cedar skips a failing forbid, which must not open a provider."""
    return authz.allowed and not authz.errors


@dataclass(frozen=True, slots=True)
class Explanation:
    """A decision together with every policy that matched the request."""

    decision: PolicyDecision
    matched: list[CompiledPolicy]


def _policy_set(policies: Iterable[CompiledPolicy], *, as_permit: bool = False) -> cedarpy.PolicySet:
    statics: dict[str, Any] = {}
    for p in policies:
        est = dict(p.est)
        if as_permit:
            est["effect"] = "permit"
        statics[p.id] = est
    return cedarpy.PolicySet.from_json_str(
        json.dumps({"staticPolicies": statics, "templates": {}, "templateLinks": []})
    )


def _for_action(policies: Sequence[CompiledPolicy], action: str) -> list[CompiledPolicy]:
    return [p for p in policies if p.actions is None or action in p.actions]


def load_sources(settings: PolicySettings) -> tuple[list[PolicySource], list[Any]]:
    """The sources ``settings`` names (defaults first) and any problems reading them."""
    problems: list[Any] = []
    sources = default_sources() if settings.include_defaults else []
    sources += read_sources(settings.paths, settings.max_file_bytes, problems)
    return sources, problems


def compile_settings(settings: PolicySettings) -> CompileResult:
    """Read and compile the policy set ``settings`` names, collecting every problem."""
    sources, problems = load_sources(settings)
    return compile_sources(sources, disabled=settings.disable, max_policies=settings.max_policies, problems=problems)


class PolicyEngine:
    """An immutable, compiled policy set that answers PolicyRequests."""

    def __init__(
        self,
        compiled: CompileResult,
        settings: PolicySettings | None = None,
        providers: Sequence[ProviderSettings] = (),
        *,
        compiled_evaluator: bool = True,
    ) -> None:
        if not compiled.ok:
            raise ConfigError("invalid policies:\n  " + "\n  ".join(str(p) for p in compiled.problems))
        self.settings = settings or PolicySettings()
        self.version = compiled.version
        self.policies: tuple[CompiledPolicy, ...] = tuple(compiled.policies)
        self._by_id = {p.id: p for p in self.policies}
        #: The sentence each policy gives when it decides (fixed for a policy, so made once).
        self._reasons = {p.id: self._reason(p) for p in self.policies}
        #: Protection policy -> (what it applies to, its action, how strict that is).
        self._actions = {
            p.id: (p.applies_to, p.effect, PROTECTION_STRICTNESS[p.effect])
            for p in self.policies
            if p.kind == "protection"
        }
        self._zone = ZoneInfo(self.settings.timezone)
        self._providers: dict[str, ProviderSettings] = {p.name: p for p in providers}
        authz = [p for p in self.policies if p.kind == "authz"]
        protection = [p for p in self.policies if p.kind == "protection"]
        self._authz: dict[str, ScopeIndex] = {}
        self._protection: dict[str, ScopeIndex] = {}
        self._everything: dict[str, cedarpy.PolicySet | None] = {}
        for action in ACTIONS:
            a, pr = _for_action(authz, action), _for_action(protection, action)
            self._authz[action] = ScopeIndex(a, action=action)
            self._protection[action] = ScopeIndex(pr, as_permit=True, action=action)
            self._everything[action] = _policy_set(a + pr, as_permit=True) if a or pr else None
        self._encoder = Encoder(self._zone)
        self._parsed: dict[tuple[Any, ...], cedarpy.Entities] = OrderedDict()
        self._provider_refs: dict[tuple[Any, ...], ResourceRef] = OrderedDict()
        self._model_refs: dict[tuple[Any, ...], ResourceRef] = OrderedDict()
        #: (current provider, the reroutes' targets) -> the providers a reroute may pick from.
        self._candidates: dict[tuple[Any, ...], list[ProviderTarget]] = OrderedDict()
        #: The registry, in order: each provider encoded as the resource and provider of a reroute.
        self._targets = [self._encoder.target(name, self._provider_ref(p), p) for name, p in self._providers.items()]
        self._cache: dict[tuple[Any, ...], Any] = OrderedDict()
        self._cache_size = self.settings.decision_cache_size
        #: Evaluate with compiled rules where they apply (False: every evaluation is a Cedar call).
        self._compiled = compiled_evaluator
        #: Slices evaluated, and how many of them by a Cedar call (approximate under threads; for monitoring).
        self.evaluations = 0
        self.cedar_calls = 0

    @classmethod
    def load(
        cls, settings: PolicySettings, *, providers: Sequence[ProviderSettings] = (), compiled_evaluator: bool = True
    ) -> PolicyEngine:
        """Compile the policies ``settings`` names; raise ConfigError listing every problem."""
        return cls(compile_settings(settings), settings, providers, compiled_evaluator=compiled_evaluator)

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        settings: PolicySettings | None = None,
        providers: Sequence[ProviderSettings] = (),
        name: str = "<policies>",
        compiled_evaluator: bool = True,
    ) -> PolicyEngine:
        """An engine from Cedar text (plus the shipped defaults when settings include them)."""
        settings = settings or PolicySettings(include_defaults=False)
        sources = default_sources() if settings.include_defaults else []
        sources.append(PolicySource(name, text))
        compiled = compile_sources(sources, disabled=settings.disable)
        return cls(compiled, settings, providers, compiled_evaluator=compiled_evaluator)

    @property
    def providers(self) -> dict[str, ProviderSettings]:
        """The provider registry this engine routes among."""
        return dict(self._providers)

    def policy(self, policy_id: str) -> CompiledPolicy | None:
        """The policy with this id, if any."""
        return self._by_id.get(policy_id)

    # -- evaluation ---------------------------------------------------------

    def _remember(self, key: tuple[Any, ...], value: Any) -> None:
        # Oldest first: dicts keep insertion order, so this is a cheap FIFO bound.
        put_bounded(self._cache, key, value, self._cache_size)

    def _run(self, index: ScopeIndex, enc: Encoded) -> _Authz | None:
        """Evaluate the slice of ``index`` this request can match (None when the slice is empty).

        The compiled evaluator answers when it can; Cedar decides when a policy in the
        slice is not compiled or fails for this request (its error report is then Cedar's).
        """
        mask = index.mask_of(enc)
        if not mask:
            return None
        self.evaluations += 1
        if self._compiled:
            env = enc.env
            if env is not None:
                out = index.evaluate(mask, env, enc.guards)
                if out is not None:
                    return out
        return self._cedar(index, mask, enc)

    def _cedar(self, index: ScopeIndex, mask: int, enc: Encoded) -> _Authz:
        """The slice ``mask`` of ``index`` evaluated by a Cedar call."""
        pset = index.policy_set(mask)
        if pset is None:  # pragma: no cover - a non-empty mask always has a set
            return _NOTHING
        self.cedar_calls += 1
        res = cedarpy.is_authorized({**enc.cedar_request, "context": enc.context_json}, pset, self._entities(enc))
        order = index.order
        fired = sorted(res.diagnostics.reasons, key=lambda i: order.get(i, len(order)))
        return _Authz(res.allowed, tuple(fired), tuple(res.diagnostics.errors))

    def _entities(self, enc: Encoded) -> cedarpy.Entities:
        # Parsing entities is a third of a Cedar call; the same caller and resource recur.
        key = enc.key[1:3]
        ents = self._parsed.get(key)
        if ents is None:
            ents = cedarpy.Entities.from_json_str(enc.entities_json)
            put_bounded(self._parsed, key, ents, MAX_PARSED_ENTITIES)
        return ents

    def _authorize(self, action: str, enc: Encoded) -> _Authz:
        if self._cache_size <= 0:
            return self._run(self._authz[action], enc) or _NOTHING
        key = ("authz", *enc.key)
        hit = self._cache.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        result = self._run(self._authz[action], enc) or _NOTHING
        self._remember(key, result)
        return result

    def decide(self, request: PolicyRequest) -> PolicyDecision:
        """Decide one request. Never raises for a policy's sake: failures refuse (fail closed)."""
        if request.action not in ACTIONS:
            return self._refuse([f"Unknown action {request.action!r}."], [DEFAULT_DENY_ID])
        enc = self._encoder.encode(request)
        if self._cache_size <= 0:
            return self._decide(request, enc)  # nothing else holds it, no copy needed
        hit = self._cache.get(enc.key)
        if hit is not None:
            return hit.copy()  # type: ignore[no-any-return]
        decision = self._decide(request, enc)
        self._remember(enc.key, decision)
        return decision.copy()

    def _refuse(self, reasons: list[str], policies: list[str], effect: Effect = "deny") -> PolicyDecision:
        return make_decision(False, effect, reasons, policies, {}, None, False, self.version)

    def _reason(self, p: CompiledPolicy) -> str:
        if p.reason:
            return p.reason
        verb = "allows" if p.effect == "allow" else "refuses"
        return f"Policy {p.id} ({p.location}) {verb} this request."

    def _decide(self, request: PolicyRequest, enc: Encoded) -> PolicyDecision:
        if self._cache_size > 0 or not self._compiled:
            authz = self._authorize(request.action, enc)
        else:
            # self._authorize, uncached, with self._run inlined: every uncached decision starts here.
            index = self._authz[request.action]
            mask = index.mask_of(enc)
            if not mask:
                authz = _NOTHING
            else:
                self.evaluations += 1
                env = enc.env
                out = None if env is None else index.evaluate(mask, env, enc.guards)
                authz = self._cedar(index, mask, enc) if out is None else out
        if authz.errors:
            # Cedar skips a policy that errors; a skipped forbid would let the request through.
            ids = [m for e in authz.errors for m in _ERROR_POLICY.findall(e)] or [EVALUATION_ERROR_ID]
            log.warning("policy evaluation error (refusing): %s", "; ".join(authz.errors))
            return self._refuse(
                ["A policy could not be evaluated for this request, so it was refused; tell your administrator."],
                [EVALUATION_ERROR_ID, *ids],
            )
        by_id, reason_of = self._by_id, self._reasons
        if authz.allowed:
            policies = [i for i in authz.fired if i in by_id]
            return self._protect(request, enc, True, "allow", [reason_of[i] for i in policies], policies, None, False)
        # The forbids that matched, by what they do (one pass, in the order they were written).
        hard: list[CompiledPolicy] = []
        reroutes: list[CompiledPolicy] = []
        approvals: list[CompiledPolicy] = []
        fired = False
        for i in authz.fired:
            if i not in by_id:
                continue
            fired = True
            p = by_id[i]
            if p.effect == "deny":
                hard.append(p)
            elif p.effect == "reroute":
                reroutes.append(p)
            elif p.effect == "require_approval":
                approvals.append(p)
        if not fired:
            return self._refuse(
                [
                    f"No policy allows you to {request.action.replace('_', ' ')} "
                    f"{request.resource.type.removeprefix('Bastion::').lower()} {request.resource.id!r}. "
                    "Ask your administrator for access."
                ],
                [DEFAULT_DENY_ID],
            )
        ids = [p.id for p in hard + reroutes + approvals]
        if hard:
            # Only the hard refusals tell the user something they can act on; all are recorded.
            return self._refuse([reason_of[p.id] for p in hard], ids)
        reasons = [reason_of[i] for i in ids]
        reroute: list[str] | None = None
        effect: Effect = "require_approval"
        if reroutes:
            reroute = self._reroute_candidates(enc, reroutes)
            if not reroute:
                reasons.append("No configured provider may receive this request as it stands.")
                return self._refuse(reasons, ids)
            effect = "reroute"
        return self._protect(request, enc, False, effect, reasons, ids, reroute, bool(approvals))

    def _reroute_candidates(self, enc: Encoded, reroutes: list[CompiledPolicy]) -> list[str]:
        """The providers (registry order) that meet every reroute's targets and would take this request."""
        current = enc.provider_name
        targets = tuple(map(_TARGETS, reroutes))
        # The registry is fixed for this engine, so which providers meet the targets is too.
        key = (current, targets)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = [
                t
                for t in self._targets
                if t.name != current and all(_matches_targets(t.info, selectors) for selectors in targets)
            ]
            put_bounded(self._candidates, key, candidates, MAX_PARSED_ENTITIES)
        if not candidates:
            return []
        # The same request, for each provider: invoke_model on it, with it as context.provider.
        if self._cache_size > 0:
            return [
                t.name
                for t in candidates
                if _clean_allow(self._authorize("invoke_model", self._encoder.for_target(enc, t)))
            ]
        index = self._authz["invoke_model"]
        asker = self._encoder.asker(enc) if self._compiled else None
        base = enc.env if asker is not None else None
        # What the guards let through depends on the context and the principal, not on the provider
        # asked about (when no guard reads it): found once for all the candidates.
        passing = index.passing(base, enc.guards) if base is not None else None
        out: list[str] = []
        for t in candidates:
            mask = index.target_mask(enc, t)
            if not mask:
                continue
            self.evaluations += 1
            ok: bool | None = None
            if asker is not None:
                env = asker.env_for(t)
                if env is not None:
                    # Only whether it is allowed matters: the first matching forbid settles it.
                    ok = index.allows(mask, env, passing)
            if ok is None:
                ok = _clean_allow(self._cedar(index, mask, self._encoder.for_target(enc, t)))
            if ok:
                out.append(t.name)
        return out

    def _protect(
        self,
        request: PolicyRequest,
        enc: Encoded,
        allowed: bool,
        effect: Effect,
        reasons: list[str],
        policies: list[str],
        reroute: list[str] | None,
        require_approval: bool,
    ) -> PolicyDecision:
        """The decision with the protection policies applied to the data present (refused if one blocks)."""
        version = self.version
        classes, types = enc.data_classes, enc.entity_types
        # Protection applies to data that is present; with none found there is nothing to choose.
        if not classes and not types:
            return make_decision(allowed, effect, reasons, policies, {}, reroute, require_approval, version)
        res = self._run(self._protection[request.action], enc)
        if res is None:
            return make_decision(allowed, effect, reasons, policies, {}, reroute, require_approval, version)
        if res.errors:
            log.warning("protection policy error (refusing): %s", "; ".join(res.errors))
            return self._refuse(
                ["A data protection policy could not be evaluated, so the request was refused."],
                [EVALUATION_ERROR_ID],
            )
        present = set(classes).union(types)
        protection: dict[str, str] = {}
        blockers: list[str] = []
        applied: list[str] = []
        actions = self._actions
        for pid in res.fired:
            if pid not in actions:
                continue
            applies_to, action, strictness = actions[pid]
            hit = False
            for k in applies_to:
                if k in present:
                    hit = True
                    # The strictest action wins.
                    if k not in protection or strictness > PROTECTION_STRICTNESS[protection[k]]:
                        protection[k] = action
            if hit:
                applied.append(pid)
                if action == "block":
                    blockers.append(pid)
        if blockers:
            return self._refuse([self._reasons[i] for i in blockers], blockers)
        for i in applied:
            if i not in policies:
                policies.append(i)  # the list is this decision's own
        return make_decision(allowed, effect, reasons, policies, protection, reroute, require_approval, version)

    def _provider_ref(self, provider: Any) -> ResourceRef:
        # One ResourceRef per provider, so its encoding is remembered across requests.
        rkey = (provider.name, provider.tier, provider.region)
        ref = self._provider_refs.get(rkey)
        if ref is None:
            ref = ResourceRef.provider(provider.name, tier=provider.tier, region=provider.region)
            put_bounded(self._provider_refs, rkey, ref, MAX_PARSED_ENTITIES)
        return ref

    def _provider_allowed(self, principal: Principal, provider: Any, context: Any) -> bool:
        ctx = dict(context)
        ctx["provider"] = provider
        req = PolicyRequest(principal, "invoke_model", self._provider_ref(provider), ctx)
        return _clean_allow(self._authorize("invoke_model", self._encoder.encode(req)))

    # -- helpers for routing and listing -----------------------------------

    def allowed_providers(
        self,
        principal: Principal,
        data_classes: Iterable[str],
        providers: Iterable[ProviderSettings] | None = None,
        *,
        context: dict[str, Any] | None = None,
    ) -> list[ProviderSettings]:
        """The providers (registry order) that policy lets receive this principal's data."""
        ctx = dict(context or {})
        ctx["data_classes"] = list(data_classes)
        pool = list(self._providers.values()) if providers is None else list(providers)
        return [p for p in pool if self._provider_allowed(principal, p, ctx)]

    def models_for(
        self, principal: Principal, models: Iterable[ModelSettings], *, context: dict[str, Any] | None = None
    ) -> list[ModelSettings]:
        """The models this principal may invoke (for GET /v1/models); unknown providers are left out."""
        out = []
        for m in models:
            prov = self._providers.get(m.provider)
            if prov is None or not principal.may_use_model(m.name):
                continue
            ctx = dict(context or {})
            ctx.update(provider=prov, model=m.name)
            req = PolicyRequest(principal, "invoke_model", self._model_ref(m), ctx)
            if self.decide(req).allowed:
                out.append(m)
        return out

    def request_for_model(
        self, principal: Principal, model: ModelSettings, context: dict[str, Any] | None = None
    ) -> PolicyRequest:
        """The invoke_model request for ``model``, with its provider's attributes in the context."""
        ctx = dict(context or {})
        # A provider missing from the registry is treated as the least trusted kind (fail closed).
        unknown = {"name": model.provider, "tier": "consumer", "trains_on_inputs": True}
        ctx.setdefault("provider", self._providers.get(model.provider) or unknown)
        ctx.setdefault("model", model.name)
        return PolicyRequest(principal, "invoke_model", self._model_ref(model), ctx)

    def _model_ref(self, model: ModelSettings) -> ResourceRef:
        # One ResourceRef per model, so its encoding is found by identity.
        key = (model.name, model.provider, model.kind)
        ref = self._model_refs.get(key)
        if ref is None:
            ref = ResourceRef.model(model.name, provider=model.provider, kind=model.kind)
            put_bounded(self._model_refs, key, ref, MAX_PARSED_ENTITIES)
        return ref

    def explain(self, request: PolicyRequest) -> Explanation:
        """The decision plus every policy whose conditions matched (permits, forbids, protection)."""
        decision = self.decide(request)
        pset = self._everything.get(request.action)
        matched: list[CompiledPolicy] = []
        if pset is not None:
            enc = self._encoder.encode(request)
            res = cedarpy.is_authorized({**enc.cedar_request, "context": enc.context_json}, pset, enc.entities_json)
            matched = [self._by_id[i] for i in res.diagnostics.reasons if i in self._by_id]
            order = {p.id: n for n, p in enumerate(self.policies)}
            matched.sort(key=lambda p: order[p.id])
        return Explanation(decision=decision, matched=matched)


def _matches_targets(info: dict[str, Any], targets: Sequence[str]) -> bool:
    """Whether a provider (its ``provider_info``) satisfies at least one ``@target`` selector (none: any)."""
    if not targets:
        return True
    for t in targets:
        name, _, value = t.partition(":")
        if (
            (name == "tier" and info["tier"] == value)
            or (name == "region" and fnmatchcase(info["region"], value))
            or (name == "provider" and info["name"] == value)
            or (name == "cert" and value in info["certifications"])
            or (name == "baa" and info["baa"])
            or (name == "zero_data_retention" and info["zero_data_retention"])
            or (name == "no_training" and not info["trains_on_inputs"])
        ):
            return True
    return False
