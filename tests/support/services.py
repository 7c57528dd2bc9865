"""Access to the PostgreSQL and Redis servers the tests use, and what to do when they are down."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_BASE = os.environ.get("BASTION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BASTION_TEST_REDIS", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    """Under BASTION_REQUIRE_SERVICES=1 a test that needs a server fails instead of skipping."""
    return os.environ.get("BASTION_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need(host: str, port: int, what: str) -> None:
    """Skip (or fail, when services are required) unless host:port answers."""
    if _reachable(host, port):
        return
    if services_required():
        pytest.fail(f"{what} at {host}:{port} is required (BASTION_REQUIRE_SERVICES=1) but unreachable")
    pytest.skip(f"{what} at {host}:{port} is not reachable")


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test; yields a URL whose search_path is that schema."""
    need("127.0.0.1", 5432, "PostgreSQL")
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')
