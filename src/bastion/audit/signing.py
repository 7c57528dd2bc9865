"""The gateway's Ed25519 key that signs audit checkpoints, and checking those signatures.

The private key lives in the data directory (mode 0600) with its public half beside it
as ``<name>.pub`` (PEM). A key id is a fingerprint of the public key, so a verifier can
tell which replica signed a checkpoint and pick the matching key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.errors import ConfigError

#: File permission bits that must be clear on the private key (group and others).
_PRIVATE_MODE_FORBIDDEN = stat.S_IRWXG | stat.S_IRWXO


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The fingerprint of a public key: the first 16 bytes of SHA-256 of its raw form, hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """A public key as PEM (SubjectPublicKeyInfo)."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_path_for(private_path: Path) -> Path:
    """Where the public half of the key at ``private_path`` is written."""
    return private_path.with_name(private_path.name.removesuffix(".key") + ".pub")


class AuditSigner:
    """Signs checkpoint statements with one Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    def __repr__(self) -> str:
        return f"AuditSigner(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> AuditSigner:
        """A signer with a fresh key held only in memory."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: str | Path) -> AuditSigner:
        """Load the key at ``path``, or create it (0600) with its public PEM beside it."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            signer = cls._create(p)
        except FileExistsError:
            # Another process (a replica sharing the data dir) may have won the race; use its key.
            signer = cls._load(p)
        pub = public_path_for(p)
        if not pub.exists():
            pub.write_bytes(public_pem(signer.public_key))
        return signer

    @classmethod
    def _create(cls, path: Path) -> AuditSigner:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(key)

    @classmethod
    def _load(cls, path: Path) -> AuditSigner:
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the audit signing key {path}: {exc.strerror}") from None
        if mode & _PRIVATE_MODE_FORBIDDEN:
            # Fail closed: a key others can read cannot vouch for anything.
            raise ConfigError(f"the audit signing key {path} is readable by others; chmod 600 it")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ConfigError(f"{path} is not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an Ed25519 key")
        return cls(key)

    def sign(self, statement: bytes) -> str:
        """The signature of ``statement``, base64."""
        return base64.b64encode(self._private.sign(statement)).decode("ascii")


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key from a PEM file (or the public half of a private key file)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read public key {p}: {exc.strerror}") from None
    try:
        if b"PRIVATE KEY" in data:
            priv = serialization.load_pem_private_key(data, password=None)
            if isinstance(priv, Ed25519PrivateKey):
                return priv.public_key()
            raise ConfigError(f"{p} is not an Ed25519 key")
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ConfigError(f"{p} is not a PEM key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{p} is not an Ed25519 public key")
    return key


def keyring(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id."""
    return {key_id_of(k): k for k in keys}


def verify_signature(keys: dict[str, Ed25519PublicKey], key_id: str, statement: bytes, signature: str) -> bool:
    """Whether ``signature`` over ``statement`` is valid for the known key ``key_id``."""
    key = keys.get(key_id)
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), statement)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
