"""Turning a PolicyRequest into the entity and context JSON Cedar evaluates."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from bastion.context import Principal
from bastion.errors import BastionError
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


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": f"{NAMESPACE}::{kind}", "id": ident}


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
    tags = {}
    for k, v in attrs.items():
        if k in _PRINCIPAL_ATTRS:
            continue
        tv = _tag_value(v)
        if tv is not None:
            tags[str(k)] = tv
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


def _str_set(values: Iterable[Any] | None) -> list[str]:
    return sorted({str(v) for v in values or ()})


def build_context(raw: Mapping[str, Any], zone: tzinfo, now: datetime | None = None) -> dict[str, Any]:
    """The full Cedar context: every schema field present, values normalised."""
    unknown = set(raw) - CONTEXT_KEYS
    if unknown:
        raise BastionError(f"unknown policy context keys: {', '.join(sorted(unknown))}")
    if "hour" in raw and "weekday" in raw:
        hour, weekday = int(raw["hour"]), int(raw["weekday"])
    else:
        t = now or datetime.now(zone)
        hour, weekday = int(raw.get("hour", t.hour)), int(raw.get("weekday", t.isoweekday()))
    score = float(raw.get("injection_score") or 0.0)
    if "request_kib" in raw:
        kib = int(raw["request_kib"])
    else:
        kib = math.ceil(max(0, int(raw.get("request_bytes") or 0)) / 1024)
    return {
        "data_classes": _str_set(raw.get("data_classes")),
        "entity_types": _str_set(raw.get("entity_types")),
        "injection_score": round(min(1.0, max(0.0, score)) * 100),
        "caller_region": str(raw.get("caller_region") or ""),
        "hour": hour,
        "weekday": weekday,
        "request_kib": kib,
        "approved": bool(raw.get("approved", False)),
        "model": str(raw.get("model") or ""),
        "provider": provider_info(raw.get("provider")),
    }


def encode_request(request: PolicyRequest, zone: tzinfo) -> tuple[dict[str, Any], str, str]:
    """(Cedar request without context, entities JSON, context JSON) for one request."""
    entities = principal_entities(request.principal)
    entities.append(resource_entity(request.resource))
    kind = "Service" if request.principal.kind == "service" else "User"
    cedar_request = {
        "principal": _uid(kind, request.principal.subject),
        "action": _uid("Action", request.action),
        "resource": _uid(resource_type(request.resource), request.resource.id),
    }
    context = build_context(request.context, zone)
    dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
    return cedar_request, dumps(entities), dumps(context)
