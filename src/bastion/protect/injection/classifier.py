"""The small linear classifier: a logistic model over sparse text features.

The weights live in a JSON artefact written by ``training/injection/train.py``,
keyed by feature strings. At load time each key is turned into the 64-bit hash
``features.feature_key_hashes`` gives it, and the weights go into an
open-addressing table indexed by the hash's top bits; at inference the
features of a text are hashed with numpy (``features.feature_hashes``) and
their weights gathered in one go, then every window's sum is a difference of
prefix sums. A text feature absent from the artefact finds no equal hash and
weighs nothing, exactly as a missing dictionary key did. Identifiers, addresses
and numbers are masked to class tokens first (``entities.py``), as they were
at training.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import ConfigError
from bastion.protect.injection.entities import entity_joined
from bastion.protect.injection.features import (
    CHAR_N,
    WINDOW_WORDS,
    U64Array,
    feature_hashes,
    feature_key_hashes,
    features_of_words,
    window_bounds,
)

#: The artefact format this code reads (2: features of entity-masked text; weights of
#: format 1 were learnt on unmasked text and would be misread).
ARTEFACT_FORMAT = "bastion-injection-linear/2"
#: The artefact shipped with the package.
DEFAULT_ARTEFACT = Path(__file__).with_name("classifier.json")
#: Largest artefact accepted, in bytes (a corrupt or hostile file must not exhaust memory).
MAX_ARTEFACT_BYTES = 64 * 1024 * 1024
#: Slots of the weight table: 2**SLOT_BITS_OVER_BUCKETS per bucket, and about one bucket per
#: weight (60,000 weights: 2**16 buckets of 8 bytes, 2**18 slots of 16 bytes, 4.5 MB in all).
SLOT_BITS_OVER_BUCKETS = 2
#: Rounds of mask choice before the table is made larger (about 25 are needed).
BUILD_ROUNDS = 1000

F64Array = npt.NDArray[np.float64]
_SPREAD2 = np.uint64(0xC4CEB9FE1A85EC53)
_SLOT = np.dtype([("key", np.uint64), ("weight", np.float64)])


@functools.lru_cache(maxsize=1024)
def _windows(count: int) -> tuple[npt.NDArray[np.intp], tuple[tuple[int, int, int], ...]]:
    """For a text of ``count`` words: the first and last word index of each window, flat (as the
    space before each), and each window's (start, end, number of word and pair features)."""
    bounds = tuple(window_bounds(count))
    ends = np.array([k for b in bounds for k in b], dtype=np.intp)
    ends.flags.writeable = False  # shared by every text of that length
    return ends, tuple((s, e, (e - s) * 2 - 1) for s, e in bounds)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class HashedWeights:
    """Feature weights addressed by feature hash, one memory access per lookup.

    A two-level hash without collisions among the known features (hash and displace): the
    top bits of the hash (spread, see ``features.SPREAD``) pick a bucket; each bucket holds a 64-bit mask,
    chosen at build time so that the keys of the bucket, XOR-ed with it and multiplied by a
    second constant, land (top bits again) on slots no other key uses. A lookup reads the
    mask (a table small enough to stay in cache), then the one slot, a record of the key and
    its weight: the weight counts when the key is the hash itself.
    """

    def __init__(self, weights: dict[str, float]) -> None:
        keys = list(weights)
        hashes, ok = feature_key_hashes(keys)
        values = np.fromiter((weights[k] for k in keys), dtype=np.float64, count=len(keys))
        hashes, values = hashes[ok], values[ok]
        order = np.argsort(hashes, kind="stable")
        hashes, values = hashes[order], values[order]
        if len(hashes) > 1 and bool(np.any(hashes[1:] == hashes[:-1])):
            raise ConfigError("two features of the injection classifier have the same hash")
        self.count = len(hashes)
        bucket_bits = max(4, math.ceil(math.log2(max(1, len(hashes)))))
        for slot_bits in range(bucket_bits + SLOT_BITS_OVER_BUCKETS, bucket_bits + SLOT_BITS_OVER_BUCKETS + 4):
            if self._build(hashes, values, bucket_bits, slot_bits):
                break
        else:
            raise ConfigError("the injection classifier's weights could not be placed")
        #: Identifies these weights (for caches of verdicts).
        self.digest = hashlib.sha256(hashes.tobytes() + values.tobytes()).digest()

    def _build(self, hashes: U64Array, values: F64Array, bucket_bits: int, slot_bits: int) -> bool:
        """Choose every bucket's mask, in rounds: a bucket whose keys all land on free slots
        no other key of the round wants is placed; the others try a new mask next round."""
        self._bucket_shift = np.uint64(64 - bucket_bits)
        self._slot_shift = np.uint64(64 - slot_bits)
        bucket = self._buckets(hashes).astype(np.intp)
        self._masks = np.zeros(1 << bucket_bits, dtype=np.uint64)
        self._slots = np.zeros(1 << slot_bits, dtype=_SLOT)
        used = np.zeros(1 << slot_bits, dtype=np.bool_)
        todo = np.arange(len(hashes))
        # Fixed seed: the same artefact always gives the same table.
        rng = np.random.default_rng(20251125)
        for _ in range(BUILD_ROUNDS):
            if not len(todo):
                return True
            mask = np.uint64(rng.integers(1, 1 << 63))
            h, b = hashes[todo], bucket[todo]
            slot = self._slot(h, mask).astype(np.intp)
            wanted = np.bincount(slot, minlength=len(used))
            clash = used[slot] | (wanted[slot] > 1)
            failed = np.bincount(b[clash], minlength=len(self._masks)) > 0
            placed = ~failed[b]
            at = slot[placed]
            used[at] = True
            self._slots["key"][at] = h[placed]
            self._slots["weight"][at] = values[todo[placed]]
            self._masks[b[placed]] = mask
            todo = todo[~placed]
        return not len(todo)

    def _buckets(self, hashes: U64Array) -> U64Array:
        # Feature hashes carry every bit into their top bits (features.SPREAD), which pick the bucket.
        b: U64Array = hashes >> self._bucket_shift
        return b

    def _slot(self, hashes: U64Array, masks: U64Array | np.uint64) -> U64Array:
        x = hashes ^ masks
        x *= _SPREAD2
        x >>= self._slot_shift
        return x

    def lookup(self, hashes: U64Array) -> F64Array:
        """The weight of each hashed feature (0.0 for features the model does not know)."""
        # _slot(hashes, masks of their buckets), in place in the array the masks are read into.
        slot = self._masks.take(hashes >> self._bucket_shift)
        slot ^= hashes
        slot *= _SPREAD2
        slot >>= self._slot_shift
        found = self._slots.take(slot)
        out: F64Array = found["weight"] * (found["key"] == hashes)
        return out


