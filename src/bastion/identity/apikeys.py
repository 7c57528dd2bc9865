"""Scoped API keys: made once, stored as a hash, checked from memory on the hot path.

Every replica keeps the whole key table in memory (hash -> record) and
refreshes it from storage every ``refresh_seconds`` by reading the rows whose
``updated_at`` moved, so a revocation made anywhere is honoured everywhere
within about that delay. A key this replica has not seen yet (made a moment
ago by another process) is looked up in storage once, off the event loop;
such misses are negatively cached and rate-limited so random keys cannot be
used to hammer the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, RowMapping, insert, select, text, update

from bastion.context import Principal, PrincipalKind
from bastion.errors import AuthenticationFailed, InvalidRequest, ServiceUnavailable
from bastion.identity.durations import parse_duration
from bastion.identity.keyformat import display_prefix, generate_key, hash_key, is_well_formed
from bastion.storage import Database
from bastion.storage.tables import api_keys

__all__ = ["KeyRecord", "KeyStore", "parse_duration"]

log = logging.getLogger("bastion.identity")

#: Rows changed this many seconds before the last one seen are read again on each refresh,
#: so a transaction that commits late (or a replica whose clock is a little behind) is not missed.
REFRESH_OVERLAP_SECONDS = 10.0
#: If refreshing has failed for this long, keys are refused (503): revocations may be unseen.
MAX_STALENESS_SECONDS = 30.0
#: Seconds an unknown well-formed key is remembered as unknown.
NEGATIVE_CACHE_SECONDS = 30.0
#: Most unknown keys remembered at once (oldest forgotten first).
NEGATIVE_CACHE_MAX_ENTRIES = 10_000
#: Storage look-ups for keys not in memory: steady rate per second, and burst.
MISS_LOOKUPS_PER_SECOND = 20.0
MISS_LOOKUP_BURST = 40.0
#: Least seconds between two warnings that unknown keys are being refused without look-up.
FLOOD_WARNING_SECONDS = 60.0
#: Longest owner, name or tenant accepted, and most models, groups or roles on one key.
MAX_LABEL_CHARS = 256
MAX_LIST_ITEMS = 256

_INVALID = "The API key is not valid."
_EXPIRED = "The API key has expired."
_REVOKED = "The API key has been revoked."

KeyStatus = Literal["active", "expired", "revoked"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as stored: everything but the secret itself."""

    id: str
    prefix: str
    owner: str
    owner_kind: PrincipalKind
    name: str | None
    tenant: str | None
    models: tuple[str, ...] | None
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    updated_at: float
    key_hash: str = ""

    def __repr__(self) -> str:
        # The hash is not the key, but it is enough to find the row: keep it out of logs.
        return f"KeyRecord(id={self.id!r}, owner={self.owner!r}, status={self.status()!r})"

    def status(self, now: float | None = None) -> KeyStatus:
        """Whether the key is active, expired or revoked (revocation wins)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (time.time() if now is None else now):
            return "expired"
        return "active"

    def to_public(self, now: float | None = None) -> dict[str, Any]:
        """The record as shown to administrators (never the hash)."""
        return {
            "id": self.id,
            "prefix": self.prefix,
            "owner": self.owner,
            "owner_kind": self.owner_kind,
            "name": self.name,
            "tenant": self.tenant,
            "models": list(self.models) if self.models is not None else None,
            "groups": list(self.groups),
            "roles": list(self.roles),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "status": self.status(now),
        }

    def to_principal(self) -> Principal:
        """The caller this key stands for."""
        return Principal(
            subject=self.owner,
            kind=self.owner_kind,
            groups=self.groups,
            roles=self.roles,
            tenant=self.tenant,
            auth_method="api_key",
            key_id=self.id,
            allowed_models=self.models,
        )


def _json_list(raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return None
    value = json.loads(raw) if isinstance(raw, str) else raw
    return tuple(str(v) for v in value)


def _record(row: RowMapping) -> KeyRecord:
    kind: PrincipalKind = "service" if row["owner_kind"] == "service" else "user"
    return KeyRecord(
        id=row["id"],
        prefix=row["prefix"],
        owner=row["owner"],
        owner_kind=kind,
        name=row["name"],
        tenant=row["tenant"],
        models=_json_list(row["models"]),
        groups=_json_list(row["groups"]) or (),
        roles=_json_list(row["roles"]) or (),
        created_at=float(row["created_at"]),
        expires_at=None if row["expires_at"] is None else float(row["expires_at"]),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        updated_at=float(row["updated_at"]),
        key_hash=row["key_hash"],
    )


def _label(value: str | None, what: str) -> str | None:
    return None if value is None or value == "" else _text(value, what)


def _text(value: str, what: str) -> str:
    if not value:
        raise InvalidRequest(f"An API key needs a {what}.", code="invalid_key_request")
    if len(value) > MAX_LABEL_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidRequest(
            f"The {what} must be at most {MAX_LABEL_CHARS} printable characters.",
            code="invalid_key_request",
        )
    return value


def _items(values: Iterable[str] | None, what: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    out = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    if len(out) > MAX_LIST_ITEMS:
        raise InvalidRequest(f"At most {MAX_LIST_ITEMS} {what} per key.", code="invalid_key_request")
    for v in out:
        _label(v, what)
    return out


def _storage_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("API keys cannot be checked right now.", code="identity_unavailable")


class _TokenBucket:
    """A small token bucket; not thread-safe, used on the event loop only."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens, self._at = burst, clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class KeyStore:
    """API keys over a database, with an in-memory table refreshed in the background."""

    def __init__(
        self,
        db: Database,
        *,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._by_hash: dict[str, KeyRecord] = {}
        self._high_water = 0.0
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._bucket = _TokenBucket(MISS_LOOKUPS_PER_SECOND, MISS_LOOKUP_BURST, time.monotonic)
        self._task: asyncio.Task[None] | None = None
        self._flood_warned_at = -math.inf
        self._last_refresh_ok = time.monotonic()
        # Start-up may read storage synchronously; the hot path never does.
        self._apply(self._read_changed(None))

    # -- storage ---------------------------------------------------------------------

    def _read_changed(self, since: float | None) -> list[KeyRecord]:
        stmt = select(api_keys)
        if since is not None:
            stmt = stmt.where(api_keys.c.updated_at >= since - REFRESH_OVERLAP_SECONDS)
        with self._db.engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt).mappings()]

    def _read_one(self, key_hash: str) -> KeyRecord | None:
        with self._db.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).mappings().first()
        return _record(row) if row is not None else None

    def _stamp(self, conn: Connection) -> float:
        """The ``updated_at`` of a change: on PostgreSQL the database's clock, so that replicas
        whose own clocks disagree still order their changes by one clock."""
        if self._db.is_postgres:
            return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
        return self._clock()

    def _apply(self, records: Iterable[KeyRecord]) -> None:
        for rec in records:
            known = self._by_hash.get(rec.key_hash)
            # A refresh that started before a local revoke must not bring the key back to life.
            if known is None or rec.updated_at >= known.updated_at:
                self._by_hash[rec.key_hash] = rec
            self._misses.pop(rec.key_hash, None)
            self._high_water = max(self._high_water, rec.updated_at)

    # -- administration (synchronous: the CLI and start-up) --------------------------

    def create(
        self,
        owner: str,
        *,
        owner_kind: PrincipalKind = "user",
        models: Sequence[str] | None = None,
        expires_in: float | None = None,
        name: str | None = None,
        tenant: str | None = None,
        groups: Sequence[str] = (),
        roles: Sequence[str] = (),
    ) -> tuple[str, KeyRecord]:
        """Make a key; returns its plaintext (shown once, never stored) and its record."""
        if owner_kind not in ("user", "service"):
            raise InvalidRequest("owner_kind must be 'user' or 'service'.", code="invalid_key_request")
        if expires_in is not None and not 0 < expires_in:
            raise InvalidRequest("A key's lifetime must be more than zero seconds.", code="invalid_key_request")
        owner_v = _text(owner, "owner")
        model_list = _items(models, "models")
        group_list = _items(groups, "groups") or ()
        role_list = _items(roles, "roles") or ()
        plaintext = generate_key()
        now = self._clock()
        rec = KeyRecord(
            id="key_" + secrets.token_hex(6),
            prefix=display_prefix(plaintext),
            owner=owner_v,
            owner_kind=owner_kind,
            name=_label(name, "name"),
            tenant=_label(tenant, "tenant"),
            models=model_list,
            groups=group_list,
            roles=role_list,
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
            revoked_at=None,
            updated_at=now,
            key_hash=hash_key(plaintext),
        )
        with self._db.engine.begin() as conn:
            rec = dataclasses.replace(rec, updated_at=self._stamp(conn))
            conn.execute(
                insert(api_keys).values(
                    id=rec.id,
                    key_hash=rec.key_hash,
                    prefix=rec.prefix,
                    owner=rec.owner,
                    owner_kind=rec.owner_kind,
                    name=rec.name,
                    tenant=rec.tenant,
                    models=None if rec.models is None else json.dumps(list(rec.models)),
                    groups=json.dumps(list(rec.groups)),
                    roles=json.dumps(list(rec.roles)),
                    created_at=rec.created_at,
                    expires_at=rec.expires_at,
                    revoked_at=None,
                    updated_at=rec.updated_at,
                )
            )
        self._apply([rec])
        return plaintext, rec

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke the key with public id ``key_id``; revoking twice is harmless."""
        now = self._clock()
        with self._db.engine.begin() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
            if row is None:
                raise InvalidRequest(f"No API key has the id {key_id[:64]!r}.", code="key_not_found")
            if row["revoked_at"] is None:
                stamp = self._stamp(conn)
                conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now, updated_at=stamp))
                row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().one()
        rec = _record(row)
        self._apply([rec])
        return rec

    def list(self, include_revoked: bool = False) -> list[KeyRecord]:
        """Every key in storage, oldest first; revoked ones only when asked."""
        stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            stmt = stmt.where(api_keys.c.revoked_at.is_(None))
        with self._db.engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt).mappings()]

    # -- the hot path ----------------------------------------------------------------

    def _check(self, rec: KeyRecord) -> Principal:
        status = rec.status(self._clock())
        if status == "revoked":
            raise AuthenticationFailed(_REVOKED, code="revoked_api_key")
        if status == "expired":
            raise AuthenticationFailed(_EXPIRED, code="expired_api_key")
        return rec.to_principal()

    def _fresh_enough(self) -> None:
        if self._task is not None and time.monotonic() - self._last_refresh_ok > MAX_STALENESS_SECONDS:
            raise _storage_unavailable()

    def authenticate(self, plaintext: str) -> Principal:
        """The principal for ``plaintext``, from memory only; raises AuthenticationFailed."""
        if not is_well_formed(plaintext):
            raise AuthenticationFailed(_INVALID, code="invalid_api_key")
        self._fresh_enough()
        rec = self._by_hash.get(hash_key(plaintext))
        if rec is None:
            raise AuthenticationFailed(_INVALID, code="invalid_api_key")
        return self._check(rec)

    async def authenticate_async(self, plaintext: str) -> Principal:
        """Like authenticate, but a key not in memory is looked up in storage (off the loop)."""
        if not is_well_formed(plaintext):
            raise AuthenticationFailed(_INVALID, code="invalid_api_key")
        self._fresh_enough()
        key_hash = hash_key(plaintext)
        rec = self._by_hash.get(key_hash)
        if rec is None:
            rec = await self._lookup_miss(key_hash)
        if rec is None:
            raise AuthenticationFailed(_INVALID, code="invalid_api_key")
        return self._check(rec)

    async def _lookup_miss(self, key_hash: str) -> KeyRecord | None:
        now = time.monotonic()
        until = self._misses.get(key_hash)
        if until is not None and until > now:
            return None
        pending = self._inflight.get(key_hash)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except ServiceUnavailable:
                raise _storage_unavailable() from None
        if not self._bucket.take():
            # One line a minute is enough to notice a flood; one per refused key would be the flood.
            if now - self._flood_warned_at >= FLOOD_WARNING_SECONDS:
                self._flood_warned_at = now
                log.warning(
                    "unknown API keys are arriving faster than %s/s; refusing without look-up",
                    MISS_LOOKUPS_PER_SECOND,
                )
            return None
        fut: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = fut
        try:
            rec = await asyncio.to_thread(self._read_one, key_hash)
        except Exception as exc:
            log.warning("API key look-up failed: %s", type(exc).__name__)
            fut.set_exception(_storage_unavailable())
            fut.exception()  # marks it retrieved even when no request is waiting on it
            raise _storage_unavailable() from None
        finally:
            self._inflight.pop(key_hash, None)
        if rec is None:
            self._misses[key_hash] = now + NEGATIVE_CACHE_SECONDS
            self._misses.move_to_end(key_hash)
            while len(self._misses) > NEGATIVE_CACHE_MAX_ENTRIES:
                self._misses.popitem(last=False)
        else:
            self._apply([rec])
        fut.set_result(rec)
        return rec

    # -- background refresh ----------------------------------------------------------

    async def refresh(self) -> int:
        """Read the rows changed since the last refresh into memory; returns how many were read."""
        records = await asyncio.to_thread(self._read_changed, self._high_water)
        self._apply(records)
        self._last_refresh_ok = time.monotonic()
        return len(records)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep refreshing; staleness is enforced apart
                log.warning("refreshing API keys failed: %s", type(exc).__name__)

    async def start(self) -> None:
        """Start refreshing the in-memory key table in the background."""
        if self._task is None:
            await self.refresh()
            self._task = asyncio.create_task(self._refresh_forever(), name="bastion-apikeys-refresh")

    async def stop(self) -> None:
        """Stop the background refresh."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
