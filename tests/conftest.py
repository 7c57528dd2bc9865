"""Shared fixtures: the fake upstream, running gateways, and the end-of-run leak check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import Gateway, base_config, write_config
from tests.support.leaks import LEAKS


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    """One fake OpenAI-compatible provider for the whole run."""
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def make_gateway(tmp_path: Path, upstream: FakeUpstream) -> Iterator[object]:
    """A factory: make_gateway(**config_overrides) -> a configured (not yet started) Gateway."""
    made: list[Gateway] = []

    def factory(name: str = "gw", **overrides: object) -> Gateway:
        d = tmp_path / name
        cfg = base_config(upstream.base_url, d / "data", **overrides)
        gw = Gateway(write_config(d / "bastion.yaml", cfg))
        made.append(gw)
        return gw

    yield factory
    for gw in made:
        gw.stop()


@pytest.fixture
def gateway(make_gateway) -> Gateway:  # type: ignore[no-untyped-def]
    """A started gateway on the default test configuration, with one key made for alice."""
    gw = make_gateway()
    gw.create_key("alice")
    return gw.start()


@pytest.fixture(scope="session", autouse=True)
def _no_credential_leaks() -> Iterator[None]:
    """After the whole run: no key, key hash, token or upstream credential in any log or response."""
    yield
    found = LEAKS.findings()
    assert not found, "credentials leaked:\n" + "\n".join(found)
