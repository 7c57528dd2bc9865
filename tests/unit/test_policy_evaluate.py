"""The compiled evaluator against Cedar: same matches, same errors, same decisions.

Policies are generated at random from Cedar's expression forms over Bastion's
schema, including ill-typed ones, missing attributes and tags, and overflows
(the policies are not validated here, so every run-time error path is
reached). Each policy is checked alone against Cedar on generated requests
(matched / not matched / error must agree exactly), and whole sets are checked
for the decision and the determining policies. Then whole engines with the
compiled evaluator are compared with engines that call Cedar for everything.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from bastion.context import Principal
from bastion.errors import BastionError
from bastion.policy.config import PolicySettings
from bastion.policy.encode import Encoder
from bastion.policy.engine import PolicyEngine
from bastion.policy.evaluate import (
    CedarError,
    CompiledRule,
    Entity,
    Unsupported,
    authorize,
    cedar_eq,
    compile_policy,
    entity_store,
    from_json,
)
from bastion.policy.guards import GuardIndex, guards_of
from bastion.policy.model import EVALUATION_ERROR_ID, PolicyRequest, ResourceRef
from bastion.policy.schema import ACTIONS
from bastion.settings import ModelSettings, ProviderSettings

GROUPS = ["eng", "legal", "ops", "x"]
ROLES = ["admin", "auditor", "approver", "elevated-features"]
CLASSES = ["pii", "phi", "pci", "credentials", "financial"]
TYPES = ["EMAIL_ADDRESS", "US_SSN", "SECRET"]
TIERS = ["api", "consumer", "enterprise", "on_prem"]
REGIONS = ["eu-west-1", "us-east-1", "", "eu", "EU-x", "e*u"]
MODELS = [("m1", "p1"), ("m2", "p1"), ("m3", "p2"), ("m4", "")]
ZONE = __import__("zoneinfo").ZoneInfo("UTC")
BIG = 2**63 - 1


class Gen:
    """Random Cedar expressions, mostly well-typed, sometimes not."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def pick(self, *xs: str) -> str:
        return self.r.choice(xs)

    def string_lit(self) -> str:
        return json.dumps(self.r.choice(["eu-west-1", "pii", "legal", "", "api", "consumer", "m1", "a*b", "x"]))

    def long(self, d: int) -> str:
        r = self.r.random()
        if d <= 0 or r < 0.45:
            return self.pick(
                "context.hour",
                "context.weekday",
                "context.request_kib",
                "context.injection_score",
                str(self.r.choice([0, 1, 3, 5, 11, 23, 50, 64, 100, 4611686018427387904, BIG])),
                str(-self.r.choice([1, 7])),
            )
        if r < 0.8:
            op = self.pick("+", "-", "*")
            return f"({self.long(d - 1)} {op} {self.long(d - 1)})"
        if r < 0.9:
            return f"(-{self.long(d - 1)})"
        return f"(if {self.boolean(d - 1)} then {self.long(d - 1)} else {self.long(d - 1)})"

    def string(self, d: int) -> str:
        r = self.r.random()
        if d <= 0 or r < 0.85:
            return self.pick(
                "context.model",
                "context.caller_region",
                "context.provider.tier",
                "context.provider.region",
                "context.provider.name",
                "principal.email",
                "principal.tenant",
                "principal.region",
                "principal.auth_method",
                "resource.provider",
                "resource.kind",
                "resource.risk_tier",
                "resource.region",
                'principal.getTag("dept")',
                self.string_lit(),
                self.string_lit(),
            )
        return f"(if {self.boolean(d - 1)} then {self.string(d - 1)} else {self.string(d - 1)})"

    def strings(self, d: int) -> str:
        r = self.r.random()
        if d <= 0 or r < 0.7:
            return self.pick(
                "context.data_classes",
                "context.entity_types",
                "principal.roles",
                "context.provider.certifications",
                '["pii", "phi"]',
                '["admin"]',
                "[]",
                f"[{self.string(0)}, {self.string_lit()}]",
            )
        return f"(if {self.boolean(d - 1)} then {self.strings(d - 1)} else {self.strings(d - 1)})"

    def entity(self) -> str:
        return self.pick(
            "principal",
            "resource",
            "action",
            'Bastion::Group::"eng"',
            'Bastion::Provider::"p1"',
            'Bastion::User::"u1"',
            'Bastion::Model::"m1"',
        )

    def entities(self) -> str:
        return self.pick(
            "resource.readers",
            '[Bastion::Group::"eng", Bastion::Group::"ops"]',
            '[Bastion::Provider::"p2"]',
            "[principal, resource]",
            "[]",
        )

    def anything(self, d: int) -> str:
        k = self.r.random()
        if k < 0.3:
            return self.long(d)
        if k < 0.6:
            return self.string(d)
        if k < 0.75:
            return self.strings(d)
        if k < 0.85:
            return self.entity()
        if k < 0.9:
            return "{a: 1, b: true}"
        return self.boolean(d)

    def boolean(self, d: int) -> str:
        g = self.r.random()
        if d <= 0:
            return self.pick(
                "context.approved",
                "context.provider.baa",
                "context.provider.trains_on_inputs",
                "context.provider.zero_data_retention",
                "true",
                "false",
                f"{self.strings(0)}.contains({self.string_lit()})",
                f'(principal in Bastion::Group::"{self.r.choice(GROUPS)}")',
            )
        if g < 0.12:
            op = self.pick("==", "!=")
            return f"({self.anything(d - 1)} {op} {self.anything(d - 1)})"
        if g < 0.24:
            op = self.pick("<", "<=", ">", ">=")
            return f"({self.long(d - 1)} {op} {self.long(d - 1)})"
        if g < 0.32:
            pat = self.pick('"eu*"', '"*-1"', '"e*u*"', '"eu-west-1"', '"*"', '""', '"e\\*u"', '"*\\**"')
            return f"({self.string(d - 1)} like {pat})"
        if g < 0.44:
            m = self.pick("contains", "containsAll", "containsAny")
            arg = self.string(d - 1) if m == "contains" else self.strings(d - 1)
            return f"{self.strings(d - 1)}.{m}({arg})"
        if g < 0.48:
            return f"{self.strings(d - 1)}.isEmpty()"
        if g < 0.56:
            return f"({self.entity()} in {self.pick(self.entity(), self.entities())})"
        if g < 0.62:
            target = self.pick("principal", "resource", "context", "context.provider", "{a: 1}")
            attr = self.pick("tenant", "region", "readers", "provider", "name", "a", "nope", "risk_tier")
            return f"({target} has {attr})"
        if g < 0.67:
            return f'principal.hasTag("{self.pick("dept", "level", "none")}")'
        if g < 0.71:
            t = self.pick("User", "Service", "Model", "Group")
            tail = self.pick("", ' in Bastion::Group::"eng"', ' in Bastion::Provider::"p1"')
            return f"({self.pick('principal', 'resource', '1')} is Bastion::{t}{tail})"
        if g < 0.78:
            op = self.pick("&&", "||")
            return f"({self.boolean(d - 1)} {op} {self.boolean(d - 1)})"
        if g < 0.83:
            return f"(!{self.boolean(d - 1)})"
        if g < 0.87:
            return f"(if {self.boolean(d - 1)} then {self.boolean(d - 1)} else {self.boolean(d - 1)})"
        if g < 0.9:
            # deliberately ill-typed
            return self.pick("(context.hour && true)", '("a" < 1)', "(!context.hour)", "principal.nope", "(1 in [1])")
        return self.boolean(0)

    def scope(self, var: str) -> str:
        if self.r.random() < 0.6:
            return var
        if var == "action":
            acts = self.r.sample(ACTIONS, 2)
            return self.pick(
                "action",
                f'action == Bastion::Action::"{acts[0]}"',
                f'action in [Bastion::Action::"{acts[0]}", Bastion::Action::"{acts[1]}"]',
            )
        if var == "principal":
            g = self.r.choice(GROUPS)
            return self.pick(
                "principal",
                'principal == Bastion::User::"u1"',
                f'principal in Bastion::Group::"{g}"',
                "principal is Bastion::Service",
                f'principal is Bastion::User in Bastion::Group::"{g}"',
            )
        return self.pick(
            "resource",
            'resource == Bastion::Model::"m1"',
            'resource in Bastion::Provider::"p1"',
            "resource is Bastion::Tool",
            'resource is Bastion::Model in Bastion::Provider::"p2"',
        )

    def policy(self, i: int) -> str:
        effect = self.pick("permit", "permit", "forbid")
        conds = ""
        for _ in range(self.r.choice([0, 1, 1, 2])):
            conds += f" {self.pick('when', 'unless')} {{ {self.boolean(self.r.randint(0, 3))} }}"
        return (
            f'@id("g{i}") {effect}({self.scope("principal")}, {self.scope("action")}, {self.scope("resource")}){conds};'
        )


