"""What an API key looks like: ``bst_`` + 43 random characters + a 6-character checksum.

The random part is 32 bytes (256 bits) in URL-safe base64. The checksum is the
first 4 bytes of a SHA-256 over the random part; it is not a secret, it only
lets a mistyped or truncated key be refused without touching storage. Storage
keeps ``sha256(key)`` in hex and nothing else of the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "bst_"
#: Random bytes in a key: 256 bits, so guessing is hopeless and the hash needs no salt.
KEY_RANDOM_BYTES = 32
_BODY_CHARS = 43  # len(urlsafe_b64encode(32 bytes)) without padding
_CHECK_CHARS = 6  # len(urlsafe_b64encode(4 bytes)) without padding
KEY_LENGTH = len(KEY_PREFIX) + _BODY_CHARS + _CHECK_CHARS
#: Characters of a key shown in listings: the scheme plus 4 random characters (24 bits, harmless).
DISPLAY_PREFIX_CHARS = len(KEY_PREFIX) + 4

_KEY_SHAPE = re.compile(rf"^bst_[A-Za-z0-9_-]{{{_BODY_CHARS + _CHECK_CHARS}}}\Z")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _checksum(body: str) -> str:
    return _b64(hashlib.sha256(b"bastion-api-key:" + body.encode("ascii")).digest()[:4])


def generate_key() -> str:
    """A new random API key in plaintext (shown once, never stored)."""
    body = _b64(secrets.token_bytes(KEY_RANDOM_BYTES))
    return KEY_PREFIX + body + _checksum(body)


def is_well_formed(text: str) -> bool:
    """Whether ``text`` has the shape and a correct checksum of a Bastion API key."""
    if len(text) != KEY_LENGTH or not _KEY_SHAPE.match(text):
        return False
    body = text[len(KEY_PREFIX) : len(KEY_PREFIX) + _BODY_CHARS]
    check = text[len(KEY_PREFIX) + _BODY_CHARS :]
    return hmac.compare_digest(check, _checksum(body))


def hash_key(text: str) -> str:
    """The stored form of a key: SHA-256 of the whole key, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def display_prefix(text: str) -> str:
    """The few leading characters shown in listings so a person can tell keys apart."""
    return text[:DISPLAY_PREFIX_CHARS]
