"""Turning a PolicyRequest into the entity and context JSON Cedar evaluates."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from bastion.context import Principal
from bastion.errors import BastionError
from bastion.policy.evaluate import I64_MAX, I64_MIN, Entity, Env, Uid, Unsupported, entity_store
from bastion.policy.index import put_bounded
from bastion.policy.model import PolicyRequest, ResourceRef
from bastion.policy.schema import NAMESPACE, RESOURCE_ATTRIBUTES

#: Attributes of a provider that policy reads (ProviderSettings field names).
PROVIDER_FIELDS = ("tier", "region", "zero_data_retention", "baa", "trains_on_inputs", "certifications")
#: Context keys a caller may pass.
CONTEXT_KEYS = frozenset(
    {
        "data_classes",
        "entity_types",
        "injection_score",
        "caller_region",
        "hour",
        "weekday",
        "request_bytes",
        "request_kib",
        "approved",
        "model",
        "provider",
    }
)
#: Principal attributes that become Cedar attributes rather than tags.
_PRINCIPAL_ATTRS = frozenset({"region"})
#: Longest tag value passed to Cedar; longer values are cut (tags are for matching, not storage).
MAX_TAG_CHARS = 256

EMPTY_PROVIDER: dict[str, Any] = {
    "name": "",
    "tier": "",
    "region": "",
    "zero_data_retention": False,
    "baa": False,
    "trains_on_inputs": False,
    "certifications": [],
}


def provider_info(provider: Any) -> dict[str, Any]:
    """The ``context.provider`` record of a ProviderSettings (or a mapping of the same fields)."""
    if provider is None:
        return dict(EMPTY_PROVIDER)
    get = provider.get if isinstance(provider, Mapping) else lambda k, d=None: getattr(provider, k, d)
    return {
        "name": str(get("name", "") or ""),
        "tier": str(get("tier", "api") or ""),
        "region": str(get("region", "") or ""),
        "zero_data_retention": bool(get("zero_data_retention", False)),
        "baa": bool(get("baa", False)),
        "trains_on_inputs": bool(get("trains_on_inputs", False)),
        "certifications": sorted(str(c) for c in (get("certifications", None) or ())),
    }


_ACTION_TYPE = f"{NAMESPACE}::Action"


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": f"{NAMESPACE}::{kind}", "id": ident}


def _principal_tags(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A principal's other attributes as Cedar tags (those Cedar can hold)."""
    tags = {}
    for k, v in attrs.items():
        if k in _PRINCIPAL_ATTRS:
            continue
        tv = _tag_value(v)
        if tv is not None:
            tags[str(k)] = tv
    return tags


def _tag_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)[:MAX_TAG_CHARS]
    return None


def principal_entities(principal: Principal) -> list[dict[str, Any]]:
    """The principal and its groups as Cedar entities (other attributes become tags)."""
    kind = "Service" if principal.kind == "service" else "User"
    attrs = principal.attributes or {}
    tags = _principal_tags(attrs)
    entity = {
        "uid": _uid(kind, principal.subject),
        "attrs": {
            "email": principal.email or "",
            "roles": sorted(principal.roles),
            "tenant": principal.tenant or "",
            "region": str(attrs.get("region") or ""),
            "auth_method": principal.auth_method,
        },
        "parents": [_uid("Group", g) for g in principal.groups],
        "tags": tags,
    }
    groups = [{"uid": _uid("Group", g), "attrs": {}, "parents": []} for g in principal.groups]
    return [entity, *groups]


def resource_type(ref: ResourceRef) -> str:
    """The resource's type without namespace; unknown types are refused."""
    kind = ref.type.removeprefix(f"{NAMESPACE}::")
    if kind not in RESOURCE_ATTRIBUTES:
        raise BastionError(f"unknown policy resource type {ref.type!r}")
    return kind


def resource_entity(ref: ResourceRef) -> dict[str, Any]:
    """The resource as a Cedar entity: declared attributes only, defaults filled in."""
    kind = resource_type(ref)
    attrs: dict[str, Any] = {}
    for name, default in RESOURCE_ATTRIBUTES[kind].items():
        value = ref.attributes.get(name, default)
        if isinstance(default, list):
            attrs[name] = [{"__entity": _uid("Group", str(g))} for g in (value or ())]
        else:
            attrs[name] = str(value)
    parents = []
    if kind == "Model" and attrs.get("provider"):
        parents.append(_uid("Provider", attrs["provider"]))
    return {"uid": _uid(kind, ref.id), "attrs": attrs, "parents": parents}