def _est(text: str) -> dict[str, Any]:
    doc = json.loads(cedarpy.policies_to_json_str(text))
    statics = list(doc["staticPolicies"].values())
    assert len(statics) == 1
    return statics[0]  # type: ignore[no-any-return]


def _principal(rng: random.Random, i: int) -> Principal:
    attrs: dict[str, Any] = {"region": rng.choice(REGIONS)}
    if rng.random() < 0.6:
        attrs["dept"] = rng.choice(["legal", "eu-west-1", "x"])
    if rng.random() < 0.3:
        attrs["level"] = rng.choice([1, 3, True])
    return Principal(
        rng.choice(["u1", f"u{i}", "svc"]),
        kind=rng.choice(["user", "user", "service"]),
        email=rng.choice([None, "a@b.test"]),
        groups=tuple(rng.sample(GROUPS, rng.randint(0, 2))),
        roles=tuple(rng.sample(ROLES, rng.randint(0, 2))),
        tenant=rng.choice([None, "acme", "legal"]),
        attributes=attrs,
    )


def _resource(rng: random.Random) -> ResourceRef:
    k = rng.random()
    if k < 0.4:
        name, prov = rng.choice(MODELS)
        return ResourceRef.model(name, provider=prov)
    if k < 0.55:
        return ResourceRef.provider(rng.choice(["p1", "p2"]), tier=rng.choice(TIERS), region=rng.choice(REGIONS))
    if k < 0.7:
        return ResourceRef.tool("t", risk_tier=rng.choice(["standard", "high"]), server="s")
    if k < 0.85:
        return ResourceRef.feature("f", risk_tier=rng.choice(["standard", "elevated"]))
    return ResourceRef.collection("c", readers=rng.sample(GROUPS, rng.randint(0, 2)))


