"""Database access shared by every part that persists: one schema, SQLite or PostgreSQL."""

from bastion.storage.db import Database, open_database

__all__ = ["Database", "open_database"]