_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
#: Principals, resources and providers whose encodings are remembered (per engine).
DEFAULT_MEMO_SIZE = 4096
#: Slots for the subjects seen lately (a power of two).
SUBJECT_SLOTS = 4096
#: Resources and providers whose encodings are remembered by identity (the engine's own, reused).
OBJECT_MEMO_SIZE = 256
#: Slots (a power of two) for principals seen once, remembered by identity: enough for the few
#: decisions one request asks for, one after the other. Kept small on purpose: each entry holds a
#: dozen young objects until it is pushed out, and the garbage collector's young generation, counted
#: by objects made less objects freed (of any age), would otherwise hold thousands of them by the
#: time it is collected.
PRINCIPAL_MEMO_SIZE = 32
#: Slots (a power of two) for principals remembered by value too (their subjects recur), by identity:
#: their entities are kept anyway, so an entry holds little that is new.
KNOWN_PRINCIPAL_MEMO_SIZE = 256

Token = tuple[Any, ...]


_SEQUENCES = (list, tuple, set, frozenset)


def _freeze(value: Any) -> Any:
    """A hashable token of ``value`` that differs wherever its encoding can (``1``, ``True`` and ``"1"`` too)."""
    t = type(value)
    if t is str:
        return value
    if t is dict or isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if t in _SEQUENCES:
        return (t.__name__, tuple(sorted(repr(v) for v in value)))
    return (t.__name__, value)


def _freeze_attributes(attrs: Any) -> Any:
    """``_freeze(attrs)``; when every key and value is a string (the usual case), without a call per item."""
    if type(attrs) is dict:
        if len(attrs) == 1:
            ((k, v),) = attrs.items()
            if type(k) is str and type(v) is str:
                return ("map", ((k, v),))
            return _freeze(attrs)
        for k, v in attrs.items():
            if type(k) is not str or type(v) is not str:
                return _freeze(attrs)
        # Keys are distinct, so sorting the pairs compares keys only, as _freeze does.
        return ("map", tuple(sorted(attrs.items())))
    return _freeze(attrs)


def _principal_token(p: Principal) -> Token:
    return (
        p.kind,
        p.subject,
        p.email,
        p.groups,
        p.roles,
        p.tenant,
        p.auth_method,
        _freeze_attributes(p.attributes or {}),
    )


class _Entities:
    """A principal (with its groups) or a resource as Cedar entity JSON and as the evaluator's store.

    The JSON is made only when Cedar is called; ``store`` is None when only Cedar can read them.
    """

    __slots__ = ("uid", "store", "masks", "_principal", "_token", "_objects", "_text")

    def __init__(
        self,
        uid: Uid,
        *,
        objects: list[dict[str, Any]] | None = None,
        principal: Principal | None = None,
        token: Token = (),
        store: dict[Uid, Entity] | None = None,
    ) -> None:
        self.uid = uid
        self._objects = objects
        self._principal = principal
        self._token = token
        self._text: str | None = None
        if store is None and objects is not None:
            try:
                store = entity_store(objects)
            except Unsupported:
                store = None
        self.store = store
        #: Scope masks of these entities, per index (filled by the indexes).
        self.masks: dict[int, int] = {}

    @classmethod
    def of_principal(cls, uid: Uid, store: dict[Uid, Entity], principal: Principal, token: Token) -> _Entities:
        """A principal's, from its store (``principal_store``): its JSON is made from it if Cedar is called."""
        ents = _new(cls)
        ents.uid = uid
        ents.store = store
        ents.masks = {}
        ents._principal = principal
        ents._token = token
        ents._objects = None
        ents._text = None
        return ents

    @classmethod
    def of(cls, objects: list[dict[str, Any]]) -> _Entities:
        """From the JSON objects (the first is the principal or resource)."""
        first = objects[0]["uid"]
        return cls((first["type"], first["id"]), objects=objects)

    @property
    def objects(self) -> list[dict[str, Any]]:
        """The Cedar entity JSON objects."""
        if self._objects is None:
            p = self._principal
            assert p is not None
            # Made later than the store: refuse if the principal changed in between.
            if _principal_token(p) != self._token:
                raise BastionError("the principal changed while its request was being decided")
            self._objects = principal_entities(p)
        return self._objects

    @property
    def text(self) -> str:
        """The objects as JSON, without the enclosing brackets."""
        if self._text is None:
            self._text = _dumps(self.objects)[1:-1]
        return self._text


