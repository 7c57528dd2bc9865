"""The engine with operator-written policies: protection choices, targets, fail-closed, cache, explain."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.context import Principal
from bastion.errors import BastionError, ConfigError
from bastion.policy.config import PolicySettings
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import EVALUATION_ERROR_ID, PolicyDecision, PolicyRequest, ResourceRef, make_decision
from bastion.settings import ModelSettings, ProviderSettings

PROVIDERS = [
    ProviderSettings(name="api", base_url="https://a.test", tier="api", region="us-east-1"),
    ProviderSettings(
        name="eu", base_url="https://e.test", tier="enterprise", region="eu-west-1", certifications=["iso27001"]
    ),
    ProviderSettings(name="local", base_url="http://l.test", tier="on_prem", region="eu-dc"),
]
API = ModelSettings(name="gpt", provider="api")
ALICE = Principal("alice", groups=("staff",), attributes={"department": "legal", "level": 3})

PROTECTION = """
@id("pii-pseudo") @effect("pseudonymize") @applies_to("pii")
permit(principal, action == Bastion::Action::"invoke_model", resource);

@id("pii-redact-legal") @effect("redact") @applies_to("pii, EMAIL_ADDRESS")
permit(principal, action == Bastion::Action::"invoke_model", resource)
when { principal.hasTag("department") && principal.getTag("department") == "legal" };

@id("pci-mask") @effect("mask") @applies_to("pci")
forbid(principal, action == Bastion::Action::"invoke_model", resource);

