"""Atomic reload: a valid change is swapped in, a broken file never replaces a working set."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bastion.context import Principal
from bastion.errors import ConfigError
from bastion.policy.config import PolicySettings
from bastion.policy.model import PolicyRequest, ResourceRef
from bastion.policy.store import PolicyStore
from bastion.settings import parse_settings

GOOD = '@id("no-gpt") @reason("Not gpt.") forbid(principal, action, resource == Bastion::Model::"gpt");\n'
GOOD2 = '@id("no-claude") forbid(principal, action, resource == Bastion::Model::"claude");\n'
BROKEN = "forbid(principal, action, resource)\nwhen { context.nope };\n"


def _allowed(store: PolicyStore, model: str) -> bool:
    req = PolicyRequest(Principal("alice"), "invoke_model", ResourceRef.model(model))
    return store.engine.decide(req).allowed


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    # Make the change visible to an mtime poll even within one clock tick.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_reload_swaps_valid_and_keeps_old_on_broken(tmp_path: Path) -> None:
    f = tmp_path / "p.cedar"
    f.write_text(GOOD)
    store = PolicyStore(PolicySettings(paths=[str(tmp_path)], reload_seconds=0))
    v1 = store.version
    assert not _allowed(store, "gpt") and _allowed(store, "claude")
    assert not store.check()  # nothing changed

    _touch(f, GOOD2)
    assert store.check() and store.version != v1
    assert _allowed(store, "gpt") and not _allowed(store, "claude")
    v2 = store.version

    _touch(f, BROKEN)
    assert not store.check()
    assert store.version == v2 and not _allowed(store, "claude")
    assert store.last_error and "p.cedar:2" in store.last_error
    assert store.status()["last_error"] == store.last_error

    (tmp_path / "extra.cedar").write_text(GOOD)
    _touch(f, GOOD2)
    assert store.check() and store.last_error is None
    assert not _allowed(store, "gpt") and not _allowed(store, "claude")
    assert store.reloads == 2


def test_first_load_must_succeed(tmp_path: Path) -> None:
    (tmp_path / "p.cedar").write_text(BROKEN)
    with pytest.raises(ConfigError):
        PolicyStore(PolicySettings(paths=[str(tmp_path)]))


def test_engine_in_use_is_not_changed_by_reload(tmp_path: Path) -> None:
    f = tmp_path / "p.cedar"
    f.write_text(GOOD)
    store = PolicyStore(PolicySettings(paths=[str(f)], reload_seconds=0))
    engine = store.engine  # a request holds this for its whole decision
    _touch(f, GOOD2)
    assert store.reload()
    req = PolicyRequest(Principal("a"), "invoke_model", ResourceRef.model("gpt"))
    assert not engine.decide(req).allowed and store.engine.decide(req).allowed


def test_watcher_picks_up_changes(tmp_path: Path) -> None:
    f = tmp_path / "p.cedar"
    f.write_text(GOOD)
    store = PolicyStore(PolicySettings(paths=[str(tmp_path)], reload_seconds=0.05))

    async def run() -> None:
        store.start()
        _touch(f, GOOD2)
        for _ in range(100):
            if _allowed(store, "gpt"):
                break
            await asyncio.sleep(0.05)
        await store.stop()

    asyncio.run(run())
    assert _allowed(store, "gpt")


def test_from_settings_resolves_paths_against_config(tmp_path: Path) -> None:
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "p.cedar").write_text(GOOD)
    settings = parse_settings("policy:\n  paths: [pol]\n  reload_seconds: 0\n")
    store = PolicyStore.from_settings(settings, tmp_path / "bastion.yaml")
    assert not _allowed(store, "gpt")


def test_decisions_continue_while_reloading(tmp_path: Path) -> None:
    import threading
    import time

    f = tmp_path / "p.cedar"
    f.write_text(GOOD)
    store = PolicyStore(PolicySettings(paths=[str(f)], reload_seconds=0))
    stop = threading.Event()
    flips = [0]
    versions: set[str] = set()

    def flip() -> None:
        texts = [GOOD2, BROKEN, GOOD]
        while not stop.is_set():
            _touch(f, texts[flips[0] % 3])
            store.check()
            versions.add(store.version)
            flips[0] += 1

    t = threading.Thread(target=flip)
    t.start()
    decisions = 0
    deadline = time.monotonic() + 20
    try:
        while (flips[0] < 9 or decisions < 200) and time.monotonic() < deadline:
            engine = store.engine
            d = engine.decide(PolicyRequest(Principal("a"), "invoke_model", ResourceRef.model("gpt")))
            # Each decision is wholly one set's: the GOOD set refuses gpt, the GOOD2 set allows it.
            assert d.allowed is (engine.policy("no-claude") is not None)
            assert d.version == engine.version
            decisions += 1
    finally:
        stop.set()
        t.join()
    assert flips[0] >= 9 and decisions >= 200
    assert len(versions) == 2  # the broken text never became a version
