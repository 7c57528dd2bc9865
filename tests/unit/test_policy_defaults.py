"""The shipped default policies, table-driven: each hard rule, with the decision it must give."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.context import Finding, Principal
from bastion.errors import PermissionDenied
from bastion.policy.config import PolicySettings
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import DEFAULT_DENY_ID, PolicyRequest, ResourceRef, findings_context
from bastion.settings import ModelSettings, ProviderSettings, embedded_defaults

PROVIDERS = [
    ProviderSettings(name="consumer", base_url="https://c.test", tier="consumer", region="us-east-1"),
    ProviderSettings(name="trainer", base_url="https://t.test", tier="api", region="us-east-1", trains_on_inputs=True),
    ProviderSettings(
        name="us-api", base_url="https://u.test", tier="api", region="us-east-1", zero_data_retention=True
    ),
    ProviderSettings(name="eu-baa", base_url="https://e.test", tier="enterprise", region="eu-west-1", baa=True),
    ProviderSettings(name="eu-api", base_url="https://f.test", tier="api", region="eu-north-1"),
    ProviderSettings(name="onprem", base_url="http://l.test", tier="on_prem", region="us-dc1"),
]
MODELS = {p.name: ModelSettings(name=f"m-{p.name}", provider=p.name) for p in PROVIDERS}

ALICE = Principal("alice", groups=("staff",))
HANS = Principal("hans", groups=("staff",), attributes={"region": "eu-de"})


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.load(PolicySettings(), providers=PROVIDERS)


MODEL_CASES: list[tuple[str, Principal, str, list[str], str, str | None, list[str] | None]] = [
    # name, principal, provider, data classes, effect, deciding policy, reroute
    ("clean request allowed", ALICE, "us-api", [], "allow", "default-invoke-any-model", None),
    (
        "pii to consumer tier",
        ALICE,
        "consumer",
        ["pii"],
        "reroute",
        "sensitive-data-not-to-training-or-consumer",
        ["us-api", "eu-baa", "eu-api", "onprem"],
    ),
    (
        "phi to provider that trains",
        ALICE,
        "trainer",
        ["phi"],
        "reroute",
        "sensitive-data-not-to-training-or-consumer",
        ["eu-baa", "onprem"],
    ),
    (
        "no sensitive data to consumer is fine",
        ALICE,
        "consumer",
        ["financial"],
        "allow",
        "default-invoke-any-model",
        None,
    ),
    (
        "phi to non-baa api is rerouted",
        ALICE,
        "us-api",
        ["phi"],
        "reroute",
        "phi-only-baa-or-on-prem",
        ["eu-baa", "onprem"],
    ),
    ("phi to baa provider allowed", ALICE, "eu-baa", ["phi"], "allow", "default-invoke-any-model", None),
    ("phi on premises allowed", ALICE, "onprem", ["phi", "pii"], "allow", "default-invoke-any-model", None),
    ("eu principal to us region", HANS, "us-api", [], "reroute", "eu-data-stays-in-eu", ["eu-baa", "eu-api"]),
    ("eu principal to eu region", HANS, "eu-api", ["pii"], "allow", "default-invoke-any-model", None),
    ("eu principal with phi: only eu and baa", HANS, "us-api", ["phi"], "reroute", "eu-data-stays-in-eu", ["eu-baa"]),
    ("credentials to api", ALICE, "us-api", ["credentials"], "deny", "credentials-never-leave", None),
    ("credentials on premises", ALICE, "onprem", ["credentials"], "deny", "credentials-never-leave", None),
    ("credentials to baa provider", ALICE, "eu-baa", ["credentials"], "deny", "credentials-never-leave", None),
]


@pytest.mark.parametrize(
    ("name", "who", "provider", "classes", "effect", "policy", "reroute"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES]
)
def test_data_rules(
    engine: PolicyEngine,
    name: str,
    who: Principal,
    provider: str,
    classes: list[str],
    effect: str,
    policy: str,
    reroute: list[str] | None,
) -> None:
    d = engine.decide(engine.request_for_model(who, MODELS[provider], {"data_classes": classes}))
    assert d.effect == effect
    assert d.allowed is (effect == "allow")
    assert policy in d.policies
    assert d.reroute == reroute
    assert d.version == engine.version
    assert d.reasons and all(r.strip() for r in d.reasons)


def test_reroute_with_no_compliant_provider_is_denied() -> None:
    only_us = [p for p in PROVIDERS if p.region.startswith("us")]
    eng = PolicyEngine.load(PolicySettings(), providers=only_us)
    d = eng.decide(eng.request_for_model(HANS, MODELS["us-api"]))
    assert (d.allowed, d.effect, d.reroute) == (False, "deny", None)
    assert "eu-data-stays-in-eu" in d.policies
    assert any("No configured provider" in r for r in d.reasons)


FEATURE_CASES: list[tuple[str, str, tuple[str, ...], dict[str, Any], str, bool, str]] = [
    # tier, action, roles, context, effect, require_approval, deciding policy
    ("standard", "use_feature", (), {}, "allow", False, "risk-standard"),
    ("elevated", "use_feature", (), {}, "require_approval", True, "risk-elevated-needs-role-or-approval"),
    ("elevated", "use_feature", ("elevated-features",), {}, "allow", False, "risk-elevated"),
    ("elevated", "call_tool", (), {"approved": True}, "allow", False, "risk-elevated"),
    ("high", "use_feature", ("elevated-features",), {}, "require_approval", True, "risk-high-needs-approval"),
    ("high", "call_tool", (), {"approved": True}, "allow", False, "risk-high"),
    ("not_recommended", "use_feature", (), {"approved": True}, "deny", False, "risk-not-recommended"),
    (
        "not_recommended",
        "use_feature",
        ("security-admin",),
        {},
        "require_approval",
        True,
        "risk-not-recommended-needs-approval",
    ),
    (
        "not_recommended",
        "call_tool",
        ("security-admin",),
        {"approved": True},
        "allow",
        False,
        "risk-not-recommended-admin",
    ),
    ("made-up-tier", "use_feature", ("admin",), {"approved": True}, "deny", False, DEFAULT_DENY_ID),
]


@pytest.mark.parametrize(("tier", "action", "roles", "ctx", "effect", "approval", "policy"), FEATURE_CASES)
def test_feature_risk_tiers(
    engine: PolicyEngine,
    tier: str,
    action: str,
    roles: tuple[str, ...],
    ctx: dict[str, Any],
    effect: str,
    approval: bool,
    policy: str,
) -> None:
    who = Principal("u1", roles=roles)
    ref = ResourceRef.feature("f", risk_tier=tier) if action == "use_feature" else ResourceRef.tool("t", risk_tier=tier)
    d = engine.decide(PolicyRequest(who, action, ref, ctx))
    assert (d.effect, d.require_approval) == (effect, approval)
    assert d.allowed is (effect == "allow")
    assert policy in d.policies


@pytest.mark.parametrize(
    ("roles", "groups", "action", "resource", "allowed"),
    [
        ((), (), "export_audit", ResourceRef.collection("audit"), False),
        (("auditor",), (), "export_audit", ResourceRef.collection("audit"), True),
        ((), (), "approve", ResourceRef.tool("t", risk_tier="high"), False),
        (("approver",), (), "approve", ResourceRef.tool("t", risk_tier="high"), True),
        ((), ("legal",), "read_document", ResourceRef.collection("contracts", readers=["legal"]), True),
        ((), ("sales",), "read_document", ResourceRef.collection("contracts", readers=["legal"]), False),
    ],
)
def test_role_and_group_defaults(
    engine: PolicyEngine,
    roles: tuple[str, ...],
    groups: tuple[str, ...],
    action: str,
    resource: ResourceRef,
    allowed: bool,
) -> None:
    d = engine.decide(PolicyRequest(Principal("p", roles=roles, groups=groups), action, resource))
    assert d.allowed is allowed


def test_embedded_default_config_allows_echo() -> None:
    settings = embedded_defaults("/tmp/unused")
    eng = PolicyEngine.load(settings.policy, providers=settings.providers)
    models = eng.models_for(Principal("anyone"), settings.models)
    assert [m.name for m in models] == ["echo", "echo-embedding"]
    pii = findings_context([Finding("EMAIL_ADDRESS", 0, 5, 0.9, "regex", ("pii",))])
    d = eng.decide(eng.request_for_model(Principal("anyone"), settings.models[0], pii))
    assert d.allowed


def test_models_for_follows_policy_and_credential(engine: PolicyEngine) -> None:
    names = [m.name for m in engine.models_for(HANS, MODELS.values())]
    assert names == ["m-eu-baa", "m-eu-api"]
    limited = Principal("k", allowed_models=("m-us-api",))
    assert [m.name for m in engine.models_for(limited, MODELS.values())] == ["m-us-api"]


def test_allowed_providers(engine: PolicyEngine) -> None:
    assert [p.name for p in engine.allowed_providers(ALICE, ["phi"])] == ["eu-baa", "onprem"]
    assert [p.name for p in engine.allowed_providers(ALICE, ["credentials"])] == []
    assert [p.name for p in engine.allowed_providers(HANS, [], PROVIDERS[:3])] == []


def test_refusal_names_policy_and_raises_policy_denied(engine: PolicyEngine) -> None:
    d = engine.decide(engine.request_for_model(ALICE, MODELS["us-api"], {"data_classes": ["credentials"]}))
    with pytest.raises(PermissionDenied) as err:
        d.raise_if_refused()
    assert err.value.code == "policy_denied"
    assert "credentials-never-leave" in err.value.message
    assert "remove it" in err.value.message
    body = err.value.to_body()["error"]
    assert body["policies"] == ["credentials-never-leave"] and body["policy_version"] == engine.version
    audit = d.to_context_decision().to_audit()
    assert audit["policies"] == ["credentials-never-leave"] and audit["data"]["policy_version"] == engine.version


def test_disable_a_default_policy() -> None:
    eng = PolicyEngine.load(PolicySettings(disable=["default-invoke-any-model"]), providers=PROVIDERS)
    d = eng.decide(eng.request_for_model(ALICE, MODELS["us-api"]))
    assert (d.allowed, d.policies) == (False, [DEFAULT_DENY_ID])
    assert "Ask your administrator" in d.reasons[0]


def test_unknown_provider_is_least_trusted(engine: PolicyEngine) -> None:
    ghost = ModelSettings(name="ghost", provider="not-registered")
    assert engine.decide(engine.request_for_model(ALICE, ghost)).allowed
    d = engine.decide(engine.request_for_model(ALICE, ghost, {"data_classes": ["pii"]}))
    assert not d.allowed and "sensitive-data-not-to-training-or-consumer" in d.policies
