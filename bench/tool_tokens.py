"""Tool-token latency: minting in the gateway and verifying in a backend, p50/p99, EdDSA and ES256.

    python bench/tool_tokens.py [--iterations 5000]

Mints per-call tokens for a 1 KiB tool-call body with ``ToolTokenMinter`` and
verifies each with ``BastionTokenVerifier`` (keys cached, in-memory replay
cache, body hash checked), one call at a time. Writes bench/results/tool_tokens.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bastion.backend import BastionTokenVerifier
from bastion.context import Principal
from bastion.tools.config import SigningAlgorithm, ToolSettings
from bastion.tools.keys import ToolKeyRing
from bastion.tools.tokens import ToolTokenMinter

RESULTS = Path(__file__).resolve().parent / "results" / "tool_tokens.json"
ISSUER = "https://bastion.bench"
WARMUP = 200

TOOL = ToolSettings.model_validate(
    {
        "name": "hr_reviews",
        "owner": "people-team",
        "audience": "https://hr.bench",
        "base_url": "http://hr.internal",
        "operation": {"method": "POST", "path": "/reviews/search"},
        "scopes": ["hr.reviews.read"],
    }
)
PRINCIPAL = Principal(
    subject="sam.okafor",
    email="sam.okafor@corp.example",
    groups=("engineering", "managers"),
    tenant="corp",
    attributes={"scopes": ["hr.reviews.read", "mail.send"]},
)
BODY = json.dumps({"query": "x" * 1000}).encode()


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)

    def pick(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))] / 1000, 1)

    return {
        "p50_us": pick(0.50),
        "p99_us": pick(0.99),
        "mean_us": round(statistics.fmean(s) / 1000, 1),
        "max_us": round(s[-1] / 1000, 1),
    }


def run(algorithm: SigningAlgorithm, iterations: int) -> dict[str, Any]:
    """Mint and verify ``iterations`` tokens with ``algorithm``; latencies in microseconds."""
    with tempfile.TemporaryDirectory() as d:
        ring = ToolKeyRing(d, algorithm=algorithm, rotation_seconds=3600)
        minter = ToolTokenMinter(ring, issuer=ISSUER)
        verifier = BastionTokenVerifier(ring.jwks(), TOOL.audience, ISSUER)
        mint_ns: list[int] = []
        verify_ns: list[int] = []
        token_bytes = 0
        for i in range(WARMUP + iterations):
            t0 = time.perf_counter_ns()
            token = minter.mint_tool_token(
                PRINCIPAL, TOOL, actor="hr-copilot", scopes=None, request_id=f"req_{i}", body=BODY
            )
            t1 = time.perf_counter_ns()
            caller = verifier.verify(token, body=BODY)
            t2 = time.perf_counter_ns()
            if caller.subject != PRINCIPAL.subject:
                raise SystemExit("verification returned the wrong subject")
            if i >= WARMUP:
                mint_ns.append(t1 - t0)
                verify_ns.append(t2 - t1)
                token_bytes = len(token)
        both = [a + b for a, b in zip(mint_ns, verify_ns, strict=True)]
        return {
            "algorithm": algorithm,
            "iterations": iterations,
            "token_bytes": token_bytes,
            "mint": _percentiles(mint_ns),
            "verify": _percentiles(verify_ns),
            "mint_plus_verify": _percentiles(both),
        }


def main() -> None:
    """Run the benchmark and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args()
    results = {
        "benchmark": "tool_tokens",
        "body_bytes": len(BODY),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "runs": [run("EdDSA", args.iterations), run("ES256", args.iterations)],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
