"""Both engines give identical candidates and findings; no pattern backtracks catastrophically."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path

import pytest
from tests.unit.test_detect import MATCHING, NOT_MATCHING

from bastion.protect import ProtectionSettings, Scanner
from bastion.protect.engine import HyperscanEngine, PythonEngine, hyperscan_available
from bastion.protect.patterns import BUILTIN, PatternSpec

DEV_SET = Path(__file__).resolve().parents[3] / "shared" / "data" / "pii-dev.jsonl"
needs_hs = pytest.mark.skipif(not hyperscan_available(), reason="hyperscan is not installed")

#: Seconds one pattern may spend on 100 KB of adversarial input: linear patterns need a few
#: hundred milliseconds at worst; catastrophic ones take minutes. Generous for a shared 2-core box,
#: whose speed varies several times over a day.
PATHOLOGICAL_SECONDS = 5.0
#: How much longer four times the input may take. Linear work grows 4x, quadratic 16x; the margin
#: absorbs a busy machine. Only judged where the larger input takes long enough to time.
GROWTH_LIMIT = 9.0
GROWTH_MIN_SECONDS = 0.05


@cache
def engines() -> tuple[PythonEngine, HyperscanEngine]:
    return PythonEngine(BUILTIN), HyperscanEngine(BUILTIN)


@cache
def scanners() -> tuple[Scanner, Scanner]:
    py, hs = engines()
    settings = ProtectionSettings(ner={"mode": "off"})
    return Scanner(settings, engine=py), Scanner(settings, engine=hs)


def _key(c: object) -> tuple[int, int]:
    return (c.pattern, c.match_start)  # type: ignore[attr-defined]


TEXTS = (
    [t for t, *_ in MATCHING]
    + [t for t, _ in NOT_MATCHING]
    + [
        "Ünïcödé naïve café 4111 1111 1111 1111 – ñ 536-22-1234 日本語 jane@example.com",
        "x" * 50 + "@" + "y" * 70 + ".com",
        "",
    ]
)


def _dev_texts() -> list[str]:
    if not DEV_SET.exists():
        return []
    return [json.loads(line)["text"] for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


@needs_hs
@pytest.mark.parametrize("text", TEXTS)
def test_engines_identical_on_table(text: str) -> None:
    py, hs = engines()
    assert sorted(py.candidates(text), key=_key) == hs.candidates(text)


@needs_hs
def test_engines_identical_on_dev_set() -> None:
    texts = _dev_texts()
    if not texts:
        pytest.skip("development set not present")
    py, hs = engines()
    s_py, s_hs = scanners()
    for text in texts:
        assert sorted(py.candidates(text), key=_key) == hs.candidates(text)
        assert s_py.scan(text) == s_hs.scan(text)


def _adversarial(n: int = 100_000) -> list[str]:
    return [
        "1" * n,
        "1 " * (n // 2),
        "1-" * (n // 2),
        "a" * n,
        "a." * (n // 2),
        "A" * n,
        "a@" * (n // 2),
        "a " * (n // 2),
        " " * n,
        "a at " * (n // 5),
        "a dot " * (n // 6),
        "eyJ" * (n // 3),
        "%41" * (n // 3),
        "Aa " * (n // 3),
        "1." * (n // 2),
        "1:" * (n // 2),
        "-----BEGIN PRIVATE KEY-----" + "A" * n,
        "password=" * (n // 9),
        "x://a:" * (n // 6),
        "Ab1" * (n // 3),
        "12 Main " * (n // 8),
        "one " * (n // 4),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("spec", BUILTIN, ids=lambda s: s.name)
def test_no_pattern_is_open_to_catastrophic_backtracking(spec: PatternSpec) -> None:
    """Catastrophic backtracking is super-linear: time grows far faster than the input."""
    engine = PythonEngine([spec])

    def timed(text: str) -> float:
        t0 = time.process_time()  # CPU time: waiting for a busy core is not the pattern's cost
        engine.candidates(text)
        return time.process_time() - t0

    for small, text in zip(_adversarial(25_000), _adversarial(), strict=True):
        elapsed = timed(text)
        assert elapsed < PATHOLOGICAL_SECONDS, f"{spec.name} took {elapsed:.2f}s on {text[:12]!r}..."
        if elapsed >= GROWTH_MIN_SECONDS:
            base = min(timed(small) for _ in range(3))
            again = min(elapsed, timed(text))
            growth = again / max(base, 1e-6)
            assert growth < GROWTH_LIMIT, f"{spec.name}: 4x the input took {growth:.1f}x the time on {text[:12]!r}"


@pytest.mark.slow
def test_whole_scanner_time_bound_on_adversarial_input() -> None:
    s_py, _ = scanners()
    for text in _adversarial():
        t0 = time.perf_counter()
        s_py.scan(text)
        elapsed = time.perf_counter() - t0
        assert elapsed < 5.0, f"scan took {elapsed:.2f}s on {text[:12]!r}..."


@needs_hs
def test_auto_serves_at_once_and_switches_to_hyperscan() -> None:
    sc = Scanner(ProtectionSettings(ner={"mode": "off"}))
    text = "card 4111 1111 1111 1111, ssn 536-22-1234, jane@example.com"
    before = sc.scan(text)
    assert sc.wait_for_engine(timeout=120) == "hyperscan"
    assert sc.scan(text) == before
