"""A guard index: policies whose first condition is false for a request are not evaluated at all.

Most operator policies open their ``when`` with a test on the request context:
``context.data_classes.contains("phi")``, ``context.hour < 6``,
``context.model == "gpt-4o"``, ``context.request_kib > 512``. For one request
such a test is false for most of them. This index keeps, per tested context
path, which policies test what, and answers with a bitmask the policies whose
first test can hold; only those are evaluated.

Exactness: Cedar evaluates a policy's scope (which cannot fail), then its
conditions in order, stopping at the first false one. A policy is left out
only when its *first* condition opens with a test that is certainly false for
this request and cannot fail: the path is present and of the type the test
needs. When the value is missing or of another type (the test could fail, and
an error must reach Cedar's report), every policy guarded on that path is
kept.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.policy.evaluate import Env, Unsupported, _conjuncts, _like

#: (kind, path, operand): the path is ("context", ...) or ("principal", attr); kind is "member" (set
#: contains a string), "eq" (equals a string), "like" (operand: the matcher), or "<", "<=", ">", ">=" a Long.
Guard = tuple[str, tuple[str, ...], Any]

_MISSING = object()


def _context_path(node: Any) -> tuple[str, ...] | None:
    """("context", "a", "b") for ``context.a.b``; ("principal", "a") for ``principal.a``."""
    path: list[str] = []
    while isinstance(node, dict) and set(node) == {"."}:
        inner = node["."]
        if not isinstance(inner, dict) or set(inner) != {"left", "attr"} or not isinstance(inner["attr"], str):
            return None
        path.append(inner["attr"])
        node = inner["left"]
    if node not in ({"Var": "context"}, {"Var": "principal"}) or not path:
        return None
    path.append(node["Var"])
    path.reverse()
    return tuple(path)


def _string(node: Any) -> str | None:
    if isinstance(node, dict) and set(node) == {"Value"} and type(node["Value"]) is str:
        return str(node["Value"])
    return None


def _long(node: Any) -> int | None:
    if isinstance(node, dict) and set(node) == {"Value"} and type(node["Value"]) is int:
        v = int(node["Value"])
        if -(2**63) <= v <= 2**63 - 1:
            return v
    return None


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def guards_of(est: Mapping[str, Any]) -> list[Guard]:
    """The guards of a policy: tests its first condition opens with, one of which must hold for it to match.

    Several guards (from ``containsAny``) mean any one of them may hold.
    """
    conditions = est.get("conditions") or ()
    if not conditions or not isinstance(conditions[0], dict) or conditions[0].get("kind") != "when":
        return []
    first = _conjuncts(conditions[0].get("body"))[0]
    if not isinstance(first, dict) or len(first) != 1:
        return []
    ((op, arg),) = first.items()
    if op == "like" and isinstance(arg, dict) and set(arg) == {"left", "pattern"}:
        path = _context_path(arg["left"])
        try:
            match = _like(arg["pattern"])
        except Unsupported:
            return []
        return [("like", path, match)] if path is not None else []
    if not isinstance(arg, dict) or set(arg) != {"left", "right"}:
        return []
    left, right = arg["left"], arg["right"]
    if op == "contains":
        path, s = _context_path(left), _string(right)
        return [("member", path, s)] if path is not None and s is not None else []
    if op == "containsAny":
        path = _context_path(left)
        items = right.get("Set") if isinstance(right, dict) and set(right) == {"Set"} else None
        if path is None or not isinstance(items, list) or not items:
            return []
        strings = [_string(x) for x in items]
        if any(s is None for s in strings):
            return []
        return [("member", path, s) for s in strings]
    if op == "==":
        path, s = _context_path(left), _string(right)
        if path is None or s is None:
            path, s = _context_path(right), _string(left)
        return [("eq", path, s)] if path is not None and s is not None else []
    if op in _FLIP:
        path, n = _context_path(left), _long(right)
        if path is not None and n is not None:
            return [(op, path, n)]
        path, n = _context_path(right), _long(left)
        if path is not None and n is not None:
            return [(_FLIP[op], path, n)]
    return []


def _lookup(env: Env, path: tuple[str, ...]) -> Any:
    value: Any
    if path[0] == "context":
        value = env.context
    else:
        ent = env.entities.get(env.principal)
        if ent is None:
            return _MISSING
        value = ent.attrs
    for attr in path[1:]:
        if type(value) is not dict:
            return _MISSING
        value = value.get(attr, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


@dataclass(slots=True)
class _Range:
    """Policies guarded by ``path <op> N``: thresholds sorted, with the bits of each prefix."""

    op: str
    values: list[int]
    prefix: list[int]  # prefix[i]: bits of the first i thresholds

    def holding(self, v: int) -> int:
        """Bits of the policies whose test holds for value ``v``."""
        all_bits = self.prefix[-1]
        if self.op == "<":  # v < N: thresholds above v
            return all_bits & ~self.prefix[bisect_right(self.values, v)]
        if self.op == "<=":  # v <= N
            return all_bits & ~self.prefix[bisect_left(self.values, v)]
        if self.op == ">":  # v > N: thresholds below v
            return self.prefix[bisect_left(self.values, v)]
        return self.prefix[bisect_right(self.values, v)]  # v >= N


class GuardIndex:
    """Per context path, the policies guarded on it; ``holding`` prunes a mask to those that can match."""

    def __init__(self, guards: Sequence[Sequence[Guard]]) -> None:
        """``guards[i]``: the guards of policy ``i`` (empty: always evaluated)."""
        self.guarded = 0
        by_path: dict[tuple[str, ...], dict[str, Any]] = {}
        for i, gs in enumerate(guards):
            if not gs:
                continue
            bit = 1 << i
            self.guarded |= bit
            for kind, path, operand in gs:
                entry = by_path.setdefault(path, {"bits": 0, "member": {}, "eq": {}, "ranges": {}, "like": []})
                entry["bits"] |= bit
                if kind == "like":
                    entry["like"].append((operand, bit))
                elif kind in ("member", "eq"):
                    entry[kind][operand] = entry[kind].get(operand, 0) | bit
                else:
                    entry["ranges"].setdefault(kind, []).append((operand, bit))
        self._paths: list[_Path] = []
        for path, e in by_path.items():
            member_bits = 0
            for b in e["member"].values():
                member_bits |= b
            ranges = []
            for op, items in e["ranges"].items():
                items.sort(key=lambda t: t[0])
                prefix = [0]
                for _, b in items:
                    prefix.append(prefix[-1] | b)
                ranges.append(_Range(op, [n for n, _ in items], prefix))
            top = path[1] if len(path) == 2 and path[0] == "context" else None
            attr = path[1] if len(path) == 2 and path[0] == "principal" else None
            on_path = _Path(path, top, attr, e["bits"], member_bits, e["member"], e["eq"], ranges, e["like"], {})
            if ranges:
                on_path.table = [None] * SMALL_LONGS
                on_path.small = SMALL_LONGS
            self._paths.append(on_path)

        self._unguarded = ~self.guarded
        #: No guard reads ``context.provider``: what passes is the same whichever provider is asked about.
        self.provider_free = not any(p.path[:2] == ("context", "provider") for p in self._paths)

    def holding(self, mask: int, env: Env, memo: dict[GuardIndex, int] | None = None) -> int:
        """``mask`` without the policies whose guard is certainly false (and cannot fail) for this request.

        ``memo``: kept with the request, it keeps ``passing(env)`` for the next mask asked about.
        """
        if not mask & self.guarded:
            return mask
        return mask & (self.passing(env, memo) | self._unguarded)

    def within(self, mask: int, passing: int) -> int:
        """``holding(mask, env)`` given ``passing(env)``."""
        return mask & (passing | self._unguarded)

    def passing(self, env: Env, memo: dict[GuardIndex, int] | None = None) -> int:
        """The guarded policies (of any mask) whose guard can hold for this request, or fail on it.

        ``memo``: as for ``holding``.
        """
        if memo is not None:
            if self in memo:
                return memo[self]
            memo[self] = found = self.passing(env)
            return found
        passing = 0
        context = env.context
        for entry in self._paths:
            top = entry.top
            if top is not None:
                v = context[top] if top in context else _MISSING
            elif entry.attr is not None:
                # _lookup for ("principal", attr), inlined.
                ent = env.entities.get(env.principal)
                attrs = _MISSING if ent is None else ent.attrs
                v = attrs.get(entry.attr, _MISSING) if type(attrs) is dict else _MISSING
            else:
                v = _lookup(env, entry.path)
            if v is _MISSING:
                passing |= entry.bits
                continue
            if type(v) is int and 0 <= v < entry.small:
                # A small Long (an hour, a size in KiB): looked up directly, worked out the first time.
                hits = entry.table[v]
                if hits is None:
                    hits = entry.table[v] = entry.hits(v)
                passing |= hits
                continue
            # The type is part of the key: 1 and True are equal keys in Python, not in Cedar.
            key = (type(v), v)
            try:
                hits = entry.seen[key]
            except KeyError:
                hits = entry.hits(v)
                if len(entry.seen) < MAX_SEEN_VALUES:
                    entry.seen[key] = hits
            except TypeError:  # an unhashable value (a record)
                hits = entry.hits(v)
            passing |= hits
        return passing


#: Values remembered per guarded path, with the policies whose guard they satisfy.
MAX_SEEN_VALUES = 1024
#: Longs 0 .. SMALL_LONGS - 1 have what they satisfy in a table, per path with range guards.
SMALL_LONGS = 1024


@dataclass(slots=True)
class _Path:
    """The guards on one context path."""

    path: tuple[str, ...]
    #: ``A`` when the path is ``context.A`` (read with one look-up), else None.
    top: str | None
    #: ``A`` when the path is ``principal.A``, else None.
    attr: str | None
    bits: int
    member_bits: int
    member: dict[str, int]
    eq: dict[str, int]
    ranges: list[_Range]
    like: list[tuple[Callable[[str], bool], int]]
    seen: dict[tuple[type, Any], int]
    #: ``hits(v)`` for each Long ``v`` below ``small`` once asked (paths with range guards).
    table: list[int | None] = field(default_factory=list)
    small: int = 0

    def hits(self, v: Any) -> int:
        """Bits of the policies guarded here whose test holds for ``v`` or could fail on it."""
        hits = 0
        if self.member:
            if type(v) is frozenset:
                for x in v:
                    if type(x) is str:
                        hits |= self.member.get(x, 0)
            else:
                hits |= self.member_bits  # `.contains` on a non-set fails: let it be evaluated
        if self.eq and type(v) is str:
            hits |= self.eq.get(v, 0)
        for r in self.ranges:
            if type(v) is int:
                hits |= r.holding(v)
            else:
                hits |= r.prefix[-1]  # `<` on a non-Long fails: let it be evaluated
        for match, bit in self.like:
            if type(v) is not str or match(v):  # `like` on a non-String fails: let it be evaluated
                hits |= bit
        return hits
