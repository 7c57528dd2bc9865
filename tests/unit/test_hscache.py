"""The compiled-pattern cache: reused when sound, recompiled when stale or tampered with."""

from __future__ import annotations

import pytest

pytest.importorskip("hyperscan")

from bastion.protect import hscache  # noqa: E402
from bastion.protect.engine import SwappingEngine, hyperscan_inputs  # noqa: E402
from bastion.protect.patterns import BUILTIN  # noqa: E402

SPECS = [s for s in BUILTIN if s.name in {"email", "us_ssn", "credit_card", "ipv4"}] or list(BUILTIN[:4])


def _key() -> str:
    import hyperscan

    return hscache.cache_key(hyperscan_inputs(SPECS), str(getattr(hyperscan, "__version__", "")))


def test_compiled_database_is_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("BASTION_CACHE_DIR", str(tmp_path / "cache"))
    first = SwappingEngine(SPECS)
    assert first.wait(120)
    cached = tmp_path / "cache" / f"hyperscan-{_key()}.db"
    assert cached.exists() and oct(cached.stat().st_mode & 0o777) == "0o600"
    again = SwappingEngine(SPECS)
    assert again.wait(10)
    assert again.candidates(hscache.SELF_TEST_TEXT) == first.candidates(hscache.SELF_TEST_TEXT)


@pytest.mark.parametrize("planted", [b"garbage", None])
def test_a_tampered_cache_is_not_trusted(tmp_path, monkeypatch, planted):
    monkeypatch.setenv("BASTION_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir(mode=0o700)
    path = tmp_path / "cache" / f"hyperscan-{_key()}.db"
    if planted is None:
        # A real database, but of other patterns: it would find nothing of ours.
        other = [s for s in BUILTIN if s not in SPECS][:1]
        from bastion.protect.engine import compile_database

        planted = compile_database(hyperscan_inputs(other))
    path.write_bytes(planted)
    engine = SwappingEngine(SPECS)
    assert engine.wait(120)
    found = {c for c in engine.candidates("mail jane@example.com or call about 536-22-8471")}
    assert found, "the engine serving after a tampered cache must still find values"
    assert path.read_bytes() != planted  # recompiled and replaced


def test_a_cache_directory_others_can_write_is_ignored(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("BASTION_CACHE_DIR", str(shared))
    assert hscache.load("anything") is None
    hscache.store("anything", b"db")
    assert not (shared / "hyperscan-anything.db").exists()
