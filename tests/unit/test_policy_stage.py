"""The decide stage in a request context: allow, reroute to a compliant model, refuse with reasons."""

from __future__ import annotations

import asyncio

import pytest

from bastion.context import Finding, Principal, RequestContext
from bastion.errors import PermissionDenied, UnknownModel
from bastion.policy.config import PolicySettings
from bastion.policy.model import PolicyDecision
from bastion.policy.stage import INJECTION_STATE_KEY, POLICY_STATE_KEY, PolicyStage
from bastion.policy.store import PolicyStore
from bastion.settings import ModelSettings, ProviderSettings

PROVIDERS = [
    ProviderSettings(name="us", base_url="https://u.test", tier="api", region="us-east-1"),
    ProviderSettings(name="eu", base_url="https://e.test", tier="enterprise", region="eu-west-1", baa=True),
]
MODELS = [
    ModelSettings(name="gpt-us", provider="us"),
    ModelSettings(name="embed-eu", provider="eu", kind="embedding"),
    ModelSettings(name="gpt-eu", provider="eu"),
]
PHI = Finding("MEDICAL_RECORD_NUMBER", 0, 8, 0.9, "regex", ("phi", "pii"))


def _stage(tmp_path, text: str = "") -> PolicyStage:  # type: ignore[no-untyped-def]
    (tmp_path / "p.cedar").write_text(text)
    store = PolicyStore(PolicySettings(paths=[str(tmp_path)], reload_seconds=0), providers=PROVIDERS)
    return PolicyStage(store, MODELS)


def _ctx(model: str, *findings: Finding, who: Principal | None = None) -> RequestContext:
    ctx = RequestContext(endpoint="/v1/chat/completions", model=model, principal=who or Principal("alice"))
    ctx.findings.extend(findings)
    return ctx


def test_allow_records_decision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage = _stage(tmp_path)
    ctx = _ctx("gpt-us")
    asyncio.run(stage(ctx))
    decision = ctx.state[POLICY_STATE_KEY]
    assert isinstance(decision, PolicyDecision) and decision.allowed
    assert ctx.decisions[-1].stage == "decide" and ctx.decisions[-1].effect == "allow"
    assert ctx.decisions[-1].data["policy_version"] == decision.version


def test_phi_is_rerouted_to_a_compliant_model_of_the_same_kind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage = _stage(tmp_path)
    ctx = _ctx("gpt-us", PHI)
    asyncio.run(stage(ctx))
    assert ctx.model == "gpt-eu"
    effects = [d.effect for d in ctx.decisions if d.stage == "decide"]
    assert effects == ["reroute", "reroute", "allow"]
    assert ctx.state[POLICY_STATE_KEY].allowed


def test_reroute_respects_model_rules_and_refuses_when_nothing_fits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage = _stage(
        tmp_path,
        '@id("no-gpt-eu") @reason("gpt-eu is closed.") '
        'forbid(principal, action, resource == Bastion::Model::"gpt-eu");',
    )
    ctx = _ctx("gpt-us", PHI)
    with pytest.raises(PermissionDenied) as err:
        asyncio.run(stage(ctx))
    assert err.value.code == "policy_denied"
    assert "phi-only-baa-or-on-prem" in err.value.message and "No model you may use" in err.value.message
    assert ctx.model == "gpt-us"


def test_injection_score_from_state_and_unknown_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage = _stage(
        tmp_path,
        '@id("inj") @reason("Rephrase.") forbid(principal, action, resource) when { context.injection_score >= 90 };',
    )
    ctx = _ctx("gpt-us")
    ctx.state[INJECTION_STATE_KEY] = 0.97
    with pytest.raises(PermissionDenied) as err:
        asyncio.run(stage(ctx))
    assert "Rephrase." in err.value.message and ctx.decisions[-1].effect == "deny"
    with pytest.raises(UnknownModel):
        asyncio.run(stage(_ctx("nope")))
