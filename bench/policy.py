"""Policy evaluation latency with 200 policies: uncached, cached, and raw Cedar calls.

Run: .venv/bin/python bench/policy.py [--n 5000] [--out bench/results/policy.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cedarpy

from bastion.context import Principal
from bastion.policy.config import PolicySettings
from bastion.policy.encode import encode_request
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import PolicyRequest
from bastion.settings import ModelSettings, ProviderSettings

TOTAL_POLICIES = 200
GROUPS = [f"team-{i}" for i in range(30)]
CLASSES = ["pii", "phi", "pci", "financial", "credentials"]
PROVIDERS = [
    ProviderSettings(name="openai", base_url="https://o.test", tier="api", region="us-east-1"),
    ProviderSettings(
        name="consumer", base_url="https://c.test", tier="consumer", region="us-east-1", trains_on_inputs=True
    ),
    ProviderSettings(name="azure-eu", base_url="https://a.test", tier="enterprise", region="eu-west-1", baa=True),
    ProviderSettings(name="local", base_url="http://l.test", tier="on_prem", region="eu-dc"),
]
MODELS = [ModelSettings(name=f"model-{i}", provider=PROVIDERS[i % 4].name) for i in range(20)]


def generated_policies(count: int, rng: random.Random) -> str:
    """Operator-style policies, all on invoke_model (the worst case: one action slice holds them all)."""
    out = []
    for i in range(count):
        g, m = rng.choice(GROUPS), rng.choice(MODELS).name
        kind = i % 4
        if kind == 0:
            out.append(
                f'@id("g{i}") @reason("Model {m} is not for {g}.")\n'
                f'forbid(principal in Bastion::Group::"{g}", action == Bastion::Action::"invoke_model", '
                f'resource == Bastion::Model::"{m}") when {{ context.request_kib > {rng.randint(64, 512)} }};'
            )
        elif kind == 1:
            out.append(
                f'@id("g{i}") @effect("redact") @applies_to("{rng.choice(CLASSES)}")\n'
                f'permit(principal in Bastion::Group::"{g}", action == Bastion::Action::"invoke_model", resource);'
            )
        elif kind == 2:
            out.append(
                f'@id("g{i}") @reason("Out of hours.")\n'
                f'forbid(principal in Bastion::Group::"{g}", action == Bastion::Action::"invoke_model", resource)'
                f" when {{ context.hour < {rng.randint(0, 5)} &&"
                f' context.data_classes.contains("{rng.choice(CLASSES)}") }};'
            )
        else:
            out.append(
                f'@id("g{i}") @reason("Injection.")\n'
                f'forbid(principal, action == Bastion::Action::"invoke_model", resource == Bastion::Model::"{m}")'
                f' when {{ context.injection_score >= {rng.randint(50, 99)} && principal.tenant == "t{i}" }};'
            )
    return "\n\n".join(out) + "\n"


def requests(n: int, rng: random.Random, engine: PolicyEngine) -> list[PolicyRequest]:
    """A mix of distinct invoke_model requests: users, groups, models, data classes, sizes."""
    users = [
        Principal(
            f"user-{i}",
            groups=tuple(rng.sample(GROUPS, 2)),
            tenant="acme",
            attributes={"region": rng.choice(["us-1", "us-1", "eu-1"])},
        )
        for i in range(50)
    ]
    out = []
    for _ in range(n):
        classes = rng.sample(CLASSES[:4], rng.choice([0, 0, 1, 2]))
        ctx = {
            "data_classes": classes,
            "request_bytes": rng.randint(100, 64_000),
            "injection_score": rng.random() * 0.3,
            "hour": rng.randint(0, 23),
            "weekday": rng.randint(1, 7),
        }
        out.append(engine.request_for_model(rng.choice(users), rng.choice(MODELS), ctx))
    return out


def percentiles(ns: list[int]) -> dict[str, float]:
    """p50 / p90 / p99 / max in microseconds."""
    s = sorted(ns)
    pick = lambda q: round(s[min(len(s) - 1, int(q * len(s)))] / 1000, 1)  # noqa: E731
    return {
        "p50_us": pick(0.50),
        "p90_us": pick(0.90),
        "p99_us": pick(0.99),
        "max_us": round(s[-1] / 1000, 1),
        "mean_us": round(statistics.fmean(s) / 1000, 1),
        "samples": len(s),
    }


def timed(fn: Any, items: list[Any]) -> list[int]:
    """Nanoseconds of fn(item) for each item."""
    out = []
    for item in items:
        t = time.perf_counter_ns()
        fn(item)
        out.append(time.perf_counter_ns() - t)
    return out


def main() -> None:
    """Run the benchmark and write the JSON results."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "policy.json"))
    args = ap.parse_args()
    rng = random.Random(7)
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as d:
        defaults = PolicyEngine.load(PolicySettings())
        extra = TOTAL_POLICIES - len(defaults.policies)
        (Path(d) / "generated.cedar").write_text(generated_policies(extra, rng))
        t = time.perf_counter()
        cold_engine = PolicyEngine.load(PolicySettings(paths=[d], decision_cache_size=0), providers=PROVIDERS)
        load_ms = (time.perf_counter() - t) * 1000
        warm_engine = PolicyEngine.load(PolicySettings(paths=[d]), providers=PROVIDERS)
    assert len(cold_engine.policies) == TOTAL_POLICIES
    reqs = requests(args.n, rng, cold_engine)
    for r in reqs[:200]:
        cold_engine.decide(r)  # warm up the interpreter paths

    uncached = timed(cold_engine.decide, reqs)
    # Cached: production traffic repeats (same user, model, findings); draw from 500 distinct requests.
    pool = reqs[:500]
    for r in pool:
        warm_engine.decide(r)
    cached = timed(warm_engine.decide, [rng.choice(pool) for _ in range(args.n)])

    # Raw Cedar: the whole 200-policy set, inputs already encoded (the floor for one uncached call).
    full = cedarpy.PolicySet.from_str(
        "\n".join(
            (Path(__file__).parent.parent / "src/bastion/policy/defaults" / f).read_text()
            for f in sorted(os.listdir(Path(__file__).parent.parent / "src/bastion/policy/defaults"))
        )
        + generated_policies(extra, random.Random(7))
    )
    encoded = []
    for r in reqs[:2000]:
        creq, ents, ctx = encode_request(r, cold_engine._zone)
        encoded.append(({**creq, "context": ctx}, ents))
    raw = timed(lambda e: cedarpy.is_authorized(e[0], full, e[1]), encoded)
    encode_only = timed(cold_engine._encoder.encode, reqs[:2000])
    # One uncached Cedar call on the scope-sliced set (what every decision pays at least once).
    sliced = timed(lambda r: cold_engine._authorize("invoke_model", cold_engine._encoder.encode(r)), reqs[:2000])
    slice_sizes = []
    for r in reqs[:500]:
        e = cold_engine._encoder.encode(r)
        req = e.cedar_request
        m = cold_engine._authz["invoke_model"].mask(
            req["principal"]["type"],
            req["principal"]["id"],
            e.principal_groups,
            req["resource"]["type"],
            req["resource"]["id"],
            e.resource_provider,
        )
        slice_sizes.append(bin(m).count("1"))

    effects: dict[str, int] = {}
    for r in reqs:
        e = cold_engine.decide(r).effect
        effects[e] = effects.get(e, 0) + 1
    result = {
        "benchmark": "policy evaluation, PolicyEngine.decide",
        "policies": TOTAL_POLICIES,
        "policies_on_invoke_model": sum(
            1 for p in cold_engine.policies if p.actions is None or "invoke_model" in p.actions
        ),
        "load_ms": round(load_ms, 1),
        "uncached_decide": percentiles(uncached),
        "cached_decide": percentiles(cached),
        "uncached_authorize_sliced": percentiles(sliced),
        "mean_policies_in_slice": round(statistics.fmean(slice_sizes), 1),
        "raw_cedar_is_authorized_full_set": percentiles(raw),
        "encode_only": percentiles(encode_only),
        "effects_seen": effects,
        "target": "p99 < 100 us",
        "meets_target_cached": percentiles(cached)["p99_us"] < 100,
        "meets_target_uncached": percentiles(uncached)["p99_us"] < 100,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
            "loadavg_1m_at_start": load_start,
            "cedarpy": importlib.metadata.version("cedarpy"),
        },
        "note": "Shared 2-core machine with other work running; figures include that noise.",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
