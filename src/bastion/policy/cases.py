"""Policy tests in YAML (``bastion policy test CASES.yaml``): principal + request -> expected decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bastion.errors import BastionError, ConfigError
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import PolicyDecision
from bastion.policy.simulate import principal_from_data, request_from_data

if TYPE_CHECKING:
    from bastion.settings import ModelSettings

#: Largest cases file read, in bytes.
MAX_CASES_BYTES = 4 * 1024 * 1024
_EXPECT_KEYS = frozenset(
    {"decision", "effect", "policies", "reroute", "require_approval", "protection", "reason_contains"}
)


@dataclass(slots=True)
class CaseResult:
    """The outcome of one case."""

    name: str
    passed: bool
    decision: str
    effect: str
    policies: list[str]
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data."""
        return {
            "name": self.name,
            "passed": self.passed,
            "decision": self.decision,
            "effect": self.effect,
            "policies": self.policies,
            "failures": self.failures,
        }


@dataclass(slots=True)
class CasesFile:
    """A parsed cases file."""

    cases: list[dict[str, Any]]
    config: Path | None


def read_cases(path: str | Path) -> CasesFile:
    """Read and shape-check a cases file; ConfigError names what is wrong."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CASES_BYTES:
            raise ConfigError(f"{p}: larger than {MAX_CASES_BYTES} bytes")
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("cases"), list):
        raise ConfigError(f"{p}: expected a mapping with a 'cases' list")
    for i, case in enumerate(data["cases"]):
        if not isinstance(case, Mapping) or not {"principal", "request", "expect"} <= set(case):
            raise ConfigError(f"{p}: case {i + 1} needs principal, request and expect")
        expect = case["expect"]
        if not isinstance(expect, Mapping) or "decision" not in expect:
            raise ConfigError(f"{p}: case {i + 1}: expect needs a decision (allow or deny)")
        extra = set(expect) - _EXPECT_KEYS
        if extra:
            raise ConfigError(f"{p}: case {i + 1}: unknown expect keys {', '.join(sorted(extra))}")
    config = data.get("config")
    return CasesFile(cases=list(data["cases"]), config=(p.parent / str(config)) if config else None)


def check(decision: PolicyDecision, expect: Mapping[str, Any]) -> list[str]:
    """The ways ``decision`` differs from ``expect`` (empty when it matches)."""
    failures = []
    got = "allow" if decision.allowed else "deny"
    if str(expect["decision"]) != got:
        failures.append(f"decision: expected {expect['decision']}, got {got}")
    if "effect" in expect and expect["effect"] != decision.effect:
        failures.append(f"effect: expected {expect['effect']}, got {decision.effect}")
    for pid in expect.get("policies") or ():
        if pid not in decision.policies:
            failures.append(f"policy {pid!r} did not decide (deciding: {', '.join(decision.policies) or 'none'})")
    if "reroute" in expect:
        want = sorted(expect["reroute"] or [])
        have = sorted(decision.reroute or [])
        if want != have:
            failures.append(f"reroute: expected {want}, got {have}")
    if "require_approval" in expect and bool(expect["require_approval"]) != decision.require_approval:
        failures.append(f"require_approval: expected {expect['require_approval']}, got {decision.require_approval}")
    for key, action in (expect.get("protection") or {}).items():
        if decision.protection.get(str(key)) != action:
            failures.append(f"protection[{key}]: expected {action}, got {decision.protection.get(str(key))}")
    needle = expect.get("reason_contains")
    if needle and not any(str(needle) in r for r in decision.reasons):
        failures.append(f"no reason contains {needle!r}")
    return failures


def run_cases(
    engine: PolicyEngine, cases: list[dict[str, Any]], models: list[ModelSettings] | None = None
) -> list[CaseResult]:
    """Run every case against ``engine``; a malformed case fails with its error, never aborts the run."""
    out = []
    for i, case in enumerate(cases):
        name = str(case.get("name") or f"case {i + 1}")
        try:
            principal = principal_from_data(case["principal"])
            request = request_from_data(engine, principal, case["request"], models)
            decision = engine.decide(request)
        except BastionError as exc:
            out.append(CaseResult(name, False, "error", "error", [], [exc.message]))
            continue
        failures = check(decision, case["expect"])
        out.append(
            CaseResult(
                name,
                not failures,
                "allow" if decision.allowed else "deny",
                decision.effect,
                list(decision.policies),
                failures,
            )
        )
    return out
