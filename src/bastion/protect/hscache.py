"""A cache of compiled hyperscan databases, so a gateway compiles its pattern set once, not every start.

The key is a digest of every expression, its flags and the hyperscan version; a
database read back from the cache must find exactly what the Python engine finds
on a self-test text before it is trusted, so a stale or tampered file is simply
compiled again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("bastion.protect")

#: Largest cached database read, in bytes.
MAX_CACHE_FILE_BYTES = 256 * 1024 * 1024

#: Text with one or more values of most built-in types, for the cache self-test.
SELF_TEST_TEXT = (
    "Jane Roe <jane.roe@example.com>, +1 415 555 0134, SSN 536-22-8471, card 4242 4242 4242 4242, "
    "IBAN GB82 WEST 1234 5698 7654 32, IP 192.168.10.4 and 2001:db8::1, MRN 00482913, NPI 1234567893, "
    "AKIAIOSFODNN7EXAMPLE ghp_16C7e42F292c6912E7710c838347Ae178B4a postgres://app:s3cret@db:5432/x "
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX2hlcmU routing 021000021 born 1985-03-14 "
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq NHS 943 476 5919"
)


def cache_dir() -> Path:
    """``BASTION_CACHE_DIR``, else ``$XDG_CACHE_HOME/bastion``, else ``~/.cache/bastion``."""
    explicit = os.environ.get("BASTION_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bastion"


def cache_key(inputs: list[tuple[bytes, int]], version: str) -> str:
    """The digest naming one pattern set compiled by one hyperscan version."""
    payload = json.dumps([[e.decode("latin-1"), f] for e, f in inputs]).encode()
    return hashlib.sha256(version.encode() + b"\0" + payload).hexdigest()[:40]


def _private_dir(path: Path) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    # Others able to write here could plant a database; such a directory is not used.
    return stat.S_ISDIR(info.st_mode) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load(key: str) -> bytes | None:
    """The cached database for ``key``, if present and kept privately."""
    directory = cache_dir()
    path = directory / f"hyperscan-{key}.db"
    if not _private_dir(directory):
        return None
    try:
        if path.stat().st_size > MAX_CACHE_FILE_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


def store(key: str, serialized: bytes) -> None:
    """Keep ``serialized`` for next time; a cache that cannot be written is only logged."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private_dir(directory):
            log.warning("hyperscan cache %s is writable by others; not used", directory)
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hyperscan-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(serialized)
        os.replace(tmp, directory / f"hyperscan-{key}.db")
    except OSError as exc:
        log.info("hyperscan cache not written: %s", exc.strerror)