_GROUP_TYPE = f"{NAMESPACE}::Group"
_NO_ATTRS: dict[str, Any] = {}
_GROUP_ENTITY = Entity(_NO_ATTRS, frozenset(), _NO_ATTRS)
_NO_ROLES: frozenset[str] = frozenset()
_NO_STRINGS: frozenset[str] = frozenset()


_SERVICE_TYPE = f"{NAMESPACE}::Service"
_USER_TYPE = f"{NAMESPACE}::User"


#: A principal's groups -> (their uids, the store of the group entities): shared by their members.
GroupStores = dict[tuple[str, ...], tuple[frozenset[Uid], dict[Uid, Entity]]]


def principal_store(
    principal: Principal, groups_seen: GroupStores | None = None
) -> tuple[Uid, dict[Uid, Entity]] | None:
    """The principal's uid and ``principal_entities`` in the evaluator's terms, built directly.

    None: only the generic conversion can tell. ``groups_seen``: what was made for the same groups
    before (read and filled; bounded by DEFAULT_MEMO_SIZE).
    """
    attrs = principal.attributes or _NO_ATTRS
    email, tenant, method = principal.email or "", principal.tenant or "", principal.auth_method
    if type(principal.subject) is not str or type(email) is not str or type(tenant) is not str:
        return None
    if type(method) is not str:
        return None
    roles, groups = principal.roles, principal.groups
    for r in roles:
        if type(r) is not str:
            return None
    for g in groups:
        if type(g) is not str:
            return None
    # Only "region" is an attribute rather than a tag: with no other key there are no tags.
    tags = _NO_ATTRS if attrs.keys() <= _PRINCIPAL_ATTRS else (_principal_tags(attrs) or _NO_ATTRS)
    seen = groups_seen.get(groups) if groups_seen is not None and type(groups) is tuple else None
    if seen is None:
        parents = frozenset([(_GROUP_TYPE, g) for g in groups])
        seen = (parents, dict.fromkeys(parents, _GROUP_ENTITY))
        if groups_seen is not None and type(groups) is tuple:
            put_bounded(groups_seen, groups, seen, DEFAULT_MEMO_SIZE)
    parents, group_store = seen
    region = attrs["region"] if "region" in attrs else None
    entity = Entity(
        {
            "email": email,
            "roles": frozenset(roles) if roles else _NO_ROLES,
            "tenant": tenant,
            "region": region if type(region) is str else str(region or ""),
            "auth_method": method,
        },
        parents,
        tags,
    )
    store = group_store.copy()
    uid = (_SERVICE_TYPE if principal.kind == "service" else _USER_TYPE, principal.subject)
    store[uid] = entity
    return uid, store


_new = object.__new__


