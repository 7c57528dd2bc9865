"""Policy evaluation latency with 200 policies: uncached and cached, compiled evaluator and Cedar calls.

Run: .venv/bin/python bench/policy.py [--n 2000] [--rounds 5] [--out bench/results/policy.json]

"before" is the same engine with every evaluation made by a Cedar call (``compiled_evaluator=False``).
Each round runs each mode in a fresh process, alternating which goes first; figures are medians of rounds.
"""

from __future__ import annotations

import argparse
import collections
import gc
import hashlib
import importlib.metadata
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
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


def request_stream(rng: random.Random, engine: PolicyEngine, *, distinct: bool = False) -> Iterator[PolicyRequest]:
    """Endless invoke_model requests: users, groups, models, data classes, sizes.

    ``distinct``: every request comes from a principal never seen before (its own subject, groups and
    region), so nothing about it is remembered; otherwise requests come from 50 recurring users.
    """
    users = [_user(f"user-{i}", rng) for i in range(50)]
    i = 0
    while True:
        i += 1
        classes = rng.sample(CLASSES[:4], rng.choice([0, 0, 1, 2]))
        ctx = {
            "data_classes": classes,
            "request_bytes": rng.randint(100, 64_000),
            "injection_score": rng.random() * 0.3,
            "hour": rng.randint(0, 23),
            "weekday": rng.randint(1, 7),
        }
        who = _user(f"caller-{i}-{rng.getrandbits(32):08x}", rng) if distinct else rng.choice(users)
        yield engine.request_for_model(who, rng.choice(MODELS), ctx)


def requests(n: int, rng: random.Random, engine: PolicyEngine, *, distinct: bool = False) -> list[PolicyRequest]:
    """``n`` requests of ``request_stream``."""
    return list(itertools.islice(request_stream(rng, engine, distinct=distinct), n))


def _user(subject: str, rng: random.Random) -> Principal:
    return Principal(
        subject,
        groups=tuple(rng.sample(GROUPS, 2)),
        tenant="acme",
        attributes={"region": rng.choice(["us-1", "us-1", "eu-1"])},
    )


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


def timed(fn: Any, items: Iterable[Any]) -> list[int]:
    """Nanoseconds of fn(item) for each item (making the item is not timed)."""
    out = []
    for item in items:
        t = time.perf_counter_ns()
        fn(item)
        out.append(time.perf_counter_ns() - t)
    return out


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 1)


def _load(d: str, mode: str, cache: bool) -> PolicyEngine:
    settings = PolicySettings(paths=[d], decision_cache_size=10_000 if cache else 0)
    return PolicyEngine.load(settings, providers=PROVIDERS, compiled_evaluator=mode == "compiled")


def worker(mode: str, round_: int, n: int) -> dict[str, Any]:
    """One round of one mode, in a process of its own (as the gateway runs one engine)."""
    with tempfile.TemporaryDirectory() as d:
        defaults = PolicyEngine.load(PolicySettings())
        (Path(d) / "generated.cedar").write_text(
            generated_policies(TOTAL_POLICIES - len(defaults.policies), random.Random(7))
        )
        cold, warm = _load(d, mode, cache=False), _load(d, mode, cache=True)
    assert len(cold.policies) == TOTAL_POLICIES
    rng = random.Random(1000 + round_)
    for r in requests(300, rng, cold, distinct=True):
        cold.decide(r)  # warm up the interpreter paths
    pool = requests(500, rng, warm)
    for r in pool:
        warm.decide(r)
    # The gateway freezes what start-up built (bastion.app); requests are made one by one, as they arrive.
    gc.collect()
    gc.freeze()
    stream = request_stream(random.Random(2000 + round_), cold, distinct=True)
    decided: list[Any] = []
    uncached = timed(lambda r: decided.append(cold.decide(r)), itertools.islice(stream, n))
    draws = random.Random(3000 + round_)
    cached = timed(warm.decide, (draws.choice(pool) for _ in range(n)))
    digest = hashlib.sha256(
        repr([(x.allowed, x.effect, x.policies, x.reroute, x.protection) for x in decided]).encode()
    )
    return {
        "uncached": uncached,
        "cached": cached,
        "decisions": digest.hexdigest(),
        "effects": dict(collections.Counter(x.effect for x in decided)),
        "effect_of_each": [x.effect for x in decided],
        "evaluations": cold.evaluations,
        "cedar_calls": cold.cedar_calls,
    }


