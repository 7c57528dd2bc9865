"""A scope index: for one request, only the policies whose scope can match it are evaluated.

Cedar checks every policy of a set, so a 200-policy set costs 200 checks per
request. Most operator policies name a group, a user or a model in their
scope; those cannot match a request from someone outside the group or for
another model. The index keeps, per scope key, a bitmask of the policies that
carry it, and builds (and remembers) a small Cedar set per distinct mask.

Exactness rests on how Bastion builds entities: a principal's only ancestors
are its groups (groups have no parents), and a model's only ancestor is its
provider. Under that shape ``principal in Group::"g"`` holds exactly when g is
one of the principal's groups, and ``resource in Provider::"p"`` exactly when
the resource is p or a model of p. So the mask is not only a bound: a scope
keyed by itself (``==``, ``in``, ``is`` alone, or none) holds for every policy
in the mask, and the compiled rules do not test it again.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import cedarpy

from bastion.policy.evaluate import CompiledRule, Env, Outcome, Unsupported, allows, authorize, compile_policy
from bastion.policy.guards import GuardIndex, guards_of
from bastion.policy.schema import NAMESPACE
from bastion.policy.source import CompiledPolicy

#: Policy sets remembered per index (one per distinct scope mask seen).
DEFAULT_MAX_SETS = 2048

_NO_MATCH = Outcome(False, ())
_UNKNOWN: Any = object()

_GROUP = f"{NAMESPACE}::Group"
_PROVIDER = f"{NAMESPACE}::Provider"
_MODEL = f"{NAMESPACE}::Model"

Key = tuple[str, ...]


def _principal_keys(scope: dict[str, Any]) -> list[Key]:
    """The index keys under which a principal scope can match; [("*",)] for any principal."""
    op = scope.get("op", "All")
    ent = scope.get("entity") or {}
    if op == "All":
        return [("*",)]
    if op == "==":
        return [("eq", str(ent.get("type")), str(ent.get("id")))]
    if op == "in":
        if ent.get("type") == _GROUP:
            return [("group", str(ent.get("id")))]
        return [("eq", str(ent.get("type")), str(ent.get("id")))]
    if op == "is":
        inner = scope.get("in")
        if inner and (inner.get("entity") or {}).get("type") == _GROUP:
            # Type is checked by Cedar; the group narrows the slice.
            return [("group", str(inner["entity"].get("id")))]
        if inner:
            ie = inner.get("entity") or {}
            return [("eq", str(ie.get("type")), str(ie.get("id")))]
        return [("is", str(scope.get("entity_type", "")))]
    return [("*",)]


def _resource_keys(scope: dict[str, Any]) -> list[Key]:
    """The index keys under which a resource scope can match; [("*",)] for any resource."""
    op = scope.get("op", "All")
    ent = scope.get("entity") or {}
    if op == "All":
        return [("*",)]
    if op == "==":
        return [("eq", str(ent.get("type")), str(ent.get("id")))]
    if op == "in":
        if ent.get("type") == _PROVIDER:
            return [("provider", str(ent.get("id")))]
        return [("eq", str(ent.get("type")), str(ent.get("id")))]
    if op == "is":
        inner = scope.get("in")
        if inner:
            ie = inner.get("entity") or {}
            if ie.get("type") == _PROVIDER:
                return [("provider", str(ie.get("id")))]
            return [("eq", str(ie.get("type")), str(ie.get("id")))]
        return [("is", str(scope.get("entity_type", "")))]
    return [("*",)]


def put_bounded(store: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Insert into a dict kept to ``limit`` entries by dropping the oldest (safe if another thread races).

    Give it an OrderedDict: dropping its oldest entry costs the same however many came and went
    (a plain dict's first entry is found by walking past the slots of the entries dropped before).
    """
    if limit <= 0:
        return
    if key not in store:
        while len(store) >= limit:
            try:
                if isinstance(store, OrderedDict):
                    store.popitem(last=False)
                else:
                    store.pop(next(iter(store)), None)
            except (KeyError, RuntimeError, StopIteration):
                # Another thread changed the dict meanwhile; the bound is approximate, never unbounded.
                break
    store[key] = value


def _keyed_exactly(scope: Any) -> bool:
    """Whether a principal or resource scope holds exactly for the requests its index key selects.

    ``==`` and ``in`` an entity, ``is`` a type, and no scope at all: the key is the scope itself
    (see the module docstring), so a policy in a request's mask has its scope matched already.
    ``is ... in ...`` is keyed by the ``in`` part alone, so its type is still tested.
    """
    if not isinstance(scope, dict):
        return False
    op = scope.get("op")
    if op == "All":
        return set(scope) == {"op"}
    if op in ("==", "in"):
        return set(scope) == {"op", "entity"}
    return op == "is" and set(scope) == {"op", "entity_type"}


def _compile(pol: CompiledPolicy, as_permit: bool, action: str | None) -> CompiledRule | None:
    # Rules are only asked about requests whose mask holds them: the scopes keyed exactly are not tested again.
    decided = [v for v in ("principal", "resource") if _keyed_exactly(pol.est.get(v, {"op": "All"}))]
    try:
        return compile_policy(pol.id, pol.est, as_permit=as_permit, action=action, decided=decided)
    except (Unsupported, RecursionError):
        return None


