"""Cedar policies compiled to Python closures, for the requests Bastion builds.

A call into Cedar costs tens of microseconds before any policy is looked at
(the request, context and result cross the language boundary as JSON), so the
engine evaluates each policy with a closure compiled from its JSON form (EST)
at load, and calls Cedar only when this evaluator cannot answer with
certainty:

- a policy uses something not implemented here (extension functions such as
  ``ip()``, ``decimal()``, ``datetime()``; templates; unknown operators): that
  policy is marked unsupported at load, and any request whose slice holds it
  is decided by Cedar;
- a policy fails at run time (a missing attribute or tag, an overflow, a type
  error): Cedar then decides the request, so the engine sees Cedar's own error
  report and refuses as before;
- anything else unexpected (a Python error in the evaluator): Cedar decides.

What is implemented follows Cedar's semantics exactly, including where Cedar
reports an error: ``&&`` / ``||`` short-circuit and need booleans, ``==``
never fails and is false across types (``1 != true``), ``<`` and arithmetic
need Longs and fail on 64-bit overflow, ``in`` needs entities and follows
ancestors of entities in the store (an entity missing from the store is only
``in`` itself), ``has`` / ``hasTag`` are false on a missing entity while
``.`` / ``getTag`` fail, ``like`` matches whole strings with ``*`` for any
run of characters. A policy matches when its scope matches, every ``when``
is true and every ``unless`` is false, evaluated left to right as Cedar
does; the decision is Cedar's: any matching forbid denies, else any matching
permit allows, else deny. tests/unit/test_policy_evaluate.py compares this
evaluator with Cedar on generated policies and requests.

Values: Bool is ``bool``, Long ``int``, String ``str``, an entity uid a
``(type, id)`` tuple (no other value is a tuple), Set ``frozenset``, Record
``dict``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

_ACTION_TYPE = "Bastion::Action"
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

Uid = tuple[str, str]
Fn = Callable[["Env"], Any]


class CedarError(Exception):
    """The policy fails at run time for this request (Cedar would skip it and report an error)."""


class Unsupported(Exception):
    """A construct this evaluator does not implement; Cedar decides instead."""


@dataclass(slots=True)
class Entity:
    """An entity in the store: its attributes, every ancestor (transitively) and its tags."""

    attrs: Mapping[str, Any]
    ancestors: frozenset[Uid]
    tags: Mapping[str, Any]


@dataclass(slots=True)
class Env:
    """One request: principal, action, resource, context and the entity store."""

    principal: Uid
    action: Uid
    resource: Uid
    context: Mapping[str, Any]
    entities: Mapping[Uid, Entity]


# -- values -------------------------------------------------------------------


def _plain(s: frozenset[Any]) -> bool:
    # Strings and entity uids compare in Python exactly as in Cedar; ints and bools do not (1 == True).
    for x in s:
        t = type(x)
        if t is not str and t is not tuple:
            return False
    return True


def cedar_eq(a: Any, b: Any) -> bool:
    """Cedar's ``==``: never fails; values of different types are unequal."""
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is frozenset:
        if len(a) != len(b):
            return False
        if _plain(a) and _plain(b):
            return bool(a == b)
        return all(any(cedar_eq(x, y) for y in b) for x in a)
    if ta is dict:
        return a.keys() == b.keys() and all(cedar_eq(a[k], b[k]) for k in a)
    return bool(a == b)


def set_has(s: frozenset[Any], x: Any) -> bool:
    """Whether Cedar set ``s`` holds ``x``."""
    t = type(x)
    if t is str or t is tuple:
        return x in s
    return any(cedar_eq(x, y) for y in s)


def make_set(items: Iterable[Any]) -> frozenset[Any]:
    """A Cedar set of already-converted values (Unsupported where Python's set would merge unequal values)."""
    items = list(items)
    kinds = {type(x) for x in items}
    if bool in kinds and int in kinds:
        raise Unsupported("a set mixing Bool and Long")
    if dict in kinds:
        raise Unsupported("a set of records")
    try:
        return frozenset(items)
    except TypeError as exc:  # pragma: no cover - only dicts are unhashable, refused above
        raise Unsupported(str(exc)) from exc


