"""The limiter's parts: anomaly baselines, estimates, windows, configuration and memory bounds."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bastion.context import Principal, RequestContext
from bastion.errors import ConfigError, LimitsUnavailable
from bastion.limits import Limiter, LimitRule, LimitSettings, ModelPrice
from bastion.limits.anomaly import AnomalyDetector
from bastion.limits.backend import US, Charge
from bastion.limits.config import AnomalySettings
from bastion.limits.estimate import (
    cost_micro_usd,
    estimate_prompt_tokens,
    requested_completion_tokens,
)
from bastion.limits.memory import MemoryBackend
from bastion.limits.windows import calendar_start, calendar_window, format_reset


class Clock:
    # A multiple of the 60 s anomaly window, so test windows line up with the detector's.
    def __init__(self, t: float = 1_000_020.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


ANOMALY = AnomalySettings(window_seconds=60, factor=5, min_requests=30, warmup_windows=3)


def _feed(det: AnomalyDetector, clock: Clock, per_window: list[int]) -> list[int]:
    """Spread each window's requests across it; return the windows in which an alert fired."""
    fired = []
    for w, count in enumerate(per_window):
        base = clock.t
        for i in range(count):
            clock.t = base + 60 * i / max(count, 1)
            if det.observe("key", "k1", "requests", 1):
                fired.append(w)
        clock.t = base + 60
    return fired


def test_anomaly_is_quiet_on_steady_traffic() -> None:
    clock = Clock()
    det = AnomalyDetector(ANOMALY, clock=clock)
    assert _feed(det, clock, [40, 45, 38, 50, 42, 47, 39, 44, 60, 41]) == []


def test_anomaly_fires_once_on_a_jump() -> None:
    clock = Clock()
    det = AnomalyDetector(ANOMALY, clock=clock)
    assert _feed(det, clock, [10, 12, 9, 11, 10, 400, 10]) == [5]


@pytest.mark.parametrize(
    ("history", "fires"),
    [
        ([1, 1, 1, 1, 20], False),  # a jump below the minimum volume is noise
        ([200], False),  # a brand-new subject has no baseline yet
        ([2, 2, 2, 2, 35], True),  # small baselines count as one request, so 35 > 5 x 1
        ([6, 0, 0, 0, 0, 100], True),  # silent windows pull the baseline down
    ],
)
def test_anomaly_thresholds(history: list[int], fires: bool) -> None:
    clock = Clock()
    det = AnomalyDetector(ANOMALY, clock=clock)
    assert bool(_feed(det, clock, history)) is fires


def test_anomaly_memory_is_bounded() -> None:
    det = AnomalyDetector(AnomalySettings(max_subjects=10), clock=Clock())
    for i in range(100):
        det.observe("user", f"u{i}", "requests", 1)
    assert len(det) == 10


def test_anomaly_alerts_reach_the_gateway_through_admissions() -> None:
    clock = Clock()
    settings = LimitSettings(anomaly=ANOMALY)
    lim = Limiter(settings, MemoryBackend(), clock=clock)
    ctx = RequestContext(endpoint="/v1/chat/completions", principal=Principal("svc", key_id="k9"))

    async def main() -> list[Any]:
        got = []
        for window in range(6):
            for i in range(5 if window < 5 else 100):
                clock.t = 1_000_000 + window * 60 + i * 0.1
                got += lim.take_alerts(await lim.admit(ctx))
        return got

    alerts = asyncio.run(main())
    assert {(a.kind, a.scope, a.subject) for a in alerts} == {
        ("anomaly", "key", "k9"),
        ("anomaly", "user", "svc"),
    }


@pytest.mark.parametrize(
    ("body", "prompt", "completion"),
    [
        ({"messages": [{"role": "user", "content": "abcdefgh"}]}, 2 + 4, 1024),
        ({"messages": [{"role": "user", "content": "abcdefghi"}], "max_tokens": 7}, 3 + 4, 7),
        (
            {
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 40}]}],
                "max_completion_tokens": 9,
                "max_tokens": 99,
            },
            10 + 4,
            9,
        ),
        ({"input": ["abcd", "efgh"]}, 2 + 8, 0),
        ({"messages": "not a list", "max_tokens": True}, 0, 1024),
        ({}, 0, 1024),
    ],
)
def test_estimates(body: dict[str, Any], prompt: int, completion: int) -> None:
    assert estimate_prompt_tokens(body, 4.0) == prompt
    assert requested_completion_tokens(body, 1024) == completion


@pytest.mark.parametrize(
    ("price", "p", "c", "micro"),
    [
        (ModelPrice(input_per_mtok=2.5, output_per_mtok=10), 1000, 100, 2500 + 1000),
        (ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6), 1, 1, 1),
        (ModelPrice(input_per_mtok=0.1, output_per_mtok=0.2), 10, 10, 3),
        (ModelPrice(), 10**6, 10**6, 0),
    ],
)
def test_cost_in_micro_dollars(price: ModelPrice, p: int, c: int, micro: int) -> None:
    assert cost_micro_usd(price, p, c) == micro


