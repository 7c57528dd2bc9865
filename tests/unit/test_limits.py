"""The limiter's behaviour, run against both counter backends (Redis skipped when it is absent)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from bastion.context import Principal, RequestContext, Usage
from bastion.errors import InvalidRequest, RateLimited
from bastion.limits import Limiter, LimitSettings, LimitStage, ModelPrice, make_backend
from bastion.limits.stage import ALERTS_STATE_KEY, HEADERS_STATE_KEY

REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        if os.environ.get("BASTION_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis at {REDIS_URL} is required but unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} unreachable")
    return REDIS_URL


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, when: datetime) -> None:
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(params=["memory", "redis"])
def backend_kind(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings fragments selecting one backend, with a fresh key prefix cleaned up afterwards."""
    prefix = f"bastion-test:{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield {"backend": "memory", "key_prefix": prefix}
        return
    url = _redis_or_skip()
    yield {"backend": "redis", "redis_url": url, "key_prefix": prefix}
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def rule(
    name: str, scope: str, metric: str, window: str, limit: float, **kw: Any
) -> dict[str, Any]:
    """One limit rule as it appears in bastion.yaml."""
    return {"name": name, "scope": scope, "metric": metric, "window": window, "limit": limit, **kw}


def limiter(
    kind: dict[str, Any],
    rules: list[dict[str, Any]],
    clock: Clock | None = None,
    prices: dict[str, ModelPrice] | None = None,
    **extra: Any,
) -> Limiter:
    settings = LimitSettings.model_validate({**kind, "rules": rules, **extra})
    return Limiter(settings, make_backend(settings, clock=clock), prices=prices, clock=clock)


def ctx(
    subject: str = "alice",
    *,
    key: str | None = "key-a",
    groups: tuple[str, ...] = (),
    tenant: str | None = "acme",
    body: dict[str, Any] | None = None,
) -> RequestContext:
    principal = Principal(subject=subject, key_id=key, groups=groups, tenant=tenant)
    return RequestContext(
        endpoint="/v1/chat/completions",
        principal=principal,
        body=body or {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_admits_are_exact(backend_kind: dict[str, Any]) -> None:
    """200 concurrent admits against a limit of 50 admit exactly 50."""

    async def main() -> int:
        lim = limiter(backend_kind, [rule("g", "global", "requests", "minute", 50)])
        results = await asyncio.gather(
            *(lim.admit(ctx(f"u{i}")) for i in range(200)), return_exceptions=True
        )
        await lim.aclose()
        assert all(isinstance(r, RateLimited) for r in results if isinstance(r, BaseException))
        return sum(1 for r in results if not isinstance(r, BaseException))

    assert run(main()) == 50


def test_retry_after_is_the_time_until_one_request_fits(backend_kind: dict[str, Any]) -> None:
    clock = Clock(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))

    async def main() -> None:
        lim = limiter(
            backend_kind, [rule("per-user", "user", "requests", "minute", 6)], clock=clock
        )
        for _ in range(6):
            await lim.admit(ctx())
        with pytest.raises(RateLimited) as err:
            await lim.admit(ctx())
        # One request every 10 s refills; all six were spent at once.
        assert err.value.headers["Retry-After"] == "10"
        assert err.value.status_code == 429
        assert "per-user" in err.value.message and "for your user" in err.value.message
        assert err.value.headers["x-ratelimit-remaining-requests"] == "0"
        clock.advance(4)
        with pytest.raises(RateLimited) as err:
            await lim.admit(ctx())
        assert err.value.headers["Retry-After"] == "6"
        # Another user has their own counter.
        await lim.admit(ctx("bob", key="key-b"))
        clock.advance(6)
        await lim.admit(ctx())
        await lim.aclose()

    run(main())


@pytest.mark.parametrize(
    ("window", "start", "before_end", "after"),
    [
        (
            "day",
            datetime(2026, 5, 17, 23, 59, 50, tzinfo=UTC),
            10,
            datetime(2026, 5, 18, 0, 0, 1, tzinfo=UTC),
        ),
        (
            "month",
            datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC),
            30,
            datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC),
        ),
        (
            "month",
            datetime(2026, 12, 31, 23, 0, 0, tzinfo=UTC),
            3600,
            datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC),
        ),
    ],
)
def test_spend_windows_roll_over_at_utc_boundaries(
    backend_kind: dict[str, Any], window: str, start: datetime, before_end: int, after: datetime
) -> None:
    clock = Clock(start)
    # 1000 prompt chars -> 250 tokens + 4 overhead; 100 completion tokens; $10/$20 per Mtok.
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "x" * 1000}]}
    prices = {"m": ModelPrice(input_per_mtok=10.0, output_per_mtok=20.0)}
    per_call = 254 * 10 + 100 * 20  # micro-dollars

    async def main() -> None:
        lim = limiter(
            backend_kind,
            [rule("budget", "tenant", "spend", window, per_call * 3 / 1e6)],
            clock=clock,
            prices=prices,
        )
        for _ in range(3):
            adm = await lim.admit(ctx(body=body))
        with pytest.raises(RateLimited) as err:
            await lim.admit(ctx(body=body))
        assert err.value.headers["Retry-After"] == str(before_end)
        assert "per " + window in err.value.message
        # A call that failed upstream is settled with no usage: its reservation comes back.
        await lim.settle(adm, None)
        await lim.admit(ctx(body=body))
        with pytest.raises(RateLimited):
            await lim.admit(ctx(body=body))
        clock.t = after.timestamp()
        for _ in range(3):
            await lim.admit(ctx(body=body))
        with pytest.raises(RateLimited):
            await lim.admit(ctx(body=body))
        await lim.aclose()

    run(main())


