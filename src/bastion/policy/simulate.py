"""Simulated requests: principal and request as plain JSON/YAML data, for explain and policy tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bastion.context import Principal
from bastion.errors import InvalidRequest
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import PolicyRequest, ResourceRef
from bastion.policy.schema import ACTIONS

if TYPE_CHECKING:
    from bastion.settings import ModelSettings

_PRINCIPAL_KEYS = frozenset(
    {
        "subject",
        "sub",
        "kind",
        "email",
        "groups",
        "roles",
        "tenant",
        "attributes",
        "region",
        "allowed_models",
        "auth_method",
    }
)
_REQUEST_KEYS = frozenset(
    {"action", "model", "provider", "resource", "data_classes", "entity_types", "findings", "context"}
)


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidRequest(f"{what} must be a list of strings")
    return tuple(str(v) for v in value)


def principal_from_data(data: Mapping[str, Any]) -> Principal:
    """A Principal from ``{"subject", "kind", "groups", "roles", "tenant", "region", "attributes"}``."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("the principal must be an object")
    unknown = set(data) - _PRINCIPAL_KEYS
    if unknown:
        raise InvalidRequest(f"unknown principal keys: {', '.join(sorted(unknown))}")
    subject = data.get("subject", data.get("sub"))
    if not subject:
        raise InvalidRequest("the principal needs a subject")
    kind = data.get("kind", "user")
    if kind not in ("user", "service"):
        raise InvalidRequest("principal kind must be user or service")
    attrs = dict(data.get("attributes") or {})
    if data.get("region"):
        attrs["region"] = str(data["region"])
    allowed = data.get("allowed_models")
    return Principal(
        subject=str(subject),
        kind=kind,
        email=data.get("email"),
        groups=_strs(data.get("groups"), "groups"),
        roles=_strs(data.get("roles"), "roles"),
        tenant=data.get("tenant"),
        attributes=attrs,
        auth_method=data.get("auth_method", "api_key"),
        allowed_models=None if allowed is None else _strs(allowed, "allowed_models"),
    )


def _finding_classes(finding: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    ftype = str(finding.get("type", ""))
    if not ftype:
        raise InvalidRequest("every finding needs a type")
    classes = finding.get("data_classes")
    if classes is None:
        # The detectors' own table says which classes a built-in type belongs to.
        from bastion.protect.entities import data_classes_of

        return ftype, data_classes_of(ftype)
    return ftype, _strs(classes, "finding data_classes")


def request_from_data(
    engine: PolicyEngine,
    principal: Principal,
    data: Mapping[str, Any],
    models: list[ModelSettings] | None = None,
) -> PolicyRequest:
    """A PolicyRequest from ``{"action", "model" | "provider" | "resource", "findings", "context", ...}``."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("the request must be an object")
    unknown = set(data) - _REQUEST_KEYS
    if unknown:
        raise InvalidRequest(f"unknown request keys: {', '.join(sorted(unknown))}")
    action = str(data.get("action", "invoke_model"))
    if action not in ACTIONS:
        raise InvalidRequest(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    ctx: dict[str, Any] = dict(data.get("context") or {})
    classes = set(_strs(data.get("data_classes"), "data_classes"))
    types = set(_strs(data.get("entity_types"), "entity_types"))
    for f in data.get("findings") or ():
        ftype, fclasses = _finding_classes(f)
        types.add(ftype)
        classes.update(fclasses)
    if classes:
        ctx["data_classes"] = sorted(classes | set(ctx.get("data_classes") or ()))
    if types:
        ctx["entity_types"] = sorted(types | set(ctx.get("entity_types") or ()))
    providers = engine.providers
    if "resource" in data:
        r = data["resource"]
        if not isinstance(r, Mapping) or "type" not in r or "id" not in r:
            raise InvalidRequest("resource must be {type, id, attributes}")
        resource = ResourceRef(str(r["type"]), str(r["id"]), dict(r.get("attributes") or {}))
        if "provider" in data:
            ctx["provider"] = _provider(providers, data["provider"])
        return PolicyRequest(principal, action, resource, ctx)
    if "model" in data:
        name = str(data["model"])
        model = next((m for m in models or () if m.name == name), None)
        if model is None:
            raise InvalidRequest(f"model {name!r} is not in the configuration")
        if "provider" in data:
            ctx["provider"] = _provider(providers, data["provider"])
        return engine.request_for_model(principal, model, ctx)
    if "provider" in data:
        prov = _provider(providers, data["provider"])
        ctx["provider"] = prov
        name = prov.get("name", "") if isinstance(prov, Mapping) else prov.name
        return PolicyRequest(principal, action, ResourceRef.provider(str(name)), ctx)
    raise InvalidRequest("the request needs a model, a provider or a resource")


def _provider(providers: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    prov = providers.get(str(value))
    if prov is None:
        raise InvalidRequest(f"provider {value!r} is not in the configuration")
    return prov