def _context(rng: random.Random) -> dict[str, Any]:
    return {
        "data_classes": rng.sample(CLASSES, rng.randint(0, 2)),
        "entity_types": rng.sample(TYPES, rng.randint(0, 1)),
        "injection_score": rng.random(),
        "caller_region": rng.choice(REGIONS),
        "hour": rng.choice([0, 3, 11, 23]),
        "weekday": rng.randint(1, 7),
        "request_kib": rng.choice([1, 64, 500, BIG, 2**62]),
        "approved": rng.random() < 0.3,
        "model": rng.choice(["m1", "m3", ""]),
        "provider": {
            "name": rng.choice(["p1", "p2"]),
            "tier": rng.choice(TIERS),
            "region": rng.choice(REGIONS),
            "baa": rng.random() < 0.5,
            "trains_on_inputs": rng.random() < 0.3,
            "certifications": rng.sample(["soc2", "iso27001"], rng.randint(0, 2)),
        },
    }


def _request(rng: random.Random, i: int) -> PolicyRequest:
    return PolicyRequest(_principal(rng, i), rng.choice(ACTIONS), _resource(rng), _context(rng))


def _cedar(policies: dict[str, dict[str, Any]], enc: Any) -> cedarpy.AuthzResult:
    pset = cedarpy.PolicySet.from_json_str(
        json.dumps({"staticPolicies": policies, "templates": {}, "templateLinks": []})
    )
    return cedarpy.is_authorized({**enc.cedar_request, "context": enc.context_json}, pset, enc.entities_json)


