"""The gateway secret: the root of the keys that hash values and seal pseudonyms.

Replicas that share a pseudonym vault or must hash values alike share this
secret through ``secret_env``; a single gateway keeps its own in the data directory.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path

from bastion.errors import ConfigError
from bastion.providers.secrets import SecretResolver
from bastion.settings import Settings

#: Bytes of randomness in a generated secret.
SECRET_BYTES = 32
SECRET_FILE = "gateway.secret"  # noqa: S105 - a file name, not a secret


def load_gateway_secret(settings: Settings, resolver: SecretResolver) -> bytes:
    """The gateway secret: from ``secret_env`` when set, else a private file made on first start."""
    if settings.secret_env:
        value = resolver.get(settings.secret_env)
        if value is None:
            raise ConfigError(f"secret_env names {settings.secret_env}, which is not set")
        if len(value.reveal()) < 32:
            raise ConfigError(f"{settings.secret_env} must hold at least 32 characters")
        return hashlib.sha256(value.reveal().encode()).digest()
    path = settings.data_path / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
    return _read_private(path)


def _read_private(path: Path) -> bytes:
    info = path.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} must not be readable by group or others (chmod 600)")
    raw = path.read_bytes()
    if len(raw) < SECRET_BYTES:
        raise ConfigError(f"{path} is damaged (too short); restore it from backup")
    return raw