def test_settle_returns_unused_tokens(backend_kind: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": "hello"}]}

    async def main() -> None:
        lim = limiter(backend_kind, [rule("tpm", "key", "tokens", "minute", 2000)])
        first = await lim.admit(ctx(body=body))
        assert first.prompt_tokens == 2 + 4 and first.completion_tokens == 1000
        with pytest.raises(RateLimited):
            await lim.admit(ctx(body=body))
        await lim.settle(first, Usage(prompt_tokens=6, completion_tokens=20, total_tokens=26))
        second = await lim.admit(ctx(body=body))
        assert second.headers["x-ratelimit-limit-tokens"] == "2000"
        # A second settle of the same admission changes nothing.
        await lim.settle(first, Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0))
        with pytest.raises(RateLimited):
            await lim.admit(ctx(body=body))
        await lim.aclose()

    run(main())


def test_stream_meter_ends_an_over_budget_stream(backend_kind: dict[str, Any]) -> None:
    body = {
        "model": "m",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "x" * 24}],
    }  # 6 + 4 prompt tokens

    async def main() -> None:
        lim = limiter(
            backend_kind, [rule("tpm", "user", "tokens", "hour", 500)], stream_reserve_tokens=64
        )
        adm = await lim.admit(ctx(body=body))
        meter = lim.meter(adm)
        sent = 0
        while await meter.add(chars=40):  # 10 tokens a chunk
            sent += 10
            assert sent < 10_000
        assert meter.exhausted
        # The answer may use the whole budget less the prompt, never more.
        assert sent == 490 and meter.completion_tokens == 500
        assert not await meter.add(tokens=1)
        await lim.settle(adm, meter.usage())
        with pytest.raises(RateLimited):
            await lim.admit(ctx(body=body))
        await lim.aclose()

    run(main())


def test_stream_without_token_limits_is_never_cut(backend_kind: dict[str, Any]) -> None:
    async def main() -> None:
        lim = limiter(backend_kind, [rule("rpm", "user", "requests", "minute", 5)])
        meter = lim.meter(await lim.admit(ctx()))
        for _ in range(1000):
            assert await meter.add(tokens=100)
        await lim.aclose()

    run(main())