def _matches(rule: CompiledRule, env: Any) -> str:
    try:
        return "match" if rule.matches(env) else "no"
    except CedarError:
        return "error"


@pytest.mark.parametrize("seed", range(6))
def test_each_policy_matches_and_fails_exactly_as_in_cedar(seed: int) -> None:
    rng = random.Random(seed)
    gen = Gen(rng)
    policies = []
    for i in range(40):
        text = gen.policy(i)
        policies.append((f"g{i}", _est(text), text))
    rules = {pid: compile_policy(pid, est) for pid, est, _ in policies}
    encoder = Encoder(ZONE)
    seen = {"match": 0, "no": 0, "error": 0}
    for n in range(80):
        enc = encoder.encode(_request(rng, n))
        env = enc.env
        assert env is not None
        for pid, est, text in policies:
            res = _cedar({pid: est}, enc)
            expect = "error" if res.diagnostics.errors else ("match" if res.diagnostics.reasons else "no")
            try:
                got = _matches(rules[pid], env)
            except Unsupported:
                continue
            assert got == expect, (text, enc.cedar_request, enc.context, enc.entities_json, res.diagnostics.errors)
            seen[expect] += 1
    # The generator reaches every outcome, so the comparison is not vacuous.
    assert min(seen.values()) > 15, seen


@pytest.mark.parametrize("seed", range(4))
def test_sets_decide_as_cedar_or_defer_to_it(seed: int) -> None:
    rng = random.Random(100 + seed)
    gen = Gen(rng)
    encoder = Encoder(ZONE)
    answered = deferred = 0
    for round_ in range(12):
        policies = {f"g{i}": _est(gen.policy(i)) for i in range(rng.randint(1, 25))}
        rules = [compile_policy(pid, est) for pid, est in policies.items()]
        for n in range(25):
            enc = encoder.encode(_request(rng, round_ * 100 + n))
            env = enc.env
            assert env is not None
            res = _cedar(policies, enc)
            got = authorize(rules, env)
            if res.diagnostics.errors:
                assert got is None, (policies, enc.context)
                deferred += 1
                continue
            assert got is not None
            answered += 1
            assert got.allowed == res.allowed
            assert set(got.fired) == set(res.diagnostics.reasons)
            # Reasons come in the order the policies were written.
            assert list(got.fired) == [p for p in policies if p in got.fired]
    assert answered > 100 and deferred > 10, (answered, deferred)


def test_native_request_is_what_cedar_reads() -> None:
    rng = random.Random(9)
    encoder = Encoder(ZONE)
    for n in range(200):
        enc = encoder.encode(_request(rng, n))
        env = enc.env
        assert env is not None
        assert cedar_eq(from_json(json.loads(enc.context_json)), dict(env.context))
        store = entity_store(json.loads(enc.entities_json))
        assert store.keys() == env.entities.keys()
        for uid, ent in store.items():
            other = env.entities[uid]
            assert cedar_eq(dict(ent.attrs), dict(other.attrs)) and cedar_eq(dict(ent.tags), dict(other.tags))
            assert ent.ancestors == other.ancestors


def test_asking_again_for_a_provider_encodes_as_from_scratch() -> None:
    rng = random.Random(21)
    encoder = Encoder(ZONE)
    for n in range(200):
        req = _request(rng, n)
        enc = encoder.encode(req)
        prov = rng.choice(PROVIDERS)
        ref = ResourceRef.provider(prov.name, tier=prov.tier, region=prov.region)
        again = encoder.for_provider(enc, ref, prov)
        scratch = encoder.encode(PolicyRequest(req.principal, "invoke_model", ref, {**req.context, "provider": prov}))
        assert again.key == scratch.key
        assert again.cedar_request == scratch.cedar_request
        assert again.context_json == scratch.context_json
        assert again.entities_json == scratch.entities_json
        assert again.env is not None and scratch.env is not None
        assert cedar_eq(dict(again.env.context), dict(scratch.env.context))
        assert again.env.entities.keys() == scratch.env.entities.keys()


