"""API keys: format, storage as a hash, expiry, revocation across replicas, and the authenticator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.services import pg_schema
from typer.testing import CliRunner

from bastion.cli import app as cli_app
from bastion.context import RequestContext
from bastion.errors import AuthenticationFailed, BastionError, InvalidRequest, ServiceUnavailable
from bastion.identity import Authenticator, IdentifyStage, KeyStore, parse_duration
from bastion.identity import apikeys as apikeys_mod
from bastion.identity.keyformat import KEY_LENGTH, generate_key, hash_key, is_well_formed
from bastion.storage import Database, open_database
from bastion.storage.tables import api_keys


class Clock:
    """Wall time the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same tests over SQLite and PostgreSQL (a fresh schema, dropped afterwards)."""
    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
        yield database
        database.close()
        return
    with pg_schema() as url:
        database = open_database(url, pool_size=2)
        yield database
        database.close()


def assert_not_echoed(err: BastionError, key: str) -> None:
    """No part of the key (nor its hash) appears in what a caller or a log would see."""
    text = err.message + json.dumps(err.to_body()) + repr(err) + str(err.details)
    assert key not in text
    assert hash_key(key) not in text
    for start in range(0, max(1, len(key) - 6), 3):
        chunk = key[start : start + 6]
        if chunk != "bst_" and not chunk.startswith("bst_"):
            assert chunk not in text, chunk


# -- format and durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("30d", 30 * 86400.0),
        ("12h", 43200.0),
        ("90m", 5400.0),
        ("45s", 45.0),
        ("2w", 14 * 86400.0),
        ("7D", 7 * 86400.0),
        (" 1h ", 3600.0),
        ("never", None),
        ("NEVER", None),
        (None, None),
    ],
)
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "1.5h", "30 days", "1y", "0d", "99999999d", "3x"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_duration(text)
    assert info.value.code == "invalid_duration"


def test_generated_keys_are_long_random_and_self_checking() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for k in keys:
        assert k.startswith("bst_") and len(k) == KEY_LENGTH and is_well_formed(k)
    k = next(iter(keys))
    # Any one-character typo breaks the checksum (or the shape).
    for i in range(4, len(k)):
        typo = k[:i] + ("A" if k[i] != "A" else "B") + k[i + 1 :]
        assert not is_well_formed(typo)


# -- the store ----------------------------------------------------------------------------------


def test_create_stores_only_a_hash_and_authenticates(db: Database) -> None:
    store = KeyStore(db)
    key, rec = store.create(
        "alice", models=["gpt-4o", "echo"], name="laptop", tenant="acme", groups=["eng"], roles=["dev"], expires_in=3600
    )
    assert rec.id.startswith("key_") and len(rec.id) == 16
    assert rec.prefix == key[:8]
    with db.engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == rec.id)).mappings().one()
    assert row["key_hash"] == hash_key(key)
    assert key not in json.dumps(dict(row), default=str)
    p = store.authenticate(key)
    assert (p.subject, p.kind, p.auth_method, p.key_id) == ("alice", "user", "api_key", rec.id)
    assert p.allowed_models == ("gpt-4o", "echo") and p.may_use_model("echo") and not p.may_use_model("x")
    assert (p.tenant, p.groups, p.roles) == ("acme", ("eng",), ("dev",))
    # A fresh store (another process) reads the key from storage.
    assert KeyStore(db).authenticate(key).key_id == rec.id


def test_service_key_without_model_list_may_use_any_model(db: Database) -> None:
    store = KeyStore(db)
    key, _ = store.create("ci-bot", owner_kind="service")
    p = store.authenticate(key)
    assert p.kind == "service" and p.allowed_models is None and p.may_use_model("anything")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "bst_",
        "garbage",
        "sk-" + "a" * 48,
        "bst_notarealkeyatall0000000000000000000000000000",
        "bst_" + "é" * 49,
        "bst_" + "a" * 200,
    ],
)
def test_malformed_keys_are_refused_without_storage(db: Database, bad: str, monkeypatch: Any) -> None:
    store = KeyStore(db)
    monkeypatch.setattr(store, "_read_one", lambda h: pytest.fail("storage was asked about a malformed key"))
    for call in (store.authenticate, lambda k: asyncio.run(store.authenticate_async(k))):
        with pytest.raises(AuthenticationFailed) as info:
            call(bad)
        assert info.value.code == "invalid_api_key"
        if len(bad) > 8:
            assert bad[4:] not in info.value.message


def test_typo_and_unknown_keys_never_echo_the_key(db: Database) -> None:
    store = KeyStore(db)
    key, _ = store.create("alice")
    typo = key[:-1] + ("x" if key[-1] != "x" else "y")
    for candidate in (typo, generate_key()):
        with pytest.raises(AuthenticationFailed) as info:
            asyncio.run(store.authenticate_async(candidate))
        assert info.value.code == "invalid_api_key"
        assert_not_echoed(info.value, candidate)


def test_expired_key_is_refused(db: Database) -> None:
    clock = Clock()
    store = KeyStore(db, clock=clock)
    key, rec = store.create("bob", expires_in=parse_duration("90m"))
    assert store.authenticate(key).subject == "bob"
    clock.now += 90 * 60 + 1
    with pytest.raises(AuthenticationFailed) as info:
        store.authenticate(key)
    assert info.value.code == "expired_api_key"
    assert_not_echoed(info.value, key)
    assert [r.to_public(clock.now)["status"] for r in store.list() if r.id == rec.id] == ["expired"]


def test_revoked_key_is_refused_and_revoking_is_idempotent(db: Database) -> None:
    store = KeyStore(db)
    key, rec = store.create("carol")
    revoked = store.revoke(rec.id)
    assert revoked.revoked_at is not None and revoked.status() == "revoked"
    assert store.revoke(rec.id).revoked_at == revoked.revoked_at
    with pytest.raises(AuthenticationFailed) as info:
        store.authenticate(key)
    assert info.value.code == "revoked_api_key"
    assert_not_echoed(info.value, key)
    assert rec.id not in [r.id for r in store.list()]
    assert rec.id in [r.id for r in store.list(include_revoked=True)]


def test_revoking_an_unknown_id_is_a_clear_error(db: Database) -> None:
    with pytest.raises(InvalidRequest) as info:
        KeyStore(db).revoke("key_000000000000")
    assert info.value.code == "key_not_found" and "key_000000000000" in info.value.message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"owner": ""},
        {"owner": "a\nb"},
        {"owner": "x" * 300},
        {"owner": "a", "owner_kind": "robot"},
        {"owner": "a", "expires_in": 0},
        {"owner": "a", "expires_in": -5},
        {"owner": "a", "models": ["m"] * 0 + ["\x00"]},
    ],
)
def test_create_rejects_bad_input(db: Database, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        KeyStore(db).create(**kwargs)


def test_revocation_reaches_another_replica_within_the_refresh_interval(db: Database) -> None:
    admin = KeyStore(db)

    async def go() -> float:
        replica = KeyStore(db, refresh_seconds=0.2)
        await replica.start()
        try:
            # A key made elsewhere after the replica started works at once (storage look-up on miss).
            key, rec = admin.create("dave")
            assert (await replica.authenticate_async(key)).key_id == rec.id
            admin.revoke(rec.id)
            revoked_at = time.monotonic()
            while time.monotonic() - revoked_at < 3:
                try:
                    replica.authenticate(key)
                except AuthenticationFailed as exc:
                    assert exc.code == "revoked_api_key"
                    return time.monotonic() - revoked_at
                await asyncio.sleep(0.05)
            raise AssertionError("the replica never saw the revocation")
        finally:
            await replica.stop()

    assert asyncio.run(go()) < 1.5


def test_unknown_keys_are_negatively_cached_and_rate_limited(db: Database, monkeypatch: Any) -> None:
    store = KeyStore(db)
    lookups: list[str] = []
    real = store._read_one

    def counting(key_hash: str) -> Any:
        lookups.append(key_hash)
        return real(key_hash)

    monkeypatch.setattr(store, "_read_one", counting)
    # Time stands still for the bucket, so the test does not depend on how fast look-ups run.
    store._bucket = apikeys_mod._TokenBucket(
        apikeys_mod.MISS_LOOKUPS_PER_SECOND, apikeys_mod.MISS_LOOKUP_BURST, lambda: 0.0
    )

    async def go() -> None:
        unknown = generate_key()
        # The same unknown key, many times and at once: one look-up.
        results = await asyncio.gather(*(store.authenticate_async(unknown) for _ in range(20)), return_exceptions=True)
        assert all(isinstance(r, AuthenticationFailed) for r in results)
        assert len(lookups) == 1
        # Many different unknown keys: look-ups stop at the burst size.
        for _ in range(int(apikeys_mod.MISS_LOOKUP_BURST) * 3):
            with pytest.raises(AuthenticationFailed):
                await store.authenticate_async(generate_key())
        assert len(lookups) == apikeys_mod.MISS_LOOKUP_BURST

    asyncio.run(go())


def test_storage_failure_on_a_miss_fails_closed_for_every_waiter(db: Database, monkeypatch: Any) -> None:
    store = KeyStore(db)

    def broken(key_hash: str) -> Any:
        time.sleep(0.1)
        raise OSError("storage is down")

    monkeypatch.setattr(store, "_read_one", broken)

    async def go() -> list[object]:
        key = generate_key()
        return list(await asyncio.gather(*(store.authenticate_async(key) for _ in range(5)), return_exceptions=True))

    results = asyncio.run(go())
    assert all(isinstance(r, ServiceUnavailable) and r.code == "identity_unavailable" for r in results), results


def test_a_stale_refresh_does_not_undo_a_revocation(db: Database) -> None:
    store = KeyStore(db)
    key, rec = store.create("olga")
    before = store.list()[0]
    store.revoke(rec.id)
    store._apply([before])  # a refresh that read the row before the revocation committed
    with pytest.raises(AuthenticationFailed) as info:
        store.authenticate(key)
    assert info.value.code == "revoked_api_key"


def test_stale_key_table_fails_closed(db: Database, monkeypatch: Any) -> None:
    store = KeyStore(db, refresh_seconds=0.05)
    key, _ = store.create("erin")

    def broken(since: float | None) -> Any:
        raise OSError("storage is down")

    async def go() -> None:
        await store.start()
        try:
            assert store.authenticate(key).subject == "erin"
            monkeypatch.setattr(store, "_read_changed", broken)
            store._last_refresh_ok -= apikeys_mod.MAX_STALENESS_SECONDS + 1
            await asyncio.sleep(0.2)
            with pytest.raises(ServiceUnavailable) as info:
                store.authenticate(key)
            assert info.value.code == "identity_unavailable"
        finally:
            await store.stop()

    asyncio.run(go())


# -- the authenticator and the identify stage -------------------------------------------------


def _auth(authenticator: Authenticator, authorization: str | None, x_api_key: str | None = None) -> Any:
    return asyncio.run(authenticator.authenticate(authorization, x_api_key))


def test_authenticator_accepts_bearer_or_x_api_key(db: Database) -> None:
    store = KeyStore(db)
    key, rec = store.create("frank")
    auth = Authenticator(store)
    assert _auth(auth, f"Bearer {key}").key_id == rec.id
    assert _auth(auth, f"bearer   {key} ").key_id == rec.id
    assert _auth(auth, None, key).key_id == rec.id
    assert _auth(auth, f"Bearer {key}", key).key_id == rec.id


@pytest.mark.parametrize(
    "authorization, x_api_key, code, challenge",
    [
        (None, None, "missing_credentials", 'Bearer realm="bastion"'),
        ("", "  ", "missing_credentials", 'Bearer realm="bastion"'),
        ("Basic dXNlcjpwYXNz", None, "invalid_api_key", 'Bearer realm="bastion", error="invalid_token"'),
        ("Bearer", None, "invalid_api_key", 'Bearer realm="bastion", error="invalid_token"'),
        ("Bearer garbage", None, "invalid_api_key", 'Bearer realm="bastion", error="invalid_token"'),
        (
            "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig",
            None,
            "invalid_api_key",
            'Bearer realm="bastion", error="invalid_token"',
        ),
        ("Bearer " + "x" * 40000, None, "invalid_api_key", 'Bearer realm="bastion", error="invalid_token"'),
    ],
)
def test_authenticator_refusals_carry_a_challenge(
    db: Database, authorization: str | None, x_api_key: str | None, code: str, challenge: str
) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        _auth(Authenticator(KeyStore(db)), authorization, x_api_key)
    assert info.value.code == code
    assert info.value.headers["WWW-Authenticate"] == challenge
    assert "garbage" not in info.value.message


def test_two_different_credentials_are_refused(db: Database) -> None:
    store = KeyStore(db)
    a, _ = store.create("a")
    b, _ = store.create("b")
    with pytest.raises(AuthenticationFailed) as info:
        _auth(Authenticator(store), f"Bearer {a}", b)
    assert_not_echoed(info.value, a)
    assert_not_echoed(info.value, b)


def test_keys_disabled_refuses_keys(db: Database) -> None:
    key, _ = KeyStore(db).create("g")
    with pytest.raises(AuthenticationFailed) as info:
        _auth(Authenticator(None), f"Bearer {key}")
    assert info.value.code == "invalid_api_key"


def test_identify_stage_sets_the_principal_and_explains(db: Database) -> None:
    store = KeyStore(db)
    key, rec = store.create("hana")
    stage = IdentifyStage(Authenticator(store))
    assert stage.name == "identify"
    ctx = RequestContext(endpoint="chat")
    ctx.state["authorization"] = f"Bearer {key}"
    asyncio.run(stage(ctx))
    assert ctx.principal is not None and ctx.principal.subject == "hana"
    assert [(d.stage, d.effect, d.reason) for d in ctx.decisions] == [("identify", "allow", f"api key {rec.id}")]
    bad = RequestContext(endpoint="chat")
    with pytest.raises(AuthenticationFailed):
        asyncio.run(stage(bad))
    assert bad.principal is None
    assert [(d.stage, d.effect) for d in bad.decisions] == [("identify", "deny")]


# -- the command line ---------------------------------------------------------------------------


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    from bastion.cli import _register

    _register()
    config = tmp_path / "bastion.yaml"
    config.write_text(f"storage:\n  url: sqlite:///{tmp_path / 'cli.db'}\n")
    runner = CliRunner()
    made = runner.invoke(
        cli_app,
        [
            "keys",
            "create",
            "--config",
            str(config),
            "--owner",
            "ivan",
            "--service",
            "--models",
            "a, b",
            "--expires",
            "30d",
            "--name",
            "ci",
        ],
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert is_well_formed(key)
    assert made.stdout.count(key) == 1
    listed = runner.invoke(cli_app, ["keys", "list", "--config", str(config), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["owner"], r["owner_kind"], r["models"], r["status"]) for r in rows] == [
        ("ivan", "service", ["a", "b"], "active")
    ]
    assert key not in listed.stdout and hash_key(key) not in listed.stdout
    human = runner.invoke(cli_app, ["keys", "list", "--config", str(config)])
    assert human.exit_code == 0 and rows[0]["id"] in human.stdout
    revoked = runner.invoke(cli_app, ["keys", "revoke", "--config", str(config), rows[0]["id"]])
    assert revoked.exit_code == 0, revoked.output
    db = open_database(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with pytest.raises(AuthenticationFailed) as info:
            KeyStore(db).authenticate(key)
        assert info.value.code == "revoked_api_key"
    finally:
        db.close()
    missing = runner.invoke(cli_app, ["keys", "revoke", "--config", str(config), "key_ffffffffffff"])
    assert missing.exit_code == 2
    bad = runner.invoke(cli_app, ["keys", "create", "--config", str(config), "--owner", "x", "--expires", "soon"])
    assert bad.exit_code == 2