class ScopeIndex:
    """Bitmasks of policies by principal and resource scope; the compiled rules and Cedar set of each mask."""

    def __init__(
        self,
        policies: Sequence[CompiledPolicy],
        *,
        as_permit: bool = False,
        max_sets: int = DEFAULT_MAX_SETS,
        action: str | None = None,
    ):
        """``action``: every request evaluated with this index is for this action."""
        self.policies = tuple(policies)
        self._as_permit = as_permit
        self._max_sets = max_sets
        self._p: dict[Key, int] = {}
        self._r: dict[Key, int] = {}
        for i, pol in enumerate(self.policies):
            bit = 1 << i
            for k in _principal_keys(pol.est.get("principal") or {}):
                self._p[k] = self._p.get(k, 0) | bit
            for k in _resource_keys(pol.est.get("resource") or {}):
                self._r[k] = self._r.get(k, 0) | bit
        # The same bits split by kind of key, read without building a key per request.
        self._p_any = self._p.get(("*",), 0)
        self._p_uid = {(k[1], k[2]): b for k, b in self._p.items() if k[0] == "eq"}
        self._p_type = {k[1]: b for k, b in self._p.items() if k[0] == "is"}
        self._p_group = {k[1]: b for k, b in self._p.items() if k[0] == "group"}
        self._r_any = self._r.get(("*",), 0)
        self._r_uid = {(k[1], k[2]): b for k, b in self._r.items() if k[0] == "eq"}
        self._r_type = {k[1]: b for k, b in self._r.items() if k[0] == "is"}
        self._r_provider = {k[1]: b for k, b in self._r.items() if k[0] == "provider"}
        #: Key of this index's masks in the masks kept with encodings.
        self._me = id(self)
        self._sets: dict[int, cedarpy.PolicySet] = OrderedDict()
        #: Position of each policy, so reasons read in the order the policies were written.
        self.order = {pol.id: i for i, pol in enumerate(self.policies)}
        self._compiled = [_compile(pol, as_permit, action) for pol in self.policies]
        self._rules: dict[int, tuple[CompiledRule, ...] | None] = OrderedDict()
        self._plans: dict[int, Outcome | tuple[CompiledRule, ...] | None] = OrderedDict()
        self._guards = GuardIndex([guards_of(pol.est) for pol in self.policies])

    def holding(self, mask: int, env: Env) -> int:
        """``mask`` less the policies whose first condition is certainly false for this request (guards)."""
        return self._guards.holding(mask, env)

    def mask(
        self,
        principal_type: str,
        principal_id: str,
        groups: Sequence[str],
        resource_type: str,
        resource_id: str,
        provider: str,
    ) -> int:
        """The policies whose scopes can match this principal and resource."""
        return self.principal_mask(principal_type, principal_id, groups) & self.resource_mask(
            resource_type, resource_id, provider
        )

    def principal_mask(self, principal_type: str, principal_id: str, groups: Sequence[str]) -> int:
        """The policies whose principal scope can match this principal."""
        return self._principal_mask((principal_type, principal_id), groups)

    def _principal_mask(self, uid: tuple[str, str], groups: Sequence[str]) -> int:
        pm = self._p_any | self._p_uid.get(uid, 0) | self._p_type.get(uid[0], 0)
        by_group = self._p_group
        if by_group:
            for g in groups:
                pm |= by_group.get(g, 0)
        return pm

    def resource_mask(self, resource_type: str, resource_id: str, provider: str) -> int:
        """The policies whose resource scope can match this resource."""
        return self._resource_mask((resource_type, resource_id), provider)

    def _resource_mask(self, uid: tuple[str, str], provider: str) -> int:
        rtype = uid[0]
        rm = self._r_any | self._r_uid.get(uid, 0) | self._r_type.get(rtype, 0)
        if rtype == _PROVIDER:
            rm |= self._r_provider.get(uid[1], 0)
        elif rtype == _MODEL and provider:
            rm |= self._r_provider.get(provider, 0)
        return rm

    def _principal_mask_of(self, enc: Any) -> int:
        """The principal's scope mask, kept with its encoding."""
        me = self._me
        pmasks = enc.principal_masks
        pm = pmasks.get(me)
        if pm is None:
            pm = pmasks[me] = self._principal_mask(enc.principal_uid, enc.principal_groups)
        return pm  # type: ignore[no-any-return]

    def mask_of(self, enc: Any) -> int:
        """``mask`` for an encoded request; the masks are kept with the principal's and resource's encodings."""
        me = self._me
        pm = self._principal_mask_of(enc)
        if not pm:
            return 0
        rmasks = enc.resource_masks
        rm = rmasks.get(me)
        if rm is None:
            rm = rmasks[me] = self._resource_mask(enc.resource_uid, enc.resource_provider)
        return pm & rm  # type: ignore[no-any-return]

    def target_mask(self, enc: Any, target: Any) -> int:
        """``mask_of`` the request ``enc`` asked again for provider ``target`` (encode.ProviderTarget)."""
        me = self._me
        pm = self._principal_mask_of(enc)
        if not pm:
            return 0
        ents = target.resource
        rm = ents.masks.get(me)
        if rm is None:
            rm = ents.masks[me] = self._resource_mask(ents.uid, target.resource_provider)
        return pm & rm  # type: ignore[no-any-return]

    def evaluate(self, mask: int, env: Env, memo: dict[GuardIndex, int] | None = None) -> Outcome | None:
        """Cedar's decision over the policies in ``mask`` by the compiled rules, after the guards;
        None when Cedar must decide (a policy here is not compiled, or one failed for this request).

        ``mask``: ``mask_of`` the request ``env`` is (or part of it): the rules take its scopes as matched.
        ``memo``: kept with the request (GuardIndex.holding).
        """
        live = self._guards.holding(mask, env, memo)
        if not live:
            return _NO_MATCH
        plan = self._plans.get(live, _UNKNOWN)
        if plan is _UNKNOWN:
            plan = self._plan(live)
        if plan is None:
            return None
        if type(plan) is Outcome:
            return plan
        return authorize(plan, env)

    def passing(self, env: Env, memo: dict[GuardIndex, int] | None = None) -> int | None:
        """What the guards let through for this request, to be given to ``allows`` for the same request
        asked about another provider; None when the guards read the provider (each must be asked).
        ``memo``: as for ``evaluate``."""
        return self._guards.passing(env, memo) if self._guards.provider_free else None

    def allows(self, mask: int, env: Env, passing: int | None = None) -> bool | None:
        """``evaluate``'s allowed-with-no-policy-failing, stopping at the first matching forbid;
        None when Cedar must decide. ``mask`` as for ``evaluate``; ``passing``: ``passing(e)`` for a
        request ``e`` that differs from ``env`` in its resource and ``context.provider`` alone."""
        live = self._guards.holding(mask, env) if passing is None else self._guards.within(mask, passing)
        if not live:
            return False
        plan = self._plans.get(live, _UNKNOWN)
        if plan is _UNKNOWN:
            plan = self._plan(live)
        if plan is None:
            return None
        if type(plan) is Outcome:
            return plan.allowed
        return allows(plan, env)

    def _plan(self, mask: int) -> Outcome | tuple[CompiledRule, ...] | None:
        """How to decide ``mask``: its rules, or the answer itself when no rule has anything left
        to test (each matches every request whose mask holds it); None when Cedar must decide.

        Made on the first request with this mask (``rules``, in one pass), then remembered.
        """
        compiled = self._compiled
        rules: list[CompiledRule] = []
        tested = False
        plan: Outcome | tuple[CompiledRule, ...] | None = None
        m = mask
        while m:
            low = m & -m
            rule = compiled[low.bit_length() - 1]
            if rule is None:
                break
            if rule.steps:
                tested = True
            rules.append(rule)
            m ^= low
        else:
            if tested:
                plan = tuple(rules)
            else:
                forbids: list[str] = []
                permits: list[str] = []
                for r in rules:
                    (forbids if r.forbid else permits).append(r.id)
                plan = Outcome(False, tuple(forbids)) if forbids else Outcome(bool(permits), tuple(permits))
        put_bounded(self._plans, mask, plan, self._max_sets)
        return plan

    @property
    def unsupported(self) -> list[str]:
        """Ids of the policies only Cedar evaluates (they use something the compiled evaluator does not)."""
        return [pol.id for pol, rule in zip(self.policies, self._compiled, strict=True) if rule is None]

    def rules(self, mask: int) -> tuple[CompiledRule, ...] | None:
        """The compiled rules of the policies in ``mask``, in order; None if any of them needs Cedar."""
        try:
            return self._rules[mask]
        except KeyError:
            pass
        out: list[CompiledRule] = []
        rules: tuple[CompiledRule, ...] | None = None
        m = mask
        while m:
            low = m & -m
            rule = self._compiled[low.bit_length() - 1]
            if rule is None:
                break
            out.append(rule)
            m ^= low
        else:
            rules = tuple(out)
        put_bounded(self._rules, mask, rules, self._max_sets)
        return rules

    def policy_set(self, mask: int) -> cedarpy.PolicySet | None:
        """The Cedar set of the policies in ``mask`` (None when it is empty), built once per mask."""
        if not mask:
            return None
        pset = self._sets.get(mask)
        if pset is None:
            statics: dict[str, Any] = {}
            for i, pol in enumerate(self.policies):
                if mask >> i & 1:
                    est = pol.est
                    if self._as_permit and est.get("effect") != "permit":
                        est = {**est, "effect": "permit"}
                    statics[pol.id] = est
            pset = cedarpy.PolicySet.from_json_str(
                json.dumps({"staticPolicies": statics, "templates": {}, "templateLinks": []})
            )
            put_bounded(self._sets, mask, pset, self._max_sets)
        return pset