@dataclass(frozen=True, slots=True)
class LinearClassifier:
    """Weights of a logistic model over L2-normalised binary features."""

    bias: float
    weights: dict[str, float]
    meta: dict[str, Any]
    table: HashedWeights = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", HashedWeights(self.weights))

    def window_probability(self, words: list[str]) -> float:
        """Probability that one window of words (already entity-masked) is an injection.

        The definition, from feature strings; ``probability`` computes the same from hashes.
        """
        feats = features_of_words(words)
        if not feats:
            return _sigmoid(self.bias)
        total = sum(filter(None, map(self.weights.get, feats)))
        return _sigmoid(self.bias + total / math.sqrt(len(feats)))

    def probability(
        self, folded: str, words: list[str] | None = None, mask_cues: Container[str] | None = None
    ) -> float:
        """The highest window probability over the folded text.

        ``words``: its plain words, if known; ``mask_cues``: which ``entities.MASK_CUES`` can
        match it, if known (see ``entities.mask_entities``).
        """
        return self.probability_and_words(folded, words, mask_cues)[0]

    def probability_and_words(
        self, folded: str, words: list[str] | None = None, mask_cues: Container[str] | None = None
    ) -> tuple[float, int]:
        """``probability(folded, words, mask_cues)`` and the number of plain words of the text
        (``len(words_of(folded))``), which the masking work tells on the way."""
        joined, plain = entity_joined(folded, words, mask_cues)
        return self._joined_probability(joined), plain

    def _joined_probability(self, joined: str | bytes) -> float:
        """The highest window probability over entity-masked words (``features.joined_words``)."""
        fh = feature_hashes(joined)
        ng = fh.grams
        n = nw = fh.words
        weights = self.table.lookup(fh.hashes)
        if n <= WINDOW_WORDS:
            count = len(weights)
            if not count:
                return _sigmoid(self.bias)
            return _sigmoid(self.bias + float(weights.sum()) / math.sqrt(count))
        # Long text: every window's sum is three differences of one prefix sum (n-grams, then
        # words, then pairs, in the order of ``fh.hashes``). A text has few windows (one per 48
        # words), so they are counted off in Python from one gather of the values they need.
        prefix = np.empty(len(weights) + 1)
        prefix[0] = 0.0
        np.add.accumulate(weights, out=prefix[1:])
        ends, bounds = _windows(n)
        # fh.spaces[k] is the space before word k: a window's n-grams run from the space before
        # its first word to the one ending with the space after its last word.
        spaces = fh.spaces.take(ends).tolist()
        at: list[int] = []
        sizes: list[int] = []
        for (s, e, words_and_pairs), g_first, g_end in zip(bounds, spaces[::2], spaces[1::2], strict=True):
            g_end -= CHAR_N - 2
            at += (g_end, g_first, ng + e, ng + s, ng + nw + e - 1, ng + nw + s)
            sizes.append(words_and_pairs + g_end - g_first)
        v = prefix.take(at).tolist()
        best = max(
            ((v[j] - v[j + 1]) + (v[j + 2] - v[j + 3]) + (v[j + 4] - v[j + 5])) / math.sqrt(size)
            for j, size in zip(range(0, len(v), 6), sizes, strict=True)
        )
        return _sigmoid(self.bias + best)


def load_classifier(path: str | Path = DEFAULT_ARTEFACT) -> LinearClassifier:
    """Read a classifier artefact; a missing or malformed file is a configuration error."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_ARTEFACT_BYTES:
            raise ConfigError(f"injection classifier {p} is larger than {MAX_ARTEFACT_BYTES} bytes")
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read injection classifier {p}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"injection classifier {p} is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("format") != ARTEFACT_FORMAT:
        raise ConfigError(f"injection classifier {p} is not in format {ARTEFACT_FORMAT}")
    weights = data.get("weights")
    bias = data.get("bias")
    if not isinstance(weights, dict) or not isinstance(bias, int | float):
        raise ConfigError(f"injection classifier {p} lacks weights or bias")
    clean = {str(k): float(v) for k, v in weights.items()}
    raw_meta = data.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    return LinearClassifier(bias=float(bias), weights=clean, meta=meta)
