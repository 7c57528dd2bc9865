"""The hash chain: canonical JSON of an event, and the hash that links it to the one before.

Each stored event carries its own ``seq`` inside its body, so a row moved to another
place in the table still says where it belongs. Its hash covers the sequence number,
the previous event's hash and the canonical JSON body::

    hash(n) = SHA-256( "<n>\\n" + hash(n-1) + "\\n" + body(n) )

The first event links to ``GENESIS_HASH``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: The ``prev_hash`` of the first event in a chain.
GENESIS_HASH = "0" * 64

#: Version of the signed checkpoint statement; bumped if its fields ever change.
CHECKPOINT_VERSION = 1


def canonical_json(value: Any) -> str:
    """One exact text for a JSON value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(seq: int, prev_hash: str, body: str) -> str:
    """The hash of event ``seq`` whose predecessor hashed to ``prev_hash``."""
    h = hashlib.sha256(f"{seq}\n{prev_hash}\n".encode("ascii"))
    h.update(body.encode("utf-8"))
    return h.hexdigest()


def sha256_hex(text: str) -> str:
    """SHA-256 of a text (UTF-8), as hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def checkpoint_statement(seq: int, hash_: str, ts: float, key_id: str) -> bytes:
    """The bytes a checkpoint signs: the chain head at ``seq`` and who vouches for it."""
    return canonical_json({"v": CHECKPOINT_VERSION, "seq": seq, "hash": hash_, "ts": ts, "key_id": key_id}).encode(
        "utf-8"
    )
