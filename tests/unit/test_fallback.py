"""Fallback routing against two real fake upstreams (Anthropic and OpenAI-compatible), with and without policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support.fake_anthropic import API_KEY, FakeAnthropic
from tests.support.fake_upstream import FakeUpstream

from bastion.context import Finding, Principal, RequestContext
from bastion.errors import BastionError, ConfigError, InvalidRequest, RateLimited, UpstreamFailed, UpstreamTimeout
from bastion.policy.config import PolicySettings
from bastion.policy.stage import POLICY_STATE_KEY
from bastion.policy.store import PolicyStore
from bastion.providers.base import UpstreamRequest
from bastion.providers.fallback import (
    FallbackProvider,
    FallbackScope,
    FallbackStage,
    bind_scope,
    current_scope,
    deny_all,
    is_retryable,
    protection_covers,
    with_fallbacks,
)
from bastion.providers.registry import ProviderRegistry
from bastion.providers.secrets import SecretResolver
from bastion.settings import ModelSettings, ProviderSettings, Settings, UpstreamTimeouts


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeAnthropic, FakeUpstream]]:
    claude, openai = FakeAnthropic(), FakeUpstream()
    claude.start()
    openai.start()
    yield claude, openai
    claude.stop()
    openai.stop()


@pytest.fixture
def make_registry(
    servers: tuple[FakeAnthropic, FakeUpstream], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ProviderRegistry]:
    claude, openai = servers
    claude.received.clear()
    openai.received.clear()
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", API_KEY)
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-" + "o" * 24)

    def make(models: list[dict[str, Any]]) -> ProviderRegistry:
        fast = UpstreamTimeouts(read_seconds=0.5)
        settings = Settings(
            providers=[
                ProviderSettings(name="claude", type="anthropic", base_url=claude.base_url,
                                 api_key_env="TEST_ANTHROPIC_KEY", timeouts=fast),
                ProviderSettings(name="openai", base_url=openai.base_url, api_key_env="TEST_OPENAI_KEY",
                                 tier="enterprise", timeouts=fast),
                ProviderSettings(name="consumer", base_url=openai.base_url, api_key_env="TEST_OPENAI_KEY",
                                 tier="consumer"),
            ],
            models=[ModelSettings(**m) for m in models],
        )
        return ProviderRegistry.from_settings(settings, SecretResolver())

    return make


def _body(stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "main", "messages": [{"role": "user", "content": "hi there"}]}
    if stream:
        body["stream"] = True
    return body


async def _call(registry: ProviderRegistry, ctx: RequestContext, stream: bool) -> tuple[str, BastionError | None]:
    """Call the routed provider the way the gateway does; the answer text, or the error raised."""
    route = registry.route(ctx.model or "", "chat")
    provider = registry.providers[route.provider.name]
    req = UpstreamRequest(body=_body(stream), upstream_model=route.upstream_model, request_id=ctx.request_id)
    text = ""
    try:
        if not stream:
            answer = await provider.chat(req)
            return answer["choices"][0]["message"]["content"], None
        async for chunk in provider.chat_stream(req):
            for choice in chunk.get("choices") or []:
                text += choice["delta"].get("content") or ""
    except BastionError as exc:
        return text, exc
    finally:
        await registry.aclose()
    return text, None


def _run(registry: ProviderRegistry, stream: bool, is_allowed: Callable[[str], bool] | None = None,
         bind: bool = True) -> tuple[str, BastionError | None, RequestContext]:
    ctx = RequestContext(endpoint="chat", model="main", principal=Principal(subject="alice"))

    async def run() -> tuple[str, BastionError | None]:
        if bind:
            def on_answer(model: ModelSettings, provider: str, upstream: str) -> None:
                ctx.model, ctx.provider, ctx.upstream_model = model.name, provider, upstream

            scope = FallbackScope(ctx.request_id, "main", decisions=ctx.decisions, on_answer=on_answer)
            if is_allowed is not None:
                scope.is_allowed = is_allowed
            bind_scope(scope)
        return await _call(registry, ctx, stream)

    text, err = asyncio.run(run())
    return text, err, ctx


def _effects(ctx: RequestContext) -> list[tuple[str, str, str]]:
    return [(d.effect, d.data["model"], d.data.get("code", "")) for d in ctx.decisions if d.stage == "fallback"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("failing, code", [
    ("error500", "upstream_error"),
    ("error529", "upstream_overloaded"),
    ("error429", "upstream_rate_limited"),
    ("error401", "upstream_auth_failed"),
    ("slow:3", "upstream_timeout"),
])
def test_provider_failure_falls_back(make_registry: Any, servers: Any, failing: str, code: str, stream: bool) -> None:
    registry = make_registry([
        {"name": "main", "provider": "claude", "upstream_model": failing, "fallbacks": ["second"]},
        {"name": "second", "provider": "openai", "upstream_model": "normal"},
    ])
    text, err, ctx = _run(registry, stream)
    assert err is None and text == "You said: hi there"
    assert _effects(ctx) == [("upstream_failed", "main", code), ("fallback", "second", "")]
    assert (ctx.model, ctx.provider, ctx.upstream_model) == ("second", "openai", "normal")
    claude, openai = servers
    assert [r.body["model"] for r in claude.received] == [failing]
    assert [r.body["model"] for r in openai.received] == ["normal"]


def test_unreachable_provider_falls_back_to_claude_stream(make_registry: Any, servers: Any) -> None:
    registry = make_registry([
        {"name": "main", "provider": "openai", "upstream_model": "error500", "fallbacks": ["dead", "claude"]},
        {"name": "dead", "provider": "openai", "upstream_model": "slow:3"},
        {"name": "claude", "provider": "claude", "upstream_model": "claude-normal"},
    ])
    text, err, ctx = _run(registry, stream=True)
    assert err is None and text == "You said: hi there"
    assert _effects(ctx) == [("upstream_failed", "main", "upstream_error"),
                             ("upstream_failed", "dead", "upstream_timeout"), ("fallback", "claude", "")]
    assert ctx.decisions[-1].data["failed_attempts"] == 2


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_the_request_may_not_use_is_skipped(make_registry: Any, servers: Any, stream: bool) -> None:
    registry = make_registry([
        {"name": "main", "provider": "claude", "upstream_model": "error500", "fallbacks": ["forbidden", "second"]},
        {"name": "forbidden", "provider": "consumer", "upstream_model": "toolcall"},
        {"name": "second", "provider": "openai", "upstream_model": "normal"},
    ])
    text, err, ctx = _run(registry, stream, is_allowed=lambda m: m != "forbidden")
    assert err is None and text == "You said: hi there"
    assert _effects(ctx) == [("upstream_failed", "main", "upstream_error"), ("skip", "forbidden", ""),
                             ("fallback", "second", "")]
    assert [r.body["model"] for r in servers[1].received] == ["normal"]  # never a byte to the forbidden one


@pytest.mark.parametrize("bind", [True, False])
def test_no_allowed_fallback_gives_the_first_failure(make_registry: Any, servers: Any, bind: bool) -> None:
    registry = make_registry([
        {"name": "main", "provider": "claude", "upstream_model": "error429", "fallbacks": ["second"]},
        {"name": "second", "provider": "openai", "upstream_model": "normal"},
    ])
    # Unbound, the registry's default allows no fallback: policy never saw this request's data.
    text, err, ctx = _run(registry, stream=False, is_allowed=deny_all, bind=bind)
    assert isinstance(err, RateLimited) and err.headers == {"Retry-After": "9"}
    assert servers[1].received == []
    assert _effects(ctx) == ([("upstream_failed", "main", "upstream_rate_limited"), ("skip", "second", "")]
                             if bind else [])


def test_every_fallback_failing_gives_the_first_failure(make_registry: Any) -> None:
    registry = make_registry([
        {"name": "main", "provider": "claude", "upstream_model": "slow:3", "fallbacks": ["second"]},
        {"name": "second", "provider": "openai", "upstream_model": "error500"},
    ])
    _, err, ctx = _run(registry, stream=True)
    assert isinstance(err, UpstreamTimeout)
    assert [e[0] for e in _effects(ctx)] == ["upstream_failed", "upstream_failed"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_rejected_request_is_not_retried(make_registry: Any, servers: Any, stream: bool) -> None:
    registry = make_registry([
        {"name": "main", "provider": "claude", "upstream_model": "error400", "fallbacks": ["second"]},
        {"name": "second", "provider": "openai", "upstream_model": "normal"},
    ])
    _, err, ctx = _run(registry, stream)
    assert isinstance(err, InvalidRequest) and servers[1].received == [] and _effects(ctx) == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_that_rejects_the_request_is_passed_over(make_registry: Any, servers: Any, stream: bool) -> None:
    registry = make_registry([
        {"name": "main", "provider": "openai", "upstream_model": "error500", "fallbacks": ["picky", "last"]},
        {"name": "picky", "provider": "claude", "upstream_model": "error400"},
        {"name": "last", "provider": "claude", "upstream_model": "error529"},
    ])
    _, err, ctx = _run(registry, stream)
    assert isinstance(err, UpstreamFailed) and err.code == "upstream_error"  # the first failure, not a 400
    assert _effects(ctx) == [("upstream_failed", "main", "upstream_error"),
                             ("upstream_failed", "picky", "upstream_bad_request"),
                             ("upstream_failed", "last", "upstream_overloaded")]


@pytest.mark.parametrize("failing", ["midstream-error", "cutoff"])
def test_a_stream_that_fails_after_its_first_chunk_is_not_retried(
    make_registry: Any, servers: Any, failing: str
) -> None:
    registry = make_registry([
        {"name": "main", "provider": "claude", "upstream_model": failing, "fallbacks": ["second"]},
        {"name": "second", "provider": "openai", "upstream_model": "normal"},
    ])
    text, err, ctx = _run(registry, stream=True)
    assert text == "You " and isinstance(err, UpstreamFailed)
    assert servers[1].received == [] and _effects(ctx) == []


def test_policy_decides_which_fallbacks_a_request_may_use(make_registry: Any, servers: Any) -> None:
    models: list[dict[str, Any]] = [
        {"name": "main", "provider": "claude", "upstream_model": "error500", "fallbacks": ["cheap", "second"]},
        {"name": "cheap", "provider": "consumer", "upstream_model": "toolcall"},
        {"name": "second", "provider": "openai", "upstream_model": "normal"},
    ]
    registry = make_registry(models)
    model_settings = [ModelSettings(**m) for m in models]
    store = PolicyStore(PolicySettings(reload_seconds=0), providers=[
        ProviderSettings(name="claude", type="anthropic", base_url="https://x", tier="enterprise"),
        ProviderSettings(name="openai", base_url="https://x", tier="enterprise"),
        ProviderSettings(name="consumer", base_url="https://x", tier="consumer"),
    ])
    ctx = RequestContext(endpoint="chat", model="main", principal=Principal(subject="alice"))
    # Personal data was found: the shipped policies keep it away from consumer services.
    ctx.findings.append(Finding("EMAIL_ADDRESS", 0, 5, 1.0, "test", data_classes=("pii",)))
    engine = store.engine
    ctx.state[POLICY_STATE_KEY] = engine.decide(engine.request_for_model(ctx.principal, model_settings[0],  # type: ignore[arg-type]
                                                                         {"data_classes": ["pii"]}))

    async def run() -> tuple[str, BastionError | None]:
        await FallbackStage(model_settings, store)(ctx)
        return await _call(registry, ctx, stream=True)

    text, err = asyncio.run(run())
    assert err is None and text == "You said: hi there"
    assert _effects(ctx) == [("upstream_failed", "main", "upstream_error"), ("skip", "cheap", ""),
                             ("fallback", "second", "")]
    assert (ctx.model, ctx.provider) == ("second", "openai")
    assert [r.body["model"] for r in servers[1].received] == ["normal"]


def test_stage_refuses_fallbacks_the_credential_excludes() -> None:
    models = [ModelSettings(name="a", provider="p", fallbacks=["b"]), ModelSettings(name="b", provider="p")]
    ctx = RequestContext(endpoint="chat", model="a", principal=Principal(subject="s", allowed_models=("a",)))

    async def check() -> None:
        await FallbackStage(models)(ctx)
        scope = current_scope(ctx.request_id)
        assert scope is not None and not scope.is_allowed("b") and not scope.is_allowed("nope")
        assert current_scope("req_other") is None

    asyncio.run(check())


@pytest.mark.parametrize("models, message", [
    ([{"name": "a", "provider": "p", "fallbacks": ["zz"]}], "not a configured model"),
    ([{"name": "a", "provider": "p", "fallbacks": ["a"]}], "another chat model"),
    ([{"name": "a", "provider": "p", "fallbacks": ["e"]}, {"name": "e", "provider": "p", "kind": "embedding"}],
     "another chat model"),
    ([{"name": "e", "provider": "p", "kind": "embedding", "fallbacks": ["f"]},
      {"name": "f", "provider": "p", "kind": "embedding"}], "only chat models"),
])
def test_bad_fallbacks_are_start_up_errors(models: list[dict[str, Any]], message: str) -> None:
    from bastion.providers.echo import EchoProvider

    with pytest.raises(ConfigError, match=message):
        with_fallbacks({"p": EchoProvider("p")}, [ModelSettings(**m) for m in models])


def test_only_providers_with_fallbacks_are_wrapped() -> None:
    from bastion.providers.echo import EchoProvider

    providers = {"p": EchoProvider("p"), "q": EchoProvider("q")}
    out = with_fallbacks(providers, [ModelSettings(name="a", provider="p", fallbacks=["b"]),
                                     ModelSettings(name="b", provider="q")])
    assert isinstance(out["p"], FallbackProvider) and out["q"] is providers["q"] and out["p"].name == "p"


@pytest.mark.parametrize("exc, retry", [
    (UpstreamFailed(), True),
    (UpstreamTimeout(), True),
    (UpstreamFailed(code="upstream_overloaded"), True),
    (RateLimited(code="upstream_rate_limited"), True),
    (RateLimited(), False),  # the gateway's own limit: another provider would not change it
    (InvalidRequest(code="upstream_bad_request"), False),
    (BastionError(), False),
])
def test_what_is_retried(exc: BastionError, retry: bool) -> None:
    assert is_retryable(exc) is retry


@pytest.mark.parametrize("applied, needed, ok", [
    ({}, {}, True),
    ({"pii": "redact"}, {"pii": "pseudonymize"}, True),
    ({"pii": "redact"}, {"pii": "redact"}, True),
    ({"pii": "mask"}, {"pii": "redact"}, False),
    ({}, {"phi": "mask"}, False),
    ({"pii": "redact"}, {"pii": "allow", "phi": "allow"}, True),
    ({"pii": "redact"}, {"pii": "unheard-of"}, False),
])
def test_protection_covers(applied: dict[str, str], needed: dict[str, str], ok: bool) -> None:
    assert protection_covers(applied, needed) is ok