def test_asking_provider_after_provider_gives_each_its_own_request() -> None:
    rng = random.Random(22)
    encoder = Encoder(ZONE)
    targets = [encoder.target(p.name, ResourceRef.provider(p.name, tier=p.tier, region=p.region), p) for p in PROVIDERS]
    asked = 0
    for n in range(150):
        enc = encoder.encode(_request(rng, n))
        asker = encoder.asker(enc)
        if asker is None:
            assert enc.env is None
            continue
        for target in rng.sample(targets, len(targets)):
            got = asker.env_for(target)
            scratch = encoder.for_target(enc, target).env
            assert got is not None and scratch is not None
            assert (got.principal, got.action, got.resource) == (scratch.principal, scratch.action, scratch.resource)
            assert cedar_eq(dict(got.context), dict(scratch.context))
            assert got.entities == scratch.entities
            asked += 1
    assert asked > 300


def test_attribute_values_of_other_types_are_not_confused_by_the_caches() -> None:
    text = """
    @id("level-1") permit(principal, action == Bastion::Action::"invoke_model", resource)
      when { principal.hasTag("level") && principal.getTag("level") == "1" };
    """
    eng = PolicyEngine.from_text(text, settings=PolicySettings(include_defaults=False))
    model = ResourceRef.model("m1", provider="p1")
    decided = {}
    for value in (1, True, "1", "true", 1.0):
        who = Principal("same", attributes={"level": value})
        decided[repr(value)] = eng.decide(PolicyRequest(who, "invoke_model", model)).allowed
    assert decided == {"1": True, "True": False, "'1'": True, "'true'": False, "1.0": False}


def test_values_keep_cedar_types_apart() -> None:
    assert not cedar_eq(1, True) and not cedar_eq(0, False)
    assert not cedar_eq(frozenset({1}), frozenset({True}))
    assert not cedar_eq({"a": 1}, {"a": True})
    assert cedar_eq(frozenset({"a", ("T", "x")}), frozenset({("T", "x"), "a"}))
    with pytest.raises(Unsupported):
        from_json([1, True])
    with pytest.raises(Unsupported):
        from_json(2**63)
    env_est = _est("permit(principal, action, resource) when { [1, 2] == [2, 1] && !([1] == [true]) };")
    rule = compile_policy("p", env_est)
    enc = Encoder(ZONE).encode(_request(random.Random(1), 1))
    assert enc.env is not None and rule.matches(enc.env)


@pytest.mark.parametrize(
    "cond",
    [
        "context.request_kib * 4611686018427387904 > 0",
        "-(-9223372036854775807 - 1) > 0",
        "context.hour + 9223372036854775807 > 0",
        'principal.getTag("nope") == "x"',
        "principal.nope == 1",
        "resource.nope == 1",
        "context.hour && true",
        "true && context.hour",
        "!context.model",
        '"a" < 1',
        'context.hour like "1"',
        "1 in [principal]",
        "principal in [1]",
        "context.model.contains(1)",
        "context.data_classes.containsAll(1)",
        "context.hour.isEmpty()",
        "if 1 then true else false",
        "{a: 1}.b == 1",
        "context.hour has a",
        "1 is Bastion::User",
        'Bastion::Group::"eng".x == 1',
        'Bastion::Group::"nobody".getTag("x") == "1"',
        "context.hour",
    ],
)
def test_run_time_errors_are_errors_in_both(cond: str) -> None:
    est = _est(f"permit(principal, action, resource) when {{ {cond} }};")
    rule = compile_policy("p", est)
    enc = Encoder(ZONE).encode(
        PolicyRequest(Principal("u", groups=("eng",)), "invoke_model", ResourceRef.model("m1"), {"request_kib": 8})
    )
    assert enc.env is not None
    assert _cedar({"p": est}, enc).diagnostics.errors
    assert _matches(rule, enc.env) == "error"
    assert authorize([rule], enc.env) is None