def test_soft_limit_alerts_once_and_never_refuses(backend_kind: dict[str, Any]) -> None:
    async def main() -> None:
        lim = limiter(
            backend_kind,
            [rule("watch", "group", "requests", "minute", 3, match="eng", mode="soft")],
        )
        alerts = []
        for _ in range(10):
            adm = await lim.admit(ctx(groups=("eng", "all")))
            alerts += lim.take_alerts(adm)
        assert len(alerts) == 1
        a = alerts[0].to_audit()
        assert a["kind"] == "soft_limit" and a["rule"] == "watch" and a["subject"] == "eng"
        # The rule names group eng only: another group's members are not counted.
        adm = await lim.admit(ctx("carol", key="key-c", groups=("sales",)))
        assert adm.applied == []
        await lim.aclose()

    run(main())


@pytest.mark.parametrize(
    ("rule", "principal", "binds"),
    [
        ({"scope": "user", "match": "*"}, {}, True),
        ({"scope": "user", "match": "alice"}, {}, True),
        ({"scope": "user", "match": "bob"}, {}, False),
        ({"scope": "key", "match": "*"}, {}, True),
        ({"scope": "key", "match": "*"}, {"key": None}, False),
        ({"scope": "key", "match": "key-a"}, {}, True),
        ({"scope": "group", "match": "*"}, {"groups": ("a", "b")}, True),
        ({"scope": "group", "match": "b"}, {"groups": ("a", "b")}, True),
        ({"scope": "group", "match": "c"}, {"groups": ("a", "b")}, False),
        ({"scope": "tenant", "match": "acme"}, {}, True),
        ({"scope": "tenant", "match": "other"}, {}, False),
        ({"scope": "tenant", "match": "*"}, {"tenant": None}, True),
        ({"scope": "global"}, {}, True),
        ({"scope": "global", "models": ["other-model"]}, {}, False),
    ],
)
def test_which_rules_bind_whom(
    rule: dict[str, Any], principal: dict[str, Any], binds: bool
) -> None:
    async def main() -> bool:
        lim = limiter(
            {"backend": "memory"},
            [{"name": "r", "metric": "requests", "window": "minute", "limit": 1, **rule}],
        )
        await lim.admit(ctx(**principal))
        try:
            await lim.admit(ctx(**principal))
        except RateLimited:
            return True
        return False

    assert run(main()) is binds


def test_headers_describe_the_most_specific_limit() -> None:
    async def main() -> None:
        lim = limiter(
            {"backend": "memory"},
            [
                rule("all", "global", "requests", "second", 1000),
                rule("mine", "key", "requests", "minute", 60),
                rule("tok", "user", "tokens", "minute", 90000),
            ],
        )
        stage = LimitStage(lim)
        c = ctx()
        await stage(c)
        h = c.state[HEADERS_STATE_KEY]
        assert h["x-ratelimit-limit-requests"] == "60"
        assert h["x-ratelimit-remaining-requests"] == "59"
        assert h["x-ratelimit-reset-requests"] == "1s"
        assert h["x-ratelimit-limit-tokens"] == "90000"
        assert int(h["x-ratelimit-remaining-tokens"]) == 90000 - (1 + 4 + 1024)
        assert c.decisions[-1].effect == "allow"
        alerts = await stage.settle(c, Usage(5, 5, 10))
        assert alerts == [] and c.state.get(ALERTS_STATE_KEY) is None
        await lim.aclose()

    run(main())


def test_refusal_is_recorded_and_names_only_the_callers_limit() -> None:
    async def main() -> None:
        lim = limiter(
            {"backend": "memory"}, [rule("team", "group", "requests", "hour", 1, match="eng")]
        )
        stage = LimitStage(lim)
        await stage(ctx("alice", groups=("eng",)))
        c = ctx("bob", key="key-b", groups=("eng",))
        with pytest.raises(RateLimited) as err:
            await stage(c)
        assert "alice" not in err.value.message and "group 'eng'" in err.value.message
        assert c.decisions[-1].effect == "deny"
        await lim.aclose()

    run(main())