@id("fin-block") @effect("block") @applies_to("financial") @reason("No financial data, please.")
permit(principal in Bastion::Group::"interns", action == Bastion::Action::"invoke_model", resource);
"""


def _engine(text: str, **kw: object) -> PolicyEngine:
    return PolicyEngine.from_text(text, settings=PolicySettings(**kw), providers=PROVIDERS)  # type: ignore[arg-type]


def test_protection_strictest_wins_and_only_present_data() -> None:
    eng = _engine(PROTECTION)
    ctx = {"data_classes": ["pii", "pci"], "entity_types": ["EMAIL_ADDRESS", "CREDIT_CARD"]}
    d = eng.decide(eng.request_for_model(ALICE, API, ctx))
    assert d.allowed
    assert d.protection == {"pii": "redact", "EMAIL_ADDRESS": "redact", "pci": "mask"}
    assert {"pii-pseudo", "pii-redact-legal", "pci-mask"} <= set(d.policies)
    bob = Principal("bob")
    d = eng.decide(eng.request_for_model(bob, API, {"data_classes": ["pii"]}))
    assert d.protection == {"pii": "pseudonymize"}
    d = eng.decide(eng.request_for_model(bob, API, {}))
    assert d.protection == {} and d.policies == ["default-invoke-any-model"]


def test_block_refuses_with_reason() -> None:
    eng = _engine(PROTECTION)
    intern = Principal("ivy", groups=("interns",))
    d = eng.decide(eng.request_for_model(intern, API, {"data_classes": ["financial"]}))
    assert (d.allowed, d.effect, d.policies, d.reasons) == (
        False,
        "deny",
        ["fin-block"],
        ["No financial data, please."],
    )
    d = eng.decide(eng.request_for_model(ALICE, API, {"data_classes": ["financial"]}))
    assert d.allowed


def test_reroute_targets_restrict_candidates() -> None:
    text = """
    @id("secret-project") @effect("reroute") @target("tier:on_prem, cert:soc2")
    @reason("Project X stays on premises.")
    forbid(principal in Bastion::Group::"project-x", action == Bastion::Action::"invoke_model", resource)
    when { context.provider.tier != "on_prem" };
    """
    eng = _engine(text)
    who = Principal("p", groups=("project-x",))
    d = eng.decide(eng.request_for_model(who, API))
    assert (d.effect, d.reroute, d.reasons) == ("reroute", ["local"], ["Project X stays on premises."])


def test_evaluation_error_fails_closed() -> None:
    # Overflow passes validation but errors at run time: Cedar would skip the forbid, we refuse.
    eng = _engine("""@id("huge") forbid(principal, action, resource)
    when { context.request_kib * 9223372036854775807 > 1 };""")
    d = eng.decide(eng.request_for_model(ALICE, API, {"request_bytes": 5000}))
    assert not d.allowed
    assert d.policies[0] == EVALUATION_ERROR_ID and "huge" in d.policies


def test_context_is_normalised() -> None:
    eng = _engine("""@id("big") @reason("Too big.")
    forbid(principal, action, resource) when { context.request_kib > 4 };
    @id("night") forbid(principal, action, resource) when { context.hour < 6 && context.weekday == 7 };
    @id("inj") forbid(principal, action, resource) when { context.injection_score >= 80 };""")
    ok = eng.decide(eng.request_for_model(ALICE, API, {"request_bytes": 4096, "hour": 3, "weekday": 6}))
    assert ok.allowed
    assert eng.decide(eng.request_for_model(ALICE, API, {"request_bytes": 4097})).policies == ["big"]
    assert eng.decide(eng.request_for_model(ALICE, API, {"hour": 3, "weekday": 7})).policies == ["night"]
    assert eng.decide(eng.request_for_model(ALICE, API, {"injection_score": 0.8})).policies == ["inj"]
    assert eng.decide(eng.request_for_model(ALICE, API, {"injection_score": 0.79})).allowed


def test_unknown_context_key_and_resource_type_are_errors() -> None:
    eng = _engine("")
    with pytest.raises(BastionError):
        eng.decide(eng.request_for_model(ALICE, API, {"datclasses": ["pii"]}))
    with pytest.raises(BastionError):
        eng.decide(PolicyRequest(ALICE, "invoke_model", ResourceRef("Bucket", "b")))
    d = eng.decide(PolicyRequest(ALICE, "launch_rockets", ResourceRef.model("gpt")))
    assert not d.allowed


def test_model_resource_is_in_its_provider_and_service_principals() -> None:
    eng = _engine("""@id("svc-local-only") @reason("Apps use the local model.")
    forbid(principal is Bastion::Service, action, resource)
    unless { resource in Bastion::Provider::"local" };""")
    svc = Principal("batch-job", kind="service")
    assert not eng.decide(eng.request_for_model(svc, API)).allowed
    assert eng.decide(eng.request_for_model(svc, ModelSettings(name="l", provider="local"))).allowed
    assert eng.decide(eng.request_for_model(ALICE, API)).allowed


def test_cache_returns_independent_copies() -> None:
    eng = _engine(PROTECTION)
    req = eng.request_for_model(ALICE, API, {"data_classes": ["pii"]})
    first = eng.decide(req)
    first.policies.append("tampered")
    first.protection["pii"] = "allow"
    second = eng.decide(req)
    assert "tampered" not in second.policies and second.protection["pii"] == "redact"


def test_cache_is_bounded() -> None:
    eng = _engine("", decision_cache_size=8)
    for i in range(50):
        eng.decide(eng.request_for_model(Principal(f"u{i}"), API))
    assert len(eng._cache) <= 8


def test_explain_lists_every_matching_policy() -> None:
    eng = _engine(PROTECTION)
    req = eng.request_for_model(ALICE, API, {"data_classes": ["pii", "phi"]})
    result = eng.explain(req)
    ids = [p.id for p in result.matched]
    assert "default-invoke-any-model" in ids and "phi-only-baa-or-on-prem" in ids
    assert "pii-pseudo" in ids and "pii-redact-legal" in ids
    assert "credentials-never-leave" not in ids
    assert result.decision.effect == "reroute"


def test_invalid_policies_raise_config_error_listing_lines() -> None:
    with pytest.raises(ConfigError) as err:
        _engine("permit(principal, action, resource)\nwhen { context.nope };")
    assert "<policies>:2" in str(err.value)


def test_decisions_made_fast_are_whole_decisions() -> None:
    values = {f.name: f"v-{f.name}" for f in dataclasses.fields(PolicyDecision)}
    made = make_decision(*values.values())  # type: ignore[arg-type]
    assert made == PolicyDecision(**values)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.allowed = True  # type: ignore[misc]


def test_one_off_callers_are_not_remembered_by_value_recurring_ones_are() -> None:
    eng = _engine("", decision_cache_size=0)

    def principals_kept() -> int:
        return sum(1 for token in eng._encoder._by_token if token[0] != "resource")

    for i in range(30):
        eng.decide(eng.request_for_model(Principal(f"once-{i}", groups=("staff",)), API))
    assert principals_kept() == 0
    for _ in range(3):
        eng.decide(eng.request_for_model(Principal("again", groups=("staff",)), API))
    assert principals_kept() == 1
