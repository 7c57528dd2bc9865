"""The scope index must never change a decision: sliced evaluation equals evaluating the whole set."""

from __future__ import annotations

import json
import random

import cedarpy
import pytest

from bastion.context import Principal
from bastion.policy.config import PolicySettings
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import PolicyRequest, ResourceRef
from bastion.policy.source import PolicySource, compile_sources

GROUPS = ["a", "b", "c", "d"]
USERS = ["u1", "u2", "u3"]
MODELS = [("m1", "p1"), ("m2", "p1"), ("m3", "p2")]

PRINCIPAL_SCOPES = [
    "principal",
    'principal == Bastion::User::"u1"',
    'principal in Bastion::Group::"a"',
    'principal in Bastion::Group::"c"',
    "principal is Bastion::Service",
    'principal is Bastion::User in Bastion::Group::"b"',
    'principal in Bastion::User::"u2"',
]
RESOURCE_SCOPES = [
    "resource",
    'resource == Bastion::Model::"m1"',
    'resource in Bastion::Provider::"p1"',
    'resource is Bastion::Model in Bastion::Provider::"p2"',
    "resource is Bastion::Provider",
    'resource == Bastion::Provider::"p2"',
]


def _policies(rng: random.Random, n: int) -> str:
    out = []
    for i in range(n):
        effect = rng.choice(["permit", "permit", "forbid"])
        cond = rng.choice(["", ' when { context.data_classes.contains("pii") }', " when { context.hour > 11 }"])
        out.append(
            f'@id("r{i}") {effect}({rng.choice(PRINCIPAL_SCOPES)}, '
            f'action == Bastion::Action::"invoke_model", {rng.choice(RESOURCE_SCOPES)}){cond};'
        )
    return "\n".join(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sliced_equals_full(seed: int) -> None:
    rng = random.Random(seed)
    text = _policies(rng, 60)
    engine = PolicyEngine.from_text(text, settings=PolicySettings(include_defaults=False, decision_cache_size=0))
    compiled = compile_sources([PolicySource("t", text)])
    full = cedarpy.PolicySet.from_json_str(
        json.dumps({"staticPolicies": {p.id: p.est for p in compiled.policies}, "templates": {}, "templateLinks": []})
    )
    for _ in range(300):
        kind = rng.choice(["user", "user", "service"])
        who = Principal(rng.choice(USERS), kind=kind, groups=tuple(rng.sample(GROUPS, rng.randint(0, 2))))
        if rng.random() < 0.7:
            name, prov = rng.choice(MODELS)
            ref = ResourceRef.model(name, provider=prov)
        else:
            ref = ResourceRef.provider(rng.choice(["p1", "p2"]))
        ctx = {"data_classes": rng.choice([[], ["pii"]]), "hour": rng.randint(0, 23), "weekday": 3}
        req = PolicyRequest(who, "invoke_model", ref, ctx)
        enc = engine._encoder.encode(req)
        expect = cedarpy.is_authorized({**enc.cedar_request, "context": enc.context_json}, full, enc.entities_json)
        got = engine._authorize("invoke_model", enc)
        assert got.allowed == expect.allowed, (who, ref, ctx)
        assert sorted(got.fired) == sorted(expect.diagnostics.reasons), (who, ref, ctx)
