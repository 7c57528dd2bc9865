"""Opening the database and bringing its schema up to date."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from bastion.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Map the URLs people write to the SQLAlchemy driver Bastion uses."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@dataclass
class Database:
    """An engine plus what the rest of Bastion needs to know about it."""

    engine: Engine
    url: str

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite database."""
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        """Whether this is PostgreSQL."""
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()


_migrate_lock = threading.Lock()


def _sqlite_pragmas(synchronous: str) -> Any:
    def apply(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets readers run beside the audit writer. With NORMAL a commit is in the WAL file
        # (the operating system's cache) before it returns: a killed process loses nothing, a power
        # cut may lose the last commits. FULL also waits for the disk on every commit.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return apply


def open_database(
    url: str,
    *,
    pool_size: int = 5,
    timeout: float = 5.0,
    migrate: bool = True,
    sqlite_synchronous: str = "full",
) -> Database:
    """Open the database at ``url`` and, unless told not to, apply pending migrations."""
    url = normalise_url(url)
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={"timeout": timeout, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous))
    elif url.startswith("postgresql+psycopg:"):
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=timeout,
            connect_args={"connect_timeout": max(1, int(timeout))},
        )
    else:
        raise ConfigError("storage.url must be sqlite:///PATH or postgresql://...")
    db = Database(engine=engine, url=url)
    if migrate:
        upgrade(db)
    return db


def alembic_config(db: Database) -> Any:
    """An Alembic configuration pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; safe to call from several processes."""
    from alembic import command

    with _migrate_lock:
        cfg = alembic_config(db)
        if db.is_postgres:
            # Replicas starting together must not race to create the same tables.
            with db.engine.connect() as conn:
                from sqlalchemy import text

                conn.execute(text("SELECT pg_advisory_lock(7250001)"))
                try:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
                    conn.commit()
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(7250001)"))
                    conn.commit()
        else:
            command.upgrade(cfg, revision)