def test_a_request_larger_than_a_limit_is_invalid_not_throttled() -> None:
    async def main() -> None:
        lim = limiter({"backend": "memory"}, [rule("tpm", "user", "tokens", "minute", 500)])
        with pytest.raises(InvalidRequest) as err:
            await lim.admit(ctx(body={"model": "m", "max_tokens": 10000, "messages": []}))
        assert err.value.param == "max_tokens"
        await lim.aclose()

    run(main())


def test_stream_meter_enforces_spend_and_reports_soft_limits(backend_kind: dict[str, Any]) -> None:
    # $1000 per Mtok of output is a tenth of a cent a token: $0.50 buys 500 tokens.
    prices = {"m": ModelPrice(input_per_mtok=0, output_per_mtok=1000)}
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}

    async def main() -> None:
        lim = limiter(
            backend_kind,
            [
                rule("cap", "user", "spend", "day", 0.5),
                rule("warn", "user", "spend", "day", 0.3, mode="soft"),
            ],
            prices=prices,
            stream_reserve_tokens=64,
        )
        adm = await lim.admit(ctx(body=body))
        meter = lim.meter(adm)
        sent = 0
        while await meter.add(tokens=10):
            sent += 10
        assert sent == 500
        alerts = await lim.settle(adm, meter.usage())
        assert [(a.kind, a.rule) for a in alerts] == [("soft_limit", "warn")]
        with pytest.raises(RateLimited) as err:
            await lim.admit(ctx(body=body))
        assert "$0.50 per day" in err.value.message
        await lim.aclose()

    run(main())


def _wf(workflow: str | None, subject: str = "alice") -> RequestContext:
    c = ctx(subject)
    if workflow is not None:
        c.state["workflow_id"] = workflow
    return c


def test_workflow_limits_count_each_agent_run_of_each_user_apart(backend_kind: dict[str, Any]) -> None:
    async def main() -> None:
        lim = limiter(backend_kind, [rule("run-cap", "workflow", "requests", "hour", 2)])
        for _ in range(2):
            await lim.admit(_wf("run-1"))
        with pytest.raises(RateLimited) as err:
            await lim.admit(_wf("run-1"))
        assert "for this workflow" in err.value.message
        await lim.admit(_wf("run-2"))  # another run of the same user has its own counter
        await lim.admit(_wf("run-1", subject="bob"))  # the same id from another user too
        for _ in range(3):
            await lim.admit(_wf(None))  # requests outside any workflow are not bound

    run(main())


def test_workflow_spend_cap_stops_a_runaway_agent() -> None:
    async def main() -> None:
        lim = limiter(
            {"backend": "memory"},
            [{"name": "run-spend", "scope": "workflow", "metric": "spend", "window": "day", "limit": 0.2}],
            prices={"m": ModelPrice(input_per_mtok=5000.0, output_per_mtok=5000.0)},
        )
        body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
        admitted = 0
        with pytest.raises(RateLimited):
            for _ in range(100):
                c = ctx(body=body)
                c.state["workflow_id"] = "agent-7"
                await lim.admit(c)
                admitted += 1
        assert 0 < admitted < 100

    run(main())


@pytest.mark.parametrize("bad", ["", "x" * 129, "run\n1"])
def test_an_unusable_workflow_id_is_refused(bad: str) -> None:
    async def main() -> None:
        lim = limiter({"backend": "memory"}, [rule("run-cap", "workflow", "requests", "hour", 2)])
        with pytest.raises(InvalidRequest) as err:
            await lim.admit(_wf(bad))
        assert err.value.code == "invalid_workflow"

    run(main())