@pytest.mark.parametrize(
    "cond",
    [
        "!(false && context.hour)",
        "true || principal.nope",
        "if false then principal.nope == 1 else true",
        '!(principal has nope) && !(Bastion::Group::"nobody" has x)',
        '!principal.hasTag("nope") && !Bastion::Group::"nobody".hasTag("x")',
        'principal in Bastion::Group::"eng" && !(principal in Bastion::Group::"ops")',
        'resource in [Bastion::Model::"m1"] && !(Bastion::Group::"nobody" in principal)',
        'context.hour - 9223372036854775807 < 0 && 1 != true && "" like "" && "a*b" like "a\\**"',
        "context.provider has certifications && context has provider && !(context has nope)",
        '{a: [1, 2], b: {c: "x"}} == {b: {c: "x"}, a: [2, 1]}',
        '[Bastion::Group::"eng"].contains(Bastion::Group::"eng") && ![1].contains(true)',
    ],
)
def test_short_circuits_and_non_errors_match_in_both(cond: str) -> None:
    est = _est(f"permit(principal, action, resource) when {{ {cond} }};")
    rule = compile_policy("p", est)
    enc = Encoder(ZONE).encode(
        PolicyRequest(Principal("u", groups=("eng",)), "invoke_model", ResourceRef.model("m1"), {"request_kib": 8})
    )
    assert enc.env is not None
    res = _cedar({"p": est}, enc)
    assert not res.diagnostics.errors and res.allowed
    assert _matches(rule, enc.env) == "match"


@pytest.mark.parametrize(
    "text",
    [
        'permit(principal, action, resource) when { ip("10.0.0.1").isLoopback() };',
        'permit(principal, action, resource) when { decimal("1.5").lessThan(decimal("2.0")) };',
        'permit(principal, action, resource) when { context.hour < 3 && datetime("2024-01-01").toDate() == '
        'datetime("2024-01-01") };',
    ],
)
def test_extension_functions_are_left_to_cedar(text: str) -> None:
    with pytest.raises(Unsupported):
        compile_policy("p", _est(text))


PROVIDERS = [
    ProviderSettings(name="p1", base_url="https://a.test", tier="api", region="us-east-1"),
    ProviderSettings(name="p2", base_url="https://b.test", tier="consumer", region="us-east-1", trains_on_inputs=True),
    ProviderSettings(name="eu", base_url="https://e.test", tier="enterprise", region="eu-west-1", baa=True),
    ProviderSettings(name="local", base_url="http://l.test", tier="on_prem", region="eu-dc"),
]
ENGINE_POLICIES = """
@id("eng-m1") forbid(principal in Bastion::Group::"eng", action == Bastion::Action::"invoke_model",
  resource == Bastion::Model::"m1") when { context.request_kib > 100 };
@id("legal-redact") @effect("redact") @applies_to("pii")
permit(principal in Bastion::Group::"legal", action == Bastion::Action::"invoke_model", resource);
@id("ops-night") @effect("reroute") @target("tier:on_prem")
forbid(principal in Bastion::Group::"ops", action == Bastion::Action::"invoke_model", resource)
  when { context.hour < 6 && context.data_classes.contains("pci") };
@id("tenant-inj") forbid(principal, action == Bastion::Action::"invoke_model", resource == Bastion::Model::"m3")
  when { context.injection_score >= 50 && principal.tenant == "legal" };
@id("dept") @effect("require_approval") forbid(principal, action == Bastion::Action::"invoke_model", resource)
  when { principal.hasTag("dept") && principal.getTag("dept") == "x" } unless { context.approved };
@id("mask-email") @effect("mask") @applies_to("EMAIL_ADDRESS")
forbid(principal, action == Bastion::Action::"invoke_model", resource) when { resource in Bastion::Provider::"p1" };
@id("readers") permit(principal is Bastion::Service, action == Bastion::Action::"read_document", resource)
  when { resource.classification like "int*" };
@id("ip") forbid(principal in Bastion::Group::"x", action == Bastion::Action::"call_tool", resource)
  when { ip("10.0.0.1").isLoopback() };
@id("overflow") forbid(principal in Bastion::Group::"x", action == Bastion::Action::"use_feature", resource)
  when { context.weekday * 4611686018427387904 > 0 };
"""


