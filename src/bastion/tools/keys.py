"""The rotating key pair that signs tool tokens, and the JWKS that publishes it.

Keys live as files in one directory (mode 0700, files 0600) so that replicas
sharing the directory sign with the same key: ``keyring.json`` names the
current and the previous key, each private key is a PKCS#8 PEM named by its
key id (the RFC 7638 thumbprint of its public JWK). Rotation makes the current
key the previous one and drops the key before it; the JWKS lists both, so a
token signed just before a rotation stays verifiable until it expires.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bastion.errors import ConfigError, ServiceUnavailable
from bastion.tools.config import SigningAlgorithm

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

#: Seconds between two checks of whether another process rotated the shared key files.
RELOAD_CHECK_SECONDS = 5.0
#: Largest key-ring metadata file read, in bytes.
MAX_KEYRING_FILE_BYTES = 16 * 1024
_META = "keyring.json"
log = logging.getLogger(__name__)
_LOCK = ".lock"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk(key: PrivateKey) -> dict[str, str]:
    """The public half of ``key`` as the members RFC 7638 hashes, in lexicographic order."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
    numbers = key.public_key().public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def _thumbprint(jwk: dict[str, str]) -> str:
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key pair of the ring."""

    kid: str
    algorithm: SigningAlgorithm
    private_key: PrivateKey
    created_at: float

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use``."""
        jwk = _public_jwk(self.private_key)
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r})"


def generate_key(algorithm: SigningAlgorithm, created_at: float) -> SigningKey:
    """A fresh key pair for ``algorithm``."""
    private: PrivateKey
    if algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(_thumbprint(_public_jwk(private)), algorithm, private, created_at)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class ToolKeyRing:
    """The current and previous signing keys, rotated on a period, kept in a directory."""

    def __init__(
        self,
        directory: str | Path,
        *,
        algorithm: SigningAlgorithm = "EdDSA",
        rotation_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dir = Path(directory).expanduser()
        self._algorithm: SigningAlgorithm = algorithm
        self._rotation = rotation_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._current: SigningKey | None = None
        self._previous: SigningKey | None = None
        self._jwks: dict[str, Any] = {"keys": []}
        self._meta_mtime = 0.0
        self._next_reload_check = 0.0

    # -- public API -----------------------------------------------------------------

    def current(self) -> SigningKey:
        """The key to sign with now, rotating first when its period is over."""
        now = self._clock()
        key = self._current
        if key is not None and now < self._next_reload_check and now - key.created_at < self._rotation:
            return key  # the hot path: no file system access
        with self._lock:
            try:
                self._sync(now)
            except (ConfigError, OSError) as exc:
                if self._current is None:
                    raise ServiceUnavailable(
                        "Tool signing keys are unavailable.", code="tool_keys_unavailable"
                    ) from None
                # An overdue rotation is not a compromise: keep signing, retry at the next check.
                log.warning("tool key ring %s could not be refreshed (%s); keeping key %s", self._dir, exc, key)
                return self._current
            assert self._current is not None
            return self._current

    def open(self) -> SigningKey:
        """Load or create the keys now; ConfigError when they cannot be (call at start-up)."""
        with self._lock:
            self._sync(self._clock())
            assert self._current is not None
            return self._current

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every key whose tokens may still be valid."""
        self.current()
        return self._jwks

    def keys(self) -> tuple[SigningKey, ...]:
        """The keys published in the JWKS, current first."""
        self.current()
        return tuple(k for k in (self._current, self._previous) if k is not None)

    def rotate(self) -> SigningKey:
        """Make a new current key now; the old current becomes the previous one."""
        with self._lock, self._file_lock():
            self._load()
            self._rotate_locked(self._clock())
            assert self._current is not None
            return self._current

    # -- internals ------------------------------------------------------------------

    def _sync(self, now: float) -> None:
        self._next_reload_check = now + RELOAD_CHECK_SECONDS
        meta = self._dir / _META
        try:
            mtime = meta.stat().st_mtime
        except FileNotFoundError:
            mtime = -1.0
        if self._current is None or mtime != self._meta_mtime:
            self._load()
        cur = self._current
        if cur is None or now - cur.created_at >= self._rotation or cur.algorithm != self._algorithm:
            with self._file_lock():
                # Another process may have rotated while we waited for the lock.
                self._load()
                cur = self._current
                if cur is None or now - cur.created_at >= self._rotation or cur.algorithm != self._algorithm:
                    self._rotate_locked(now)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        self._ensure_dir()
        fd = os.open(self._dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _ensure_dir(self) -> None:
        try:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the tool key directory {self._dir}: {exc.strerror}") from None

    def _load(self) -> None:
        meta_path = self._dir / _META
        try:
            st = meta_path.stat()
            if st.st_size > MAX_KEYRING_FILE_BYTES:
                raise ConfigError(f"{meta_path} is larger than {MAX_KEYRING_FILE_BYTES} bytes")
            meta = json.loads(meta_path.read_bytes())
        except FileNotFoundError:
            self._current = self._previous = None
            self._meta_mtime = -1.0
            return
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the tool key ring {meta_path}: {exc}") from None
        self._meta_mtime = st.st_mtime
        self._current = self._read_key(meta.get("current"))
        prev = meta.get("previous")
        self._previous = self._read_key(prev) if prev else None
        self._rebuild_jwks()

    def _read_key(self, entry: Any) -> SigningKey:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            raise ConfigError(f"the tool key ring in {self._dir} is damaged")
        kid, alg, created = entry["kid"], entry.get("alg"), entry.get("created_at")
        if alg not in ("EdDSA", "ES256") or not isinstance(created, int | float):
            raise ConfigError(f"the tool key ring in {self._dir} is damaged")
        path = self._dir / f"{kid}.pem"
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read tool signing key {path.name}: {exc}") from None
        if not isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigError(f"tool signing key {path.name} has an unsupported type")
        if _thumbprint(_public_jwk(private)) != kid:
            raise ConfigError(f"tool signing key {path.name} does not match its key id")
        return SigningKey(kid, alg, private, float(created))

    def _rotate_locked(self, now: float) -> None:
        self._ensure_dir()
        new = generate_key(self._algorithm, now)
        pem = new.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self._dir / f"{new.kid}.pem", pem)
        dropped = self._previous
        self._previous, self._current = self._current, new
        meta: dict[str, Any] = {"current": self._entry(new)}
        if self._previous is not None:
            meta["previous"] = self._entry(self._previous)
        _write_private(self._dir / _META, json.dumps(meta, indent=2).encode())
        self._meta_mtime = (self._dir / _META).stat().st_mtime
        if dropped is not None and dropped.kid not in (
            new.kid,
            getattr(self._previous, "kid", None),
        ):
            with contextlib.suppress(FileNotFoundError):
                (self._dir / f"{dropped.kid}.pem").unlink()
        self._rebuild_jwks()

    @staticmethod
    def _entry(key: SigningKey) -> dict[str, Any]:
        return {"kid": key.kid, "alg": key.algorithm, "created_at": key.created_at}

    def _rebuild_jwks(self) -> None:
        keys = [k.public_jwk() for k in (self._current, self._previous) if k is not None]
        # A new dict each time: callers may hold the old one while we rebuild.
        self._jwks = {"keys": keys}
