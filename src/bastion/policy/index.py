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
the resource is p or a model of p.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import cedarpy

from bastion.policy.evaluate import CompiledRule, Env, Outcome, Unsupported, authorize, compile_policy
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


def _compile(pol: CompiledPolicy, as_permit: bool, action: str | None) -> CompiledRule | None:
    try:
        return compile_policy(pol.id, pol.est, as_permit=as_permit, action=action)
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
        self._sets: dict[int, cedarpy.PolicySet] = OrderedDict()
        #: Position of each policy, so reasons read in the order the policies were written.
        self.order = {pol.id: i for i, pol in enumerate(self.policies)}
        self._compiled = [_compile(pol, as_permit, action) for pol in self.policies]
        self._rules: dict[int, tuple[CompiledRule, ...] | None] = OrderedDict()
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
        p = self._p
        pm = p.get(("*",), 0) | p.get(("eq", principal_type, principal_id), 0) | p.get(("is", principal_type), 0)
        for g in groups:
            pm |= p.get(("group", g), 0)
        return pm

    def resource_mask(self, resource_type: str, resource_id: str, provider: str) -> int:
        """The policies whose resource scope can match this resource."""
        r = self._r
        rm = r.get(("*",), 0) | r.get(("eq", resource_type, resource_id), 0) | r.get(("is", resource_type), 0)
        if resource_type == _PROVIDER:
            rm |= r.get(("provider", resource_id), 0)
        elif resource_type == _MODEL and provider:
            rm |= r.get(("provider", provider), 0)
        return rm

    def mask_of(self, enc: Any) -> int:
        """``mask`` for an encoded request; the masks are kept with the principal's and resource's encodings."""
        me = id(self)
        pmasks = enc.principal_masks
        pm = pmasks.get(me)
        if pm is None:
            ptype, pid = enc.principal_uid
            pm = pmasks[me] = self.principal_mask(ptype, pid, enc.principal_groups)
        if not pm:
            return 0
        rmasks = enc.resource_masks
        rm = rmasks.get(me)
        if rm is None:
            rtype, rid = enc.resource_uid
            rm = rmasks[me] = self.resource_mask(rtype, rid, enc.resource_provider)
        return int(pm & rm)

    def evaluate(self, mask: int, env: Env) -> Outcome | None:
        """Cedar's decision over the policies in ``mask`` by the compiled rules, after the guards;
        None when Cedar must decide (a policy here is not compiled, or one failed for this request)."""
        live = self._guards.holding(mask, env)
        if not live:
            return _NO_MATCH
        rules = self._rules.get(live, _UNKNOWN)
        if rules is _UNKNOWN:
            rules = self.rules(live)
        if rules is None:
            return None
        return authorize(rules, env)

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
