"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: API keys: only a hash of the secret is kept.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("owner", String(256), nullable=False),
    Column("owner_kind", String(16), nullable=False),
    Column("name", String(256), nullable=True),
    Column("tenant", String(256), nullable=True),
    Column("models", Text, nullable=True),  # JSON list, NULL = every model
    Column("groups", Text, nullable=True),  # JSON list
    Column("roles", Text, nullable=True),  # JSON list
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Index("ix_api_keys_updated_at", "updated_at"),
)

#: Audit events in chain order; ``seq`` is the position in the chain.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("ts", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON of the event
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_ts", "ts"),
    Index("ix_audit_events_request_id", "request_id"),
)

#: Signed checkpoints over the chain.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", Text, nullable=False),
    Index("ix_audit_checkpoints_seq", "seq"),
)
