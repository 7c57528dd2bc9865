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


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Gateway]:
    """A gateway on the default test configuration, with one key for alice, shared by a module's tests.

    Tests that stop, reconfigure or tamper with a gateway make their own with ``make_gateway``.
    """
    d = tmp_path_factory.mktemp("shared-gw")
    gw = Gateway(write_config(d / "bastion.yaml", base_config(upstream.base_url, d / "data")))
    gw.create_key("alice")
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session", autouse=True)
def _no_credential_leaks() -> Iterator[None]:
    """After the whole run: no key, key hash, token or upstream credential in any log or response."""
    yield
    found = LEAKS.findings()
    assert not found, "credentials leaked:\n" + "\n".join(found)