@pytest.mark.parametrize(
    ("when", "window", "wid", "end"),
    [
        (
            datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
            "day",
            "d20260228",
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
        (
            datetime(2028, 2, 29, 0, 0, 0, tzinfo=UTC),
            "day",
            "d20280229",
            datetime(2028, 3, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 2, 10, 5, 0, 0, tzinfo=UTC),
            "month",
            "m202602",
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 23, 0, 0, tzinfo=UTC),
            "month",
            "m202612",
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_calendar_windows_are_utc(when: datetime, window: str, wid: str, end: datetime) -> None:
    assert calendar_window(window, when.timestamp()) == (wid, end.timestamp())
    start = calendar_start(window, when.timestamp())
    assert start <= when.timestamp() < end.timestamp()
    assert calendar_window(window, start)[0] == wid != calendar_window(window, start - 1)[0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.02, "20ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (3725, "1h2m5s")],
)
def test_reset_durations(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


@pytest.mark.parametrize(
    "rule",
    [
        {"scope": "global", "match": "eng", "metric": "requests", "window": "minute", "limit": 1},
        {"scope": "user", "metric": "requests", "window": "minute", "limit": 1.5},
        {"scope": "user", "metric": "tokens", "window": "minute", "limit": 0},
        {"scope": "team", "metric": "tokens", "window": "minute", "limit": 10},
        {"scope": "user", "metric": "tokens", "window": "week", "limit": 10},
        {"scope": "user", "metric": "tokens", "window": "minute", "limit": 10, "burst": 3},
    ],
)
def test_invalid_rules_are_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LimitRule.model_validate({"name": "r", **rule})


def test_rule_names_are_unique() -> None:
    rule = {"name": "r", "scope": "user", "metric": "requests", "window": "minute", "limit": 1}
    with pytest.raises(ValidationError, match="unique"):
        LimitSettings.model_validate({"rules": [rule, rule]})


def test_spend_limits_need_priced_models() -> None:
    rule = {"name": "b", "scope": "user", "metric": "spend", "window": "day", "limit": 5}
    settings = SimpleNamespace(
        limits=LimitSettings.model_validate({"rules": [rule]}),
        models=[
            SimpleNamespace(name="priced", price_input_per_mtok=1.0, price_output_per_mtok=2.0),
            SimpleNamespace(name="free"),
        ],
    )
    with pytest.raises(ConfigError, match="unpriced: free"):
        Limiter.from_settings(settings)
    settings.models[1].price_input_per_mtok = 0.0
    assert Limiter.from_settings(settings).backend.name == "memory"


def test_memory_backend_is_bounded_and_forgets_expired_counters() -> None:
    now = [0.0]
    backend = MemoryBackend(max_keys=100, clock_us=lambda: now[0])

    def charge(i: int) -> Charge:
        return Charge(f"k{i}", True, 10, 1, True, 60 * US)

    async def main() -> None:
        for i in range(100):
            assert (await backend.charge([charge(i)]))[0]
        with pytest.raises(LimitsUnavailable):
            await backend.charge([charge(100)])
        # Six seconds later each debt (one tenth of a minute) has drained: room again.
        now[0] = 6.0 * US
        assert (await backend.charge([charge(100)]))[0]
        assert len(backend) == 1

    asyncio.run(main())


DOCS = Path(__file__).resolve().parents[2] / "docs" / "limits.md"


def test_every_limit_setting_is_documented_and_the_example_parses() -> None:
    text = DOCS.read_text()
    documented = {p for t in re.findall(r"`([A-Za-z0-9_.]+)`", text) for p in t.split(".")}
    keys = [*LimitSettings.model_fields, *AnomalySettings.model_fields, *LimitRule.model_fields]
    assert [k for k in keys if k not in documented] == []
    example = yaml.safe_load(text.split("```yaml", 1)[1].split("```", 1)[0])
    settings = LimitSettings.model_validate(example["limits"])
    assert settings.backend == "redis" and len(settings.rules) == 6


def test_settlement_after_stream_reservations_leaves_exactly_the_real_cost() -> None:
    # 0.3 micro-dollars a token: every reservation rounds up, settlement must undo exactly that.
    prices = {"m": ModelPrice(input_per_mtok=0, output_per_mtok=0.3)}
    rule = {"name": "b", "scope": "user", "metric": "spend", "window": "day", "limit": 1}
    settings = LimitSettings.model_validate({"rules": [rule], "stream_reserve_tokens": 64})
    backend = MemoryBackend()
    lim = Limiter(settings, backend, prices=prices)
    body = {"model": "m", "max_tokens": 100, "messages": []}
    ctx = RequestContext(endpoint="/v1/chat/completions", principal=Principal("u"), body=body)

    async def main() -> None:
        adm = await lim.admit(ctx)
        meter = lim.meter(adm)
        for _ in range(7):
            assert await meter.add(tokens=30)
        assert adm.extra_completion_tokens == 128
        await lim.settle(adm, meter.usage())

    asyncio.run(main())
    [cell] = backend._cells.values()
    assert cell[0] == 63  # ceil(210 tokens x 0.3)