def from_json(value: Any) -> Any:
    """A value of Cedar's JSON data format (as Bastion writes it, without a schema) in this evaluator's terms."""
    t = type(value)
    if t is str or t is bool:
        return value
    if t is int:
        if not I64_MIN <= value <= I64_MAX:
            raise Unsupported("a number outside the 64-bit range")
        return value
    if t is list:
        if all(type(v) is str for v in value):
            return frozenset(value)
        return make_set(from_json(v) for v in value)
    if t is dict:
        if "__entity" in value:
            if len(value) != 1:
                raise Unsupported("an unusual entity reference")
            return _entity_ref(value["__entity"])
        if "__extn" in value or "__expr" in value:
            raise Unsupported("an extension value")
        return _record(value)
    raise Unsupported(f"a JSON value of type {t.__name__}")


def _record(value: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if type(k) is not str:
            raise Unsupported("a record key that is not a string")
        out[k] = v if type(v) is str else from_json(v)
    return out


def _entity_ref(ent: Any) -> Uid:
    if type(ent) is not dict or len(ent) != 2 or type(ent.get("type")) is not str or type(ent.get("id")) is not str:
        raise Unsupported("an unusual entity reference")
    return (ent["type"], ent["id"])


_ENTITY_KEYS = frozenset({"uid", "attrs", "parents", "tags"})


def entity_store(entities: Sequence[Mapping[str, Any]]) -> dict[Uid, Entity]:
    """The store of Cedar entity JSON objects (``uid``, ``attrs``, ``parents``, ``tags``), with ancestors closed."""
    raw: dict[Uid, tuple[dict[str, Any], frozenset[Uid], dict[str, Any]]] = {}
    for e in entities:
        if not _ENTITY_KEYS.issuperset(e):
            raise Unsupported("an unusual entity")
        uid = _entity_ref(e["uid"])
        attrs = _record(e.get("attrs") or {})
        tags = _record(e.get("tags") or {})
        parents = frozenset(_entity_ref(p) for p in e.get("parents") or ())
        entry = (attrs, parents, tags)
        old = raw.get(uid)
        if old is not None and not (cedar_eq(old[0], attrs) and old[1] == parents and cedar_eq(old[2], tags)):
            raise Unsupported("two different entities with one uid")
        raw[uid] = entry
    store: dict[Uid, Entity] = {}
    for uid, (attrs, parents, tags) in raw.items():
        ancestors = parents
        if any(raw[p][1] for p in parents if p in raw):
            seen: set[Uid] = set()
            todo = list(parents)
            while todo:
                p = todo.pop()
                if p in seen:
                    continue
                seen.add(p)
                if p in raw:
                    todo.extend(raw[p][1])
            ancestors = frozenset(seen)
        store[uid] = Entity(attrs, ancestors, tags)
    return store


# -- expressions ----------------------------------------------------------------


def _long(v: Any) -> int:
    if type(v) is not int:
        raise CedarError("expected a Long")
    return int(v)


def _checked(v: int) -> int:
    if not I64_MIN <= v <= I64_MAX:
        raise CedarError("integer overflow")
    return v


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise CedarError("expected a Bool")
    return bool(v)


def _set(v: Any) -> frozenset[Any]:
    if type(v) is not frozenset:
        raise CedarError("expected a Set")
    return v


def _is_in(env: Env, uid: Any, target: Any) -> bool:
    """Cedar's ``in``: ``uid`` is the target or one of its descendants (target: an entity or a set of them)."""
    if type(uid) is not tuple:
        raise CedarError("`in` needs an entity on the left")
    if type(target) is tuple:
        targets: Iterable[Any] = (target,)
    elif type(target) is frozenset:
        for t in target:
            if type(t) is not tuple:
                raise CedarError("`in` needs a set of entities on the right")
        targets = target
    else:
        raise CedarError("`in` needs an entity or a set of entities on the right")
    ent = env.entities.get(uid)
    anc = ent.ancestors if ent is not None else frozenset()
    for t in targets:
        if t == uid or t in anc:
            return True
    return False


def _attr(env: Env, v: Any, attr: str) -> Any:
    t = type(v)
    if t is dict:
        try:
            return v[attr]
        except KeyError:
            raise CedarError(f"record has no attribute {attr!r}") from None
    if t is tuple:
        ent = env.entities.get(v)
        if ent is None:
            raise CedarError("entity does not exist")
        try:
            return ent.attrs[attr]
        except KeyError:
            raise CedarError(f"entity has no attribute {attr!r}") from None
    raise CedarError("`.` needs an entity or a record")


def _has(env: Env, v: Any, attr: str) -> bool:
    t = type(v)
    if t is dict:
        return attr in v
    if t is tuple:
        ent = env.entities.get(v)
        return ent is not None and attr in ent.attrs
    raise CedarError("`has` needs an entity or a record")


def _entity_literal(node: Any) -> Uid:
    if not isinstance(node, dict) or set(node) != {"type", "id"}:
        raise Unsupported("an unusual entity literal")
    return (str(node["type"]), str(node["id"]))


def _literal(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__entity"}:
        return _entity_literal(value["__entity"])
    return from_json(value)


def _like(pattern: Any) -> Callable[[str], bool]:
    if not isinstance(pattern, list):
        raise Unsupported("an unusual like pattern")
    parts: list[str | None] = []  # None is a wildcard
    for p in pattern:
        if p == "Wildcard":
            if not parts or parts[-1] is not None:
                parts.append(None)
        elif isinstance(p, dict) and set(p) == {"Literal"} and isinstance(p["Literal"], str):
            if parts and isinstance(parts[-1], str):
                parts[-1] += p["Literal"]
            else:
                parts.append(p["Literal"])
        else:
            raise Unsupported("an unusual like pattern")
    if not parts:
        return lambda s: s == ""
    if len(parts) == 1 and parts[0] is not None:
        whole = parts[0]
        return lambda s: s == whole
    if len(parts) == 1:
        return lambda s: True
    if len(parts) == 2 and parts[0] is not None and parts[1] is None:
        prefix = parts[0]
        return lambda s: s.startswith(prefix)
    if len(parts) == 2 and parts[0] is None and parts[1] is not None:
        suffix = parts[1]
        return lambda s: s.endswith(suffix)
    rx = re.compile("".join(".*" if p is None else re.escape(p) for p in parts), re.DOTALL)
    return lambda s: rx.fullmatch(s) is not None


def _binary(arg: Any) -> tuple[Fn, Fn]:
    if not isinstance(arg, dict) or set(arg) != {"left", "right"}:
        raise Unsupported("an unusual binary operator")
    return compile_expr(arg["left"]), compile_expr(arg["right"])


def _unary(arg: Any) -> Fn:
    if not isinstance(arg, dict) or set(arg) != {"arg"}:
        raise Unsupported("an unusual unary operator")
    return compile_expr(arg["arg"])


def _c_value(arg: Any) -> Fn:
    v = _literal(arg)
    return lambda env: v


def _c_var(arg: Any) -> Fn:
    if arg == "principal":
        return lambda env: env.principal
    if arg == "action":
        return lambda env: env.action
    if arg == "resource":
        return lambda env: env.resource
    if arg == "context":
        return lambda env: env.context
    raise Unsupported(f"variable {arg!r}")


def _constant(node: Any) -> tuple[bool, Any]:
    """(True, value) when ``node`` is a literal that compares in Python as in Cedar (String, entity)."""
    if isinstance(node, dict) and set(node) == {"Value"}:
        try:
            v = _literal(node["Value"])
        except Unsupported:
            return False, None
        if type(v) is str or type(v) is tuple:
            return True, v
    return False, None


def _plain_constant_set(node: Any) -> frozenset[Any] | None:
    """The value of a set literal of Strings / entities, else None."""
    if isinstance(node, dict) and set(node) == {"Set"} and isinstance(node["Set"], list):
        out = []
        for x in node["Set"]:
            ok, v = _constant(x)
            if not ok:
                return None
            out.append(v)
        return frozenset(out)
    return None


def _context_attr(node: Any) -> str | None:
    """``A`` when ``node`` is ``context.A``."""
    if isinstance(node, dict) and set(node) == {"."}:
        inner = node["."]
        if isinstance(inner, dict) and inner.get("left") == {"Var": "context"} and isinstance(inner.get("attr"), str):
            return str(inner["attr"])
    return None


def _context_record_attr(node: Any) -> tuple[str, str] | None:
    """``(A, B)`` when ``node`` is ``context.A.B``."""
    if isinstance(node, dict) and set(node) == {"."}:
        inner = node["."]
        if isinstance(inner, dict) and set(inner) == {"left", "attr"} and isinstance(inner["attr"], str):
            outer = _context_attr(inner["left"])
            if outer is not None:
                return outer, inner["attr"]
    return None


def _c_not(arg: Any) -> Fn:
    f = _unary(arg)

    def run(env: Env) -> bool:
        v = f(env)
        if v is True:
            return False
        if v is False:
            return True
        raise CedarError("`!` needs a Bool")

    return run


def _c_neg(arg: Any) -> Fn:
    f = _unary(arg)
    return lambda env: _checked(-_long(f(env)))


def _c_is_empty(arg: Any) -> Fn:
    f = _unary(arg)
    return lambda env: not _set(f(env))


def _c_eq(arg: Any) -> Fn:
    lf, rf = _binary(arg)
    other = arg["left"]
    ok, c = _constant(arg["right"])
    if not ok:
        other = arg["right"]
        ok, c = _constant(arg["left"])
    if not ok:
        return lambda env: cedar_eq(lf(env), rf(env))
    ct = type(c)
    attr = _context_attr(other)
    record = _context_record_attr(other)
    if record is not None:
        # context.A.B == constant (context.provider.tier == "consumer"): one step.
        outer, inner = record

        def of_context_record(env: Env) -> bool:
            try:
                v = env.context[outer]
            except KeyError:
                raise CedarError(f"context has no attribute {outer!r}") from None
            if type(v) is dict:
                try:
                    a = v[inner]
                except KeyError:
                    raise CedarError(f"record has no attribute {inner!r}") from None
            else:
                a = _attr(env, v, inner)
            return type(a) is ct and bool(a == c)

        return of_context_record
    if attr is not None:

        def of_context(env: Env) -> bool:
            try:
                a = env.context[attr]
            except KeyError:
                raise CedarError(f"context has no attribute {attr!r}") from None
            return type(a) is ct and bool(a == c)

        return of_context
    f = compile_expr(other)

    def const(env: Env) -> bool:
        a = f(env)
        return type(a) is ct and bool(a == c)

    return const


def _c_ne(arg: Any) -> Fn:
    eq = _c_eq(arg)
    return lambda env: not eq(env)


def _c_and(arg: Any) -> Fn:
    lf, rf = _binary(arg)

    def run(env: Env) -> bool:
        a = lf(env)
        if a is False:
            return False
        if a is not True:
            raise CedarError("`&&` needs Bools")
        b = rf(env)
        if b is True or b is False:
            return bool(b)
        raise CedarError("`&&` needs Bools")

    return run


def _c_or(arg: Any) -> Fn:
    lf, rf = _binary(arg)

    def run(env: Env) -> bool:
        a = lf(env)
        if a is True:
            return True
        if a is not False:
            raise CedarError("`||` needs Bools")
        b = rf(env)
        if b is True or b is False:
            return bool(b)
        raise CedarError("`||` needs Bools")

    return run


def _c_in(arg: Any) -> Fn:
    lf, rf = _binary(arg)
    ok, target = _constant(arg["right"])
    if ok and type(target) is tuple:

        def const(env: Env) -> bool:
            uid = lf(env)
            if type(uid) is not tuple:
                raise CedarError("`in` needs an entity on the left")
            if uid == target:
                return True
            ent = env.entities.get(uid)
            return ent is not None and target in ent.ancestors

        return const
    return lambda env: _is_in(env, lf(env), rf(env))


def _compare(op: Callable[[int, int], bool]) -> Callable[[Any], Fn]:
    def build(arg: Any) -> Fn:
        lf, rf = _binary(arg)
        right = arg["right"]
        if isinstance(right, dict) and set(right) == {"Value"} and type(right["Value"]) is int:
            c = _literal(right["Value"])
            attr = _context_attr(arg["left"])
            if attr is not None:

                def of_context(env: Env) -> bool:
                    try:
                        a = env.context[attr]
                    except KeyError:
                        raise CedarError(f"context has no attribute {attr!r}") from None
                    if type(a) is not int:
                        raise CedarError("expected a Long")
                    return bool(op(a, c))

                return of_context

            def const(env: Env) -> bool:
                a = lf(env)
                if type(a) is not int:
                    raise CedarError("expected a Long")
                return op(a, c)

            return const

        def run(env: Env) -> bool:
            a = lf(env)
            b = rf(env)
            return op(_long(a), _long(b))

        return run

    return build


def _arith(op: Callable[[int, int], int]) -> Callable[[Any], Fn]:
    def build(arg: Any) -> Fn:
        lf, rf = _binary(arg)

        def run(env: Env) -> int:
            a = lf(env)
            b = rf(env)
            return _checked(op(_long(a), _long(b)))

        return run

    return build


def _c_contains(arg: Any) -> Fn:
    lf, rf = _binary(arg)
    ok, c = _constant(arg["right"])
    attr = _context_attr(arg["left"])
    if ok and attr is not None:

        def of_context(env: Env) -> bool:
            try:
                s = env.context[attr]
            except KeyError:
                raise CedarError(f"context has no attribute {attr!r}") from None
            if type(s) is not frozenset:
                raise CedarError("expected a Set")
            return c in s

        return of_context
    if ok:

        def const(env: Env) -> bool:
            s = lf(env)
            if type(s) is not frozenset:
                raise CedarError("expected a Set")
            return c in s

        return const

    def run(env: Env) -> bool:
        s = lf(env)
        x = rf(env)
        return set_has(_set(s), x)

    return run


def _c_contains_all(arg: Any) -> Fn:
    lf, rf = _binary(arg)
    cs = _plain_constant_set(arg["right"])
    if cs is not None:

        def const(env: Env) -> bool:
            s = lf(env)
            if type(s) is not frozenset:
                raise CedarError("expected a Set")
            return cs <= s

        return const

    def run(env: Env) -> bool:
        a = _set(lf(env))
        b = _set(rf(env))
        return all(set_has(a, x) for x in b)

    return run


def _c_contains_any(arg: Any) -> Fn:
    lf, rf = _binary(arg)
    cs = _plain_constant_set(arg["right"])
    attr = _context_attr(arg["left"])
    if cs is not None and attr is not None:

        def of_context(env: Env) -> bool:
            try:
                s = env.context[attr]
            except KeyError:
                raise CedarError(f"context has no attribute {attr!r}") from None
            if type(s) is not frozenset:
                raise CedarError("expected a Set")
            return not cs.isdisjoint(s)

        return of_context
    if cs is not None:

        def const(env: Env) -> bool:
            s = lf(env)
            if type(s) is not frozenset:
                raise CedarError("expected a Set")
            return not cs.isdisjoint(s)

        return const

    def run(env: Env) -> bool:
        a = _set(lf(env))
        b = _set(rf(env))
        return any(set_has(a, x) for x in b)

    return run


def _tag_args(env: Env, lf: Fn, rf: Fn) -> tuple[Entity | None, str]:
    uid = lf(env)
    key = rf(env)
    if type(uid) is not tuple:
        raise CedarError("tags belong to entities")
    if type(key) is not str:
        raise CedarError("a tag name is a String")
    return env.entities.get(uid), key


def _c_has_tag(arg: Any) -> Fn:
    lf, rf = _binary(arg)

    def run(env: Env) -> bool:
        ent, key = _tag_args(env, lf, rf)
        return ent is not None and key in ent.tags

    return run


def _c_get_tag(arg: Any) -> Fn:
    lf, rf = _binary(arg)

    def run(env: Env) -> Any:
        ent, key = _tag_args(env, lf, rf)
        if ent is None:
            raise CedarError("entity does not exist")
        try:
            return ent.tags[key]
        except KeyError:
            raise CedarError(f"entity has no tag {key!r}") from None

    return run


def _c_dot(arg: Any) -> Fn:
    if not isinstance(arg, dict) or set(arg) != {"left", "attr"} or not isinstance(arg["attr"], str):
        raise Unsupported("an unusual attribute access")
    f, attr = compile_expr(arg["left"]), arg["attr"]
    if arg["left"] == {"Var": "context"}:

        def of_context(env: Env) -> Any:
            try:
                return env.context[attr]
            except KeyError:
                raise CedarError(f"context has no attribute {attr!r}") from None

        return of_context
    if arg["left"] == {"Var": "principal"}:

        def of_principal(env: Env) -> Any:
            ent = env.entities.get(env.principal)
            if ent is None:
                raise CedarError("entity does not exist")
            try:
                return ent.attrs[attr]
            except KeyError:
                raise CedarError(f"entity has no attribute {attr!r}") from None

        return of_principal

    outer = _context_attr(arg["left"])
    if outer is not None:
        # context.A.B (context.provider.tier...): the two look-ups in one step.

        def of_context_attr(env: Env) -> Any:
            try:
                v = env.context[outer]
            except KeyError:
                raise CedarError(f"context has no attribute {outer!r}") from None
            if type(v) is dict:
                try:
                    return v[attr]
                except KeyError:
                    raise CedarError(f"record has no attribute {attr!r}") from None
            return _attr(env, v, attr)

        return of_context_attr

    def of_value(env: Env) -> Any:
        v = f(env)
        if type(v) is dict:  # a record, e.g. context.provider
            try:
                return v[attr]
            except KeyError:
                raise CedarError(f"record has no attribute {attr!r}") from None
        return _attr(env, v, attr)

    return of_value


def _c_has(arg: Any) -> Fn:
    if not isinstance(arg, dict) or set(arg) != {"left", "attr"} or not isinstance(arg["attr"], str):
        raise Unsupported("an unusual `has`")
    f, attr = compile_expr(arg["left"]), arg["attr"]
    return lambda env: _has(env, f(env), attr)


def _c_like(arg: Any) -> Fn:
    if not isinstance(arg, dict) or set(arg) != {"left", "pattern"}:
        raise Unsupported("an unusual like")
    f, match = compile_expr(arg["left"]), _like(arg["pattern"])
    prefix = _like_prefix(arg["pattern"])
    if prefix is not None:
        # "eu*": the match inlined.

        def starts(env: Env) -> bool:
            s = f(env)
            if type(s) is not str:
                raise CedarError("`like` needs a String")
            return s.startswith(prefix)

        return starts

    def run(env: Env) -> bool:
        s = f(env)
        if type(s) is not str:
            raise CedarError("`like` needs a String")
        return match(s)

    return run


def _like_prefix(pattern: Any) -> str | None:
    """``P`` when ``pattern`` (already accepted by ``_like``) is ``P*`` with P not empty and no other wildcard."""
    if not isinstance(pattern, list) or len(pattern) < 2 or pattern[-1] != "Wildcard":
        return None
    parts = pattern[:-1]
    while parts and parts[-1] == "Wildcard":
        parts = parts[:-1]
    if not parts or any(not isinstance(p, dict) for p in parts):
        return None
    return "".join(p["Literal"] for p in parts)


def _c_is(arg: Any) -> Fn:
    if not isinstance(arg, dict) or not {"left", "entity_type"} <= set(arg) <= {"left", "entity_type", "in"}:
        raise Unsupported("an unusual `is`")
    f, etype = compile_expr(arg["left"]), str(arg["entity_type"])
    inner = compile_expr(arg["in"]) if "in" in arg else None

    def run(env: Env) -> bool:
        uid = f(env)
        if type(uid) is not tuple:
            raise CedarError("`is` needs an entity")
        if uid[0] != etype:
            return False
        return inner is None or _is_in(env, uid, inner(env))

    return run


def _c_if(arg: Any) -> Fn:
    if not isinstance(arg, dict) or set(arg) != {"if", "then", "else"}:
        raise Unsupported("an unusual if-then-else")
    c, t, e = compile_expr(arg["if"]), compile_expr(arg["then"]), compile_expr(arg["else"])
    return lambda env: t(env) if _bool(c(env)) else e(env)


def _c_set(arg: Any) -> Fn:
    if not isinstance(arg, list):
        raise Unsupported("an unusual set literal")
    fs = [compile_expr(x) for x in arg]
    return lambda env: make_set(f(env) for f in fs)


def _c_record(arg: Any) -> Fn:
    if not isinstance(arg, dict):
        raise Unsupported("an unusual record literal")
    fs = [(str(k), compile_expr(v)) for k, v in arg.items()]
    return lambda env: {k: f(env) for k, f in fs}


_COMPILERS: dict[str, Callable[[Any], Fn]] = {
    "Value": _c_value,
    "Var": _c_var,
    "!": _c_not,
    "neg": _c_neg,
    "isEmpty": _c_is_empty,
    "==": _c_eq,
    "!=": _c_ne,
    "&&": _c_and,
    "||": _c_or,
    "in": _c_in,
    "<": _compare(operator.lt),
    "<=": _compare(operator.le),
    ">": _compare(operator.gt),
    ">=": _compare(operator.ge),
    "+": _arith(operator.add),
    "-": _arith(operator.sub),
    "*": _arith(operator.mul),
    "contains": _c_contains,
    "containsAll": _c_contains_all,
    "containsAny": _c_contains_any,
    "hasTag": _c_has_tag,
    "getTag": _c_get_tag,
    ".": _c_dot,
    "has": _c_has,
    "like": _c_like,
    "is": _c_is,
    "if-then-else": _c_if,
    "Set": _c_set,
    "Record": _c_record,
}


def compile_expr(node: Any) -> Fn:
    """A closure evaluating one EST expression; Unsupported for what is not implemented."""
    if not isinstance(node, dict) or len(node) != 1:
        raise Unsupported("an unusual expression")
    ((op, arg),) = node.items()
    build = _COMPILERS.get(op)
    if build is None:
        raise Unsupported(f"operator {op!r}")
    return build(arg)


# -- policies -------------------------------------------------------------------


def _in_entity(get: Fn, target: Uid) -> Fn:
    """``get(env) in target`` for an entity ``get`` always yields (a scope variable)."""

    def run(env: Env) -> bool:
        uid = get(env)
        if uid == target:
            return True
        ent = env.entities.get(uid)
        return ent is not None and target in ent.ancestors

    return run


def _scope(var: str, scope: Any) -> Fn | None:
    """The scope test of ``var`` (None when it matches everything)."""
    if not isinstance(scope, dict):
        raise Unsupported("an unusual scope")
    op = scope.get("op")
    if op == "All" and set(scope) == {"op"}:
        return None
    get = _c_var(var)
    if op == "==" and set(scope) == {"op", "entity"}:
        uid = _entity_literal(scope["entity"])
        return lambda env: get(env) == uid
    if op == "in" and set(scope) == {"op", "entity"}:
        return _in_entity(get, _entity_literal(scope["entity"]))
    if op == "in" and set(scope) == {"op", "entities"} and isinstance(scope["entities"], list):
        targets = frozenset(_entity_literal(e) for e in scope["entities"])
        return lambda env: _is_in(env, get(env), targets)
    if op == "is" and set(scope) <= {"op", "entity_type", "in"}:
        etype = str(scope.get("entity_type"))
        if "in" not in scope:
            return lambda env: get(env)[0] == etype
        inner = scope["in"]
        if not isinstance(inner, dict) or set(inner) != {"entity"}:
            raise Unsupported("an unusual `is ... in` scope")
        within = _in_entity(get, _entity_literal(inner["entity"]))
        return lambda env: get(env)[0] == etype and within(env)
    raise Unsupported("an unusual scope")


def _conjuncts(node: Any) -> list[Any]:
    """The operands of a chain of ``&&`` (Cedar nests them to the left), in evaluation order."""
    out: list[Any] = []
    while isinstance(node, dict) and set(node) == {"&&"} and isinstance(node["&&"], dict):
        arg = node["&&"]
        if set(arg) != {"left", "right"}:
            break
        out.append(arg["right"])
        node = arg["left"]
    out.append(node)
    out.reverse()
    return out


def _negated(f: Fn) -> Fn:
    def run(env: Env) -> bool:
        v = f(env)
        if v is True:
            return False
        if v is False:
            return True
        raise CedarError("a condition is not a Bool")

    return run


def _never(env: Env) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One policy as a test: ``matches(env)`` is True, False, or raises CedarError."""

    id: str
    forbid: bool
    #: The scope tests, then each condition, in Cedar's order; each must be True (False: no match).
    steps: tuple[Fn, ...]

    def matches(self, env: Env) -> bool:
        """Whether the policy matches this request (CedarError when it fails for it)."""
        for f in self.steps:
            v = f(env)
            if v is not True:
                if v is False:
                    return False
                raise CedarError("a condition is not a Bool")
        return True


def compile_policy(
    policy_id: str,
    est: Mapping[str, Any],
    *,
    as_permit: bool = False,
    action: str | None = None,
    decided: Collection[str] = (),
) -> CompiledRule:
    """Compile one static policy (EST); Unsupported if any part of it is not implemented here.

    ``action``: the rule is only ever asked about requests for ``Bastion::Action::"<action>"``,
    so the action scope is decided here, once (actions have no ancestors in the entity store).
    ``decided``: "principal" and / or "resource", whose scope the caller has already found to
    match every request it asks about (a scope index); their tests are left out.
    """
    if set(est) - {"effect", "principal", "action", "resource", "conditions", "annotations"}:
        raise Unsupported("an unusual policy")
    effect = est.get("effect")
    if effect not in ("permit", "forbid"):
        raise Unsupported("an unusual effect")
    # Cedar evaluates the scope, then each condition, left to right, stopping at the first false.
    checks: list[Fn] = []
    for var in ("principal", "action", "resource"):
        t = _scope(var, est.get(var, {"op": "All"}))
        if t is None or var in decided:
            continue
        if var == "action" and action is not None:
            uid = (_ACTION_TYPE, action)
            if t(Env(uid, uid, uid, {}, {})):
                continue
            t = _never
        checks.append(t)
    for cond in est.get("conditions") or ():
        if not isinstance(cond, dict) or set(cond) != {"kind", "body"} or cond["kind"] not in ("when", "unless"):
            raise Unsupported("an unusual condition")
        if cond["kind"] == "when":
            # when { a && b } holds when a, then b, are true: the same checks in the same order.
            checks.extend(compile_expr(c) for c in _conjuncts(cond["body"]))
        else:
            checks.append(_negated(compile_expr(cond["body"])))
    return CompiledRule(policy_id, effect == "forbid" and not as_permit, tuple(checks))


class Outcome(NamedTuple):
    """Cedar's answer: allowed, the determining policies (forbids when any matched, else permits), errors."""

    allowed: bool
    fired: tuple[str, ...]
    #: Cedar's reports of policies that failed (never set by ``authorize``: it defers to Cedar instead).
    errors: tuple[str, ...] = ()


_NO_ERRORS: tuple[str, ...] = ()
_new_outcome = tuple.__new__


def authorize(rules: Sequence[CompiledRule], env: Env) -> Outcome | None:
    """Cedar's decision over ``rules``, or None when Cedar itself must decide (a policy failed)."""
    permits: list[str] = []
    forbids: list[str] = []
    try:
        # ``CompiledRule.matches`` inlined: this loop runs for every policy evaluated.
        for r in rules:
            for f in r.steps:
                v = f(env)
                if v is not True:
                    if v is False:
                        break
                    return None  # not a Bool: the policy fails
            else:
                (forbids if r.forbid else permits).append(r.id)
    except (CedarError, Unsupported):
        return None
    except Exception:  # noqa: BLE001 - whatever went wrong here, Cedar gives the answer
        return None
    if forbids:
        return _new_outcome(Outcome, (False, tuple(forbids), _NO_ERRORS))
    if permits:
        return _new_outcome(Outcome, (True, tuple(permits), _NO_ERRORS))
    return _new_outcome(Outcome, (False, (), _NO_ERRORS))


def allows(rules: Sequence[CompiledRule], env: Env) -> bool | None:
    """Whether Cedar allows with no policy failing, or None when Cedar itself must tell.

    Stops at the first matching forbid: whatever the later rules do, Cedar then denies.
    """
    permitted = False
    try:
        for r in rules:
            for f in r.steps:
                v = f(env)
                if v is not True:
                    if v is False:
                        break
                    return None  # not a Bool: the policy fails
            else:
                if r.forbid:
                    return False
                permitted = True
    except (CedarError, Unsupported):
        return None
    except Exception:  # noqa: BLE001 - whatever went wrong here, Cedar gives the answer
        return None
    return permitted
