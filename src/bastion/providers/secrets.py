"""Where provider credentials come from: the environment, then a secrets file. Never the config."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bastion.errors import ConfigError

#: Largest secrets file read, in bytes.
MAX_SECRETS_FILE_BYTES = 64 * 1024


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def read_secrets_file(path: str | Path) -> dict[str, str]:
    """Read ``NAME=value`` lines (``#`` comments, optional quotes) from a secrets file."""
    p = Path(path).expanduser()
    try:
        info = p.stat()
        if info.st_size > MAX_SECRETS_FILE_BYTES:
            raise ConfigError(f"secrets file {p} is larger than {MAX_SECRETS_FILE_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {p}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"secrets file {p} must not be readable by group or others (chmod 600)")
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{p}:{n}: expected NAME=value")
        name, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name.strip()] = value
    return out


class SecretResolver:
    """Looks a credential up by name: the process environment first, then the secrets file."""

    def __init__(self, secrets_file: str | Path | None = None) -> None:
        self._file: dict[str, str] = read_secrets_file(secrets_file) if secrets_file else {}

    def get(self, name: str | None) -> Secret | None:
        """The secret called ``name``, or None when it is not set anywhere."""
        if not name:
            return None
        value = os.environ.get(name)
        if value is None:
            value = self._file.get(name)
        return Secret(value) if value else None