def _engines(**kw: Any) -> tuple[PolicyEngine, PolicyEngine]:
    settings = PolicySettings(include_defaults=True, decision_cache_size=0, **kw)
    fast = PolicyEngine.from_text(ENGINE_POLICIES, settings=settings, providers=PROVIDERS)
    slow = PolicyEngine.from_text(ENGINE_POLICIES, settings=settings, providers=PROVIDERS, compiled_evaluator=False)
    return fast, slow


def test_engine_decisions_equal_cedar_only_engine() -> None:
    fast, slow = _engines()
    # Only the policy using an extension function is left to Cedar.
    assert fast._authz["call_tool"].unsupported == ["ip"]
    rng = random.Random(5)
    models = [ModelSettings(name=m, provider=p or "p2") for m, p in MODELS]
    effects: dict[str, int] = {}
    for n in range(1500):
        req = _request(rng, n)
        if req.action == "invoke_model" and rng.random() < 0.7:
            ctx = dict(req.context)
            ctx.pop("provider")
            req = fast.request_for_model(req.principal, rng.choice(models), ctx)
        a, b = fast.decide(req), slow.decide(req)
        assert a == b, (req, a, b)
        effects[a.effect] = effects.get(a.effect, 0) + 1
        if req.action == "invoke_model":
            assert fast.allowed_providers(req.principal, req.context.get("data_classes", [])) == slow.allowed_providers(
                req.principal, req.context.get("data_classes", [])
            )
    assert set(effects) == {"allow", "deny", "reroute", "require_approval"}, effects


def test_a_failing_policy_still_refuses_with_cedars_report() -> None:
    fast, slow = _engines()
    who = Principal("u9", groups=("x",))
    feature = ResourceRef.feature("f", risk_tier="standard")
    req = PolicyRequest(who, "use_feature", feature, {"weekday": 3})
    a, b = fast.decide(req), slow.decide(req)
    assert a == b
    assert not a.allowed and a.policies[0] == EVALUATION_ERROR_ID and "overflow" in a.policies
    # Without the overflow the compiled evaluator answers, and the forbid holds.
    req = PolicyRequest(who, "use_feature", feature, {"weekday": 1})
    assert fast.decide(req) == slow.decide(req)
    assert fast.decide(req).policies == ["overflow"]


def test_a_policy_failing_on_a_provider_keeps_it_out_of_reroutes() -> None:
    text = """
    @id("phi-local") @effect("reroute") @target("tier:on_prem")
    forbid(principal, action == Bastion::Action::"invoke_model", resource)
      when { context.data_classes.contains("phi") && context.provider.tier != "on_prem" };
    @id("local-overflows") forbid(principal, action == Bastion::Action::"invoke_model", resource)
      when { context.provider.tier == "on_prem" && context.request_kib * 4611686018427387904 < 0 };
    """
    settings = PolicySettings(include_defaults=True, decision_cache_size=0)
    for compiled in (True, False):
        eng = PolicyEngine.from_text(text, settings=settings, providers=PROVIDERS, compiled_evaluator=compiled)
        model = ModelSettings(name="m1", provider="p1")
        who = Principal("u")
        small = eng.decide(eng.request_for_model(who, model, {"data_classes": ["phi"], "request_kib": 1}))
        assert small.effect == "reroute" and small.reroute == ["local"]
        # On "local" the second policy overflows: Cedar skips it, but the provider stays closed.
        big = eng.decide(eng.request_for_model(who, model, {"data_classes": ["phi"], "request_kib": 8}))
        assert not big.allowed and big.reroute is None and big.effect == "deny"
        assert eng.allowed_providers(who, ["phi"], context={"request_kib": 8}) == []


def test_examples_cases_agree() -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / "policies"
    settings = PolicySettings(paths=[str(root / "policies")], decision_cache_size=0)
    fast = PolicyEngine.load(settings, providers=PROVIDERS)
    slow = PolicyEngine.load(settings, providers=PROVIDERS, compiled_evaluator=False)
    rng = random.Random(11)
    for n in range(600):
        req = _request(rng, n)
        assert fast.decide(req) == slow.decide(req), req