class Encoded:
    """A request in Cedar's terms, plus a hashable key that identifies it exactly.

    In the key, the principal and the resource are tokens of everything their encodings are made
    of, so equal keys mean equal entities, however long ago either was encoded.
    """

    __slots__ = (
        "key",
        "action",
        "principal_groups",
        "resource_provider",
        "data_classes",
        "entity_types",
        "principal_uid",
        "resource_uid",
        "principal_masks",
        "resource_masks",
        "_values",
        "_provider",
        "_principal",
        "_resource",
        "_native_context",
        "_context",
        "_env",
        "guards",
    )

    def __init__(
        self,
        key: Token,
        action: str,
        principal_groups: tuple[str, ...],
        resource_provider: str,
        values: Token,
        provider: dict[str, Any],
        principal: _Entities,
        resource: _Entities,
        native_context: dict[str, Any] | None,
    ) -> None:
        self.key = key
        self.action = action
        self.principal_groups = principal_groups
        self.resource_provider = resource_provider
        self._values = values
        self._provider = provider
        self._principal = principal
        self._resource = resource
        self._native_context = native_context
        self._context: dict[str, Any] | None = None
        self._env: Env | None = None
        #: What each guard index let through for this request (GuardIndex.holding's memo).
        self.guards: dict[Any, int] = {}
        #: The data classes and the entity types in the context, sorted.
        self.data_classes: tuple[str, ...] = values[0]
        self.entity_types: tuple[str, ...] = values[1]
        #: (type, id) of the principal and of the resource.
        self.principal_uid: Uid = principal.uid
        self.resource_uid: Uid = resource.uid
        #: Scope masks of the principal's and the resource's encodings, per index (kept with them).
        self.principal_masks: dict[int, int] = principal.masks
        self.resource_masks: dict[int, int] = resource.masks

    @property
    def provider_name(self) -> str:
        """``context.provider.name``."""
        return str(self._provider["name"])

    @property
    def cedar_request(self) -> dict[str, Any]:
        """Principal, action and resource as Cedar JSON uids."""
        (pt, pi), (rt, ri) = self._principal.uid, self._resource.uid
        return {
            "principal": {"type": pt, "id": pi},
            "action": _uid("Action", self.action),
            "resource": {"type": rt, "id": ri},
        }

    @property
    def context(self) -> dict[str, Any]:
        """The context as Cedar JSON data."""
        ctx = self._context
        if ctx is None:
            ctx = dict(zip(_CONTEXT_ORDER, self._values, strict=True))
            ctx["data_classes"] = list(self._values[0])
            ctx["entity_types"] = list(self._values[1])
            ctx["provider"] = self._provider
            self._context = ctx
        return ctx

    @property
    def entities_json(self) -> str:
        """The principal, its groups and the resource as a Cedar entities document."""
        return "[" + self._principal.text + "," + self._resource.text + "]"

    @property
    def context_json(self) -> str:
        """The context as Cedar JSON."""
        return _dumps(self.context)

    @property
    def env(self) -> Env | None:
        """The request for the compiled evaluator (None when only Cedar can take it)."""
        env = self._env
        if env is None:
            pstore, rstore, ctx = self._principal.store, self._resource.store, self._native_context
            if pstore is None or rstore is None or ctx is None:
                return None
            for uid in rstore:
                if uid in pstore:
                    return None  # the principal's entities and the resource's share a uid
            env = Env(self.principal_uid, (_ACTION_TYPE, self.action), self.resource_uid, ctx, {**pstore, **rstore})
            self._env = env
        return env


class ProviderTarget:
    """A provider asked about as the resource of invoke_model with itself as ``context.provider``,
    encoded once: the engine asks this of its registry whenever it looks for a reroute."""

    __slots__ = ("name", "resource_token", "resource", "resource_provider", "info", "key", "native", "entity")

    def __init__(
        self,
        name: str,
        resource_token: Token,
        resource: _Entities,
        resource_provider: str,
        info: dict[str, Any],
        key: Token,
        native: dict[str, Any],
    ) -> None:
        self.name = name
        self.resource_token = resource_token
        #: The provider's resource entity (its scope masks are kept with it).
        self.resource = resource
        self.resource_provider = resource_provider
        self.info = info
        self.key = key
        self.native = native
        store = resource.store
        #: (uid, entity) of the resource, when its store is that one entity.
        self.entity: tuple[Uid, Entity] | None = next(iter(store.items())) if store and len(store) == 1 else None


_INVOKE_MODEL = (_ACTION_TYPE, "invoke_model")


class ProviderAsker:
    """One request asked again for one provider after another (``Encoder.asker``).

    ``env_for(target)`` is ``Encoder.target_env(enc, target)``, made by swapping the resource and
    ``context.provider`` of one Env: valid until the next call.
    """

    __slots__ = ("env", "_pstore", "_entities", "_context", "_last")

    def __init__(self, principal: Uid, pstore: dict[Uid, Entity], native: dict[str, Any]) -> None:
        self._pstore = pstore
        self._entities: dict[Uid, Entity] = dict(pstore)
        self._context = dict(native)
        self._last: Uid | None = None
        self.env = Env(principal, _INVOKE_MODEL, principal, self._context, self._entities)

    def env_for(self, target: ProviderTarget) -> Env | None:
        """The request for ``target`` (None when only Cedar can take it)."""
        entities = self._entities
        if self._last is not None:
            del entities[self._last]
            self._last = None
        if target.entity is None:
            return None  # not one entity the evaluator reads: asked the plain way
        uid, entity = target.entity
        if uid in self._pstore:
            return None  # the principal's entities and the resource's share a uid
        entities[uid] = entity
        self._last = uid
        self._context["provider"] = target.native
        self.env.resource = target.resource.uid
        return self.env