def main() -> None:
    """Run the benchmark and write the JSON results."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="requests per round and mode")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "policy.json"))
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "ROUND"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.n)))
        return
    load_start = round(os.getloadavg()[0], 2)
    # "cedar": every evaluation is a Cedar call on the scope-sliced set (how decisions were made before).
    modes = ("compiled", "cedar")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for i in range(args.rounds):
        # Interleaved, alternating which mode goes first, each round and mode in a fresh process.
        for m in modes if i % 2 == 0 else modes[::-1]:
            out = subprocess.run(
                [sys.executable, __file__, "--n", str(args.n), "--worker", m, str(i)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[m].append(json.loads(out))

    def summary(samples: list[list[int]]) -> dict[str, Any]:
        per = [percentiles(r) for r in samples]
        return {
            "p50_us": _median([p["p50_us"] for p in per]),
            "p99_us": _median([p["p99_us"] for p in per]),
            "rounds_p99_us": [p["p99_us"] for p in per],
            "pooled": percentiles([x for r in samples for x in r]),
        }

    results = {
        m: {
            "uncached_decide": summary([r["uncached"] for r in runs[m]]),
            "cached_decide": summary([r["cached"] for r in runs[m]]),
        }
        for m in modes
    }
    for m in modes:
        by_effect: dict[str, list[int]] = collections.defaultdict(list)
        for r in runs[m]:
            for ns, eff in zip(r["uncached"], r["effect_of_each"], strict=True):
                by_effect[eff].append(ns)
        results[m]["uncached_by_effect_pooled"] = {e: percentiles(v) for e, v in sorted(by_effect.items())}
    same = all(a["decisions"] == b["decisions"] for a, b in zip(runs["compiled"], runs["cedar"], strict=True))
    sent = sum(r["cedar_calls"] for r in runs["compiled"]) / max(1, sum(r["evaluations"] for r in runs["compiled"]))

    # In this process: what one Cedar call costs on the whole set, encoding, slice sizes.
    with tempfile.TemporaryDirectory() as d:
        defaults = PolicyEngine.load(PolicySettings())
        extra = TOTAL_POLICIES - len(defaults.policies)
        (Path(d) / "generated.cedar").write_text(generated_policies(extra, random.Random(7)))
        t = time.perf_counter()
        engine = _load(d, "compiled", cache=False)
        load_ms = (time.perf_counter() - t) * 1000
    rng = random.Random(7)
    sample = requests(1000, rng, engine, distinct=True)
    full = cedarpy.PolicySet.from_str(
        "\n".join(
            (Path(__file__).parent.parent / "src/bastion/policy/defaults" / f).read_text()
            for f in sorted(os.listdir(Path(__file__).parent.parent / "src/bastion/policy/defaults"))
        )
        + generated_policies(extra, random.Random(7))
    )
    encoded = []
    for r in sample:
        creq, ents, ctx = encode_request(r, engine._zone)
        encoded.append(({**creq, "context": ctx}, ents))
    raw = timed(lambda e: cedarpy.is_authorized(e[0], full, e[1]), encoded)
    encode_only = timed(engine._encoder.encode, sample)
    index = engine._authz["invoke_model"]
    scope_sizes, live_sizes = [], []
    for r in sample[:500]:
        e = engine._encoder.encode(r)
        m = index.mask_of(e)
        scope_sizes.append(m.bit_count())
        assert e.env is not None
        live_sizes.append(index.holding(m, e.env).bit_count())

    after, before = results["compiled"], results["cedar"]
    result = {
        "benchmark": "policy evaluation, PolicyEngine.decide",
        "command": f".venv/bin/python bench/policy.py --n {args.n} --rounds {args.rounds}",
        "policies": TOTAL_POLICIES,
        "policies_on_invoke_model": sum(1 for p in engine.policies if p.actions is None or "invoke_model" in p.actions),
        "load_ms": round(load_ms, 1),
        "modes": {
            "compiled": "compiled evaluator, Cedar only where it cannot answer (current)",
            "cedar": "every evaluation a Cedar call on the scope-sliced set (before)",
        },
        "uncached": "decision cache off and every request from a principal never seen before",
        "cached": "500 distinct requests from 50 users, drawn again at random",
        "figures": "p50/p99: medians over rounds; each round and mode ran in its own process, interleaved",
        "compiled": after,
        "cedar": before,
        "speedup_uncached_p50": round(before["uncached_decide"]["p50_us"] / after["uncached_decide"]["p50_us"], 1),
        "speedup_uncached_p99": round(before["uncached_decide"]["p99_us"] / after["uncached_decide"]["p99_us"], 1),
        "same_decisions_both_modes": same,
        "compiled_share_of_evaluations_sent_to_cedar": round(sent, 4),
        "mean_policies_in_scope_slice": round(statistics.fmean(scope_sizes), 1),
        "mean_policies_evaluated_after_guards": round(statistics.fmean(live_sizes), 1),
        "raw_cedar_is_authorized_full_set": percentiles(raw),
        "encode_only_new_principal": percentiles(encode_only),
        "effects_seen": runs["compiled"][0]["effects"],
        "target": "p99 < 100 us",
        "meets_target_cached": after["cached_decide"]["p99_us"] < 100,
        "meets_target_uncached": after["uncached_decide"]["p99_us"] < 100,
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