def test_guards_leave_out_only_policies_that_cannot_match_or_fail() -> None:
    rng = random.Random(31)
    firsts = [
        'context.data_classes.contains("pii")',
        'context.data_classes.containsAny(["phi", "pci"])',
        'context.model == "m1"',
        '"m3" == context.model',
        'context.provider.tier == "consumer"',
        "context.hour < 6",
        "context.hour <= 6",
        "context.request_kib > 100",
        "context.request_kib >= 100",
        "3 < context.weekday",
        "context.provider.baa == true",
        "context.approved",
        'principal.region like "eu*"',
        'principal.region like "*-1"',
        'principal.tenant == "acme"',
        'context.caller_region like "e*u"',
    ]
    texts = []
    for i in range(120):
        first = rng.choice(firsts)
        first = first.replace("6", str(rng.randint(0, 23))).replace("100", str(rng.choice([0, 64, 100, 512])))
        rest = rng.choice(["", " && context.weekday > 2", " && principal.nope == 1"])
        texts.append(f'@id("q{i}") permit(principal, action, resource) when {{ {first}{rest} }};')
    ests = [_est(t) for t in texts]
    rules = [compile_policy(f"q{i}", est) for i, est in enumerate(ests)]
    index = GuardIndex([guards_of(est) for est in ests])
    unguarded = ("context.approved", "baa")
    assert index.guarded.bit_count() == sum(1 for t in texts if not any(u in t for u in unguarded))
    full = (1 << len(rules)) - 1
    odd_values = [None, "x", 5, True, frozenset({"pii", 1}), frozenset(), {"tier": 1}, -(2**63), 2**63 - 1]
    left_out = 0
    for n in range(400):
        enc = Encoder(ZONE).encode(_request(rng, n))
        env = enc.env
        assert env is not None
        ctx = dict(env.context)
        for key in ("data_classes", "model", "hour", "request_kib", "weekday", "provider"):
            r = rng.random()
            if r < 0.1:
                ctx.pop(key)
            elif r < 0.25:
                ctx[key] = rng.choice(odd_values)
        env.context = ctx
        if rng.random() < 0.3:
            # The principal's attributes, changed or missing, as they could be in a store Cedar reads.
            uid = env.principal
            ent = env.entities[uid]
            attrs = dict(ent.attrs)
            for key in ("region", "tenant"):
                if rng.random() < 0.5:
                    attrs.pop(key)
                else:
                    attrs[key] = rng.choice(odd_values)
            env.entities = {**env.entities, uid: Entity(attrs, ent.ancestors, ent.tags)}
        kept = index.holding(full, env)
        for i, rule in enumerate(rules):
            if not kept >> i & 1:
                left_out += 1
                assert _matches(rule, env) == "no", (texts[i], ctx)
    assert left_out > 10_000


def test_cached_decisions_outlive_the_encoding_memo() -> None:
    eng = PolicyEngine.from_text("", settings=PolicySettings(include_defaults=True), providers=PROVIDERS)
    eng._encoder._memo_size = 2
    model = ModelSettings(name="m1", provider="p1")
    people = [Principal(f"u{i}", groups=("eng",)) for i in range(6)]
    first = [eng.decide(eng.request_for_model(p, model, {"hour": 3, "weekday": 2})) for p in people]
    done = eng.evaluations
    # New Principal objects with the same content, long after their encodings were dropped.
    again = [
        eng.decide(eng.request_for_model(Principal(p.subject, groups=p.groups), model, {"hour": 3, "weekday": 2}))
        for p in people
    ]
    assert again == first and eng.evaluations == done


def test_a_principal_changed_after_encoding_is_refused_not_misread() -> None:
    who = Principal("u", attributes={"dept": "legal"})
    enc = Encoder(ZONE).encode(PolicyRequest(who, "invoke_model", ResourceRef.model("m1")))
    who.attributes["dept"] = "sales"
    with pytest.raises(BastionError):
        _ = enc.entities_json