class Encoder:
    """Encodes requests, remembering the encodings of principals, resources and providers seen."""

    def __init__(self, zone: tzinfo, memo_size: int = DEFAULT_MEMO_SIZE) -> None:
        self.zone = zone
        self._memo_size = memo_size
        # Principals by identity, (principal, token, entities) in the slot of id(principal): holding the
        # principal keeps its id from being reused while remembered; a newcomer replaces whoever held
        # its slot (no order to keep, nothing to walk).
        self._by_id: list[tuple[Any, ...] | None] = [None] * PRINCIPAL_MEMO_SIZE
        self._known_by_id: list[tuple[Any, ...] | None] = [None] * KNOWN_PRINCIPAL_MEMO_SIZE
        # id(obj) -> (obj, value) for resources and providers, first in first out: the engine reuses
        # a few of them for every request.
        self._refs_by_id: dict[int, tuple[Any, ...]] = OrderedDict()
        self._by_token: dict[Token, _Entities] = OrderedDict()
        #: Subjects seen lately, one per slot by hash: a principal's encoding is remembered by value
        #: once its subject recurs. Approximate (a subject can push out another) and costs no eviction.
        self._subjects: list[Any] = [None] * SUBJECT_SLOTS
        self._groups: GroupStores = OrderedDict()

    def _remember_id(self, obj: Any, value: Any) -> None:
        put_bounded(self._refs_by_id, id(obj), (obj, value), min(self._memo_size, OBJECT_MEMO_SIZE))

    def _remember_token(self, token: Token, value: _Entities) -> None:
        put_bounded(self._by_token, token, value, self._memo_size)

    def _principal(self, p: Principal) -> tuple[Token, _Entities]:
        hit = self._principal_by_id(p)
        if hit is not None:
            return hit[1], hit[2]
        token = _principal_token(p)
        # A caller is kept by value once its subject recurs: one-off callers would push out those who
        # do, and each kept encoding is a dozen objects the garbage collector walks. (Approximate both
        # ways: a subject pushed out of its slot is only looked up and kept again when it recurs.)
        seen = hash(p.subject) & (SUBJECT_SLOTS - 1)
        recurs = self._subjects[seen] == p.subject
        ents = self._by_token.get(token) if recurs else None
        if ents is None:
            built = principal_store(p, self._groups)
            if built is None:
                ents = _Entities.of(principal_entities(p))
            else:
                ents = _Entities.of_principal(built[0], built[1], p, token)
            if recurs:
                self._remember_token(token, ents)
            else:
                self._subjects[seen] = p.subject
        if self._memo_size > 0:
            at = id(p) >> 4
            if recurs:
                self._known_by_id[at & (KNOWN_PRINCIPAL_MEMO_SIZE - 1)] = (p, token, ents)
            else:
                self._by_id[at & (PRINCIPAL_MEMO_SIZE - 1)] = (p, token, ents)
        return token, ents

    def _principal_by_id(self, p: Principal) -> tuple[Any, ...] | None:
        """(p, token, entities) if ``p`` itself was encoded lately."""
        at = id(p) >> 4
        hit = self._by_id[at & (PRINCIPAL_MEMO_SIZE - 1)]
        if hit is None or hit[0] is not p:
            hit = self._known_by_id[at & (KNOWN_PRINCIPAL_MEMO_SIZE - 1)]
            if hit is None or hit[0] is not p:
                return None
        return hit

    def _resource(self, ref: ResourceRef) -> tuple[Token, _Entities, str]:
        hit = self._refs_by_id.get(id(ref))
        if hit is not None and hit[0] is ref:
            return hit[1]  # type: ignore[no-any-return]
        token = ("resource", ref.type, ref.id, _freeze(ref.attributes))
        ents = self._by_token.get(token)
        if ents is None:
            ents = _Entities.of([resource_entity(ref)])
            self._remember_token(token, ents)
        provider = str(ref.attributes.get("provider", "")) if resource_type(ref) == "Model" else ""
        value = (token, ents, provider)
        self._remember_id(ref, value)
        return value

    def _provider(self, value: Any) -> tuple[dict[str, Any], Token, dict[str, Any]]:
        hit = self._refs_by_id.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]  # type: ignore[no-any-return]
        by_object = value is not None and type(value) is not dict and not isinstance(value, Mapping)
        info = provider_info(value)
        key = tuple(tuple(v) if isinstance(v, list) else v for v in info.values())
        native = {**info, "certifications": frozenset(info["certifications"])}
        if by_object:
            self._remember_id(value, (info, key, native))
        return info, key, native

    def provider(self, value: Any) -> dict[str, Any]:
        """The ``context.provider`` record of a provider (remembered per provider object)."""
        return self._provider(value)[0]

    def for_provider(self, enc: Encoded, ref: ResourceRef, provider: Any) -> Encoded:
        """``enc``'s request asked again as invoke_model on provider ``ref``, with ``provider`` as context.provider.

        The same as encoding that request from scratch, except that an hour or weekday left
        to the clock is the one ``enc`` used.
        """
        rtoken, rents, rprov = self._resource(ref)
        info, pkey, pnative = self._provider(provider)
        native = enc._native_context
        return Encoded(
            key=("invoke_model", enc.key[1], rtoken, enc._values, pkey),
            action="invoke_model",
            principal_groups=enc.principal_groups,
            resource_provider=rprov,
            values=enc._values,
            provider=info,
            principal=enc._principal,
            resource=rents,
            native_context=None if native is None else {**native, "provider": pnative},
        )

    def target(self, name: str, ref: ResourceRef, provider: Any) -> ProviderTarget:
        """Provider ``ref`` (``provider`` its settings) encoded for ``for_target`` and ``target_env``."""
        rtoken, rents, rprov = self._resource(ref)
        info, pkey, pnative = self._provider(provider)
        return ProviderTarget(name, rtoken, rents, rprov, info, pkey, pnative)

    def for_target(self, enc: Encoded, target: ProviderTarget) -> Encoded:
        """``for_provider(enc, ref, provider)`` for the ``ref`` and ``provider`` ``target`` was made of."""
        native = enc._native_context
        return Encoded(
            ("invoke_model", enc.key[1], target.resource_token, enc._values, target.key),
            "invoke_model",
            enc.principal_groups,
            target.resource_provider,
            enc._values,
            target.info,
            enc._principal,
            target.resource,
            None if native is None else {**native, "provider": target.native},
        )

    def asker(self, enc: Encoded) -> ProviderAsker | None:
        """``enc`` ready to be asked again for provider after provider (None when only Cedar can take it)."""
        pstore, native = enc._principal.store, enc._native_context
        if pstore is None or native is None:
            return None
        return ProviderAsker(enc.principal_uid, pstore, native)

    def target_env(self, enc: Encoded, target: ProviderTarget) -> Env | None:
        """``for_target(enc, target).env``, without the rest of that encoding."""
        pstore, rstore, native = enc._principal.store, target.resource.store, enc._native_context
        if pstore is None or rstore is None or native is None:
            return None
        for uid in rstore:
            if uid in pstore:
                return None
        context = {**native, "provider": target.native}
        return Env(enc.principal_uid, _INVOKE_MODEL, target.resource.uid, context, {**pstore, **rstore})

    def encode(self, request: PolicyRequest) -> Encoded:
        """Encode one request (entities and context), with its exact cache key."""
        # The memo look-ups of _principal, _resource and _provider, inlined for the usual hits.
        p = request.principal
        at = id(p) >> 4
        hit = self._by_id[at & (PRINCIPAL_MEMO_SIZE - 1)]
        if hit is None or hit[0] is not p:
            hit = self._known_by_id[at & (KNOWN_PRINCIPAL_MEMO_SIZE - 1)]
        if hit is not None and hit[0] is p:
            ptoken, pents = hit[1], hit[2]
        else:
            ptoken, pents = self._principal(p)
        by_id = self._refs_by_id
        ref = request.resource
        key = id(ref)
        hit = by_id[key] if key in by_id else None
        if hit is not None and hit[0] is ref:
            rtoken, rents, provider = hit[1]
        else:
            rtoken, rents, provider = self._resource(ref)
        raw = request.context
        if raw and not CONTEXT_KEYS.issuperset(raw):
            raise BastionError(f"unknown policy context keys: {', '.join(sorted(set(raw) - CONTEXT_KEYS))}")
        # raw[k] if k in raw: a look-up without a method call (``raw`` is a Mapping; no default is made).
        given = raw["provider"] if "provider" in raw else None
        key = id(given)
        hit = by_id[key] if key in by_id else None
        if hit is not None and hit[0] is given:
            info, pkey, pnative = hit[1]
        else:
            info, pkey, pnative = self._provider(given)
        dc = raw["data_classes"] if "data_classes" in raw else None
        classes = tuple(sorted(set(map(str, dc)))) if dc else ()
        et = raw["entity_types"] if "entity_types" in raw else None
        types = tuple(sorted(set(map(str, et)))) if et else ()
        hour = raw["hour"] if "hour" in raw else None
        weekday = raw["weekday"] if "weekday" in raw else None
        if hour is None or weekday is None:
            now = datetime.now(self.zone)
            hour = now.hour if hour is None else hour
            weekday = now.isoweekday() if weekday is None else weekday
        # Each value as float(), int(), str() or bool() makes it, skipping the call when it already is one.
        score = (raw["injection_score"] if "injection_score" in raw else None) or 0.0
        if type(score) is not float:
            score = float(score)
        if "request_kib" in raw:
            kib = raw["request_kib"]
            if type(kib) is not int:
                kib = int(kib)
        else:
            size = (raw["request_bytes"] if "request_bytes" in raw else None) or 0
            if type(size) is not int:
                size = int(size)
            # math.ceil(size / 1024), in integers where the float division is exact (it is below 2**53).
            kib = (0 if size <= 0 else -(-size // 1024)) if size < _EXACT_FLOAT else math.ceil(size / 1024)
        # min(1.0, max(0.0, score)), NaN included (it becomes 0.0).
        score = score if score > 0.0 else 0.0
        percent = round((score if score < 1.0 else 1.0) * 100)
        region = (raw["caller_region"] if "caller_region" in raw else None) or ""
        if type(region) is not str:
            region = str(region)
        if type(hour) is not int:
            hour = int(hour)
        if type(weekday) is not int:
            weekday = int(weekday)
        approved = raw["approved"] if "approved" in raw else False
        if type(approved) is not bool:
            approved = bool(approved)
        model = (raw["model"] if "model" in raw else None) or ""
        if type(model) is not str:
            model = str(model)
        values = (classes, types, percent, region, hour, weekday, kib, approved, model)
        native: dict[str, Any] | None = None
        if I64_MIN <= hour <= I64_MAX and I64_MIN <= weekday <= I64_MAX and I64_MIN <= kib <= I64_MAX:
            native = {
                "data_classes": frozenset(classes) if classes else _NO_STRINGS,
                "entity_types": frozenset(types) if types else _NO_STRINGS,
                "injection_score": percent,
                "caller_region": region,
                "hour": hour,
                "weekday": weekday,
                "request_kib": kib,
                "approved": approved,
                "model": model,
                "provider": pnative,
            }
        return Encoded(
            (request.action, ptoken, rtoken, values, pkey),
            request.action,
            p.groups,
            provider,
            values,
            info,
            pents,
            rents,
            native,
        )


#: Integers up to this convert to float exactly.
_EXACT_FLOAT = 2**53

_CONTEXT_ORDER = (
    "data_classes",
    "entity_types",
    "injection_score",
    "caller_region",
    "hour",
    "weekday",
    "request_kib",
    "approved",
    "model",
)


def encode_request(request: PolicyRequest, zone: tzinfo) -> tuple[dict[str, Any], str, str]:
    """(Cedar request without context, entities JSON, context JSON) for one request."""
    enc = Encoder(zone).encode(request)
    return enc.cedar_request, enc.entities_json, enc.context_json
