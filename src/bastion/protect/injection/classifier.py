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

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import ConfigError
from bastion.protect.injection.entities import entity_words
from bastion.protect.injection.features import (
    CHAR_N,
    WINDOW_WORDS,
    U64Array,
    feature_hashes,
    feature_key_hashes,
    features_of_words,
    joined_words,
    window_bounds,
)

#: The artefact format this code reads (2: features of entity-masked text; weights of
#: format 1 were learnt on unmasked text and would be misread).
ARTEFACT_FORMAT = "bastion-injection-linear/2"
#: The artefact shipped with the package.
DEFAULT_ARTEFACT = Path(__file__).with_name("classifier.json")
#: Largest artefact accepted, in bytes (a corrupt or hostile file must not exhaust memory).
MAX_ARTEFACT_BYTES = 64 * 1024 * 1024
#: Slots of the weight table per weight, at least (rounded up to a power of two): with 60,000
#: weights, 2**19 slots of 16 bytes (8 MB), and about one lookup in 200 lands on a marked slot.
SLOTS_PER_WEIGHT = 8

F64Array = npt.NDArray[np.float64]
_SPREAD = np.uint64(0xFF51AFD7ED558CCD)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class HashedWeights:
    """Feature weights addressed by feature hash.

    A hash's home slot is the top bits of the hash times an odd constant. A slot holds the
    first key whose home it is; the few keys that find their home taken are kept in a small
    sorted overflow array, and their home slots are marked so that only lookups landing
    there search it.
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
        bits = max(4, math.ceil(math.log2(max(1, len(hashes)) * SLOTS_PER_WEIGHT)))
        self._shift = np.uint64(64 - bits)
        home = self._home(hashes).astype(np.intp)
        slots, first = np.unique(home, return_index=True)
        size = 1 << bits
        self._keys = np.zeros(size, dtype=np.uint64)
        self._values = np.zeros(size, dtype=np.float64)
        self._keys[slots] = hashes[first]
        self._values[slots] = values[first]
        rest = np.ones(len(hashes), dtype=np.bool_)
        rest[first] = False
        self._overflowed = np.zeros(size, dtype=np.bool_)
        self._overflowed[home[rest]] = True
        # Still sorted by hash: the overflow is searched by bisection.
        self._overflow_keys = hashes[rest]
        self._overflow_values = values[rest]
        self.count = len(hashes)
        #: Identifies these weights (for caches of verdicts).
        self.digest = hashlib.sha256(hashes.tobytes() + values.tobytes()).digest()

    def _home(self, hashes: U64Array) -> U64Array:
        # Multiplying spreads every bit of the hash into the top bits, which pick the slot.
        home = hashes * _SPREAD
        home >>= self._shift
        return home

    def lookup(self, hashes: U64Array) -> F64Array:
        """The weight of each hashed feature (0.0 for features the model does not know)."""
        home = self._home(hashes)
        out: F64Array = self._values.take(home)
        out *= self._keys.take(home) == hashes
        marked = np.flatnonzero(self._overflowed.take(home))
        if len(marked):
            wanted = hashes.take(marked)
            at = np.searchsorted(self._overflow_keys, wanted)
            at[at == len(self._overflow_keys)] = 0
            match = self._overflow_keys.take(at) == wanted
            out[marked[match]] = self._overflow_values.take(at[match])
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

    def probability(self, folded: str, words: list[str] | None = None) -> float:
        """The highest window probability over the folded text (``words``: its plain words, if known)."""
        words = entity_words(folded, words)
        n = len(words)
        fh = feature_hashes(joined_words(words))
        ng, nw = fh.grams, fh.words
        weights = self.table.lookup(fh.hashes)
        if n <= WINDOW_WORDS:
            count = len(weights)
            if not count:
                return _sigmoid(self.bias)
            return _sigmoid(self.bias + float(weights.sum()) / math.sqrt(count))
        # Long text: every window's sum is three differences of one prefix sum (n-grams, then
        # words, then pairs, in the order of ``fh.hashes``). A text has few windows (one per 48
        # words), so they are counted off in Python from one gather of the values they need.
        prefix = np.zeros(len(weights) + 1)
        np.cumsum(weights, out=prefix[1:])
        bounds = list(window_bounds(n))
        # fh.spaces[k] is the space before word k: a window's n-grams run from the space before
        # its first word to the one ending with the space after its last word.
        spaces = fh.spaces.take([k for b in bounds for k in b]).tolist()
        at: list[int] = []
        sizes: list[int] = []
        for i, (s, e) in enumerate(bounds):
            g_first, g_end = spaces[2 * i], spaces[2 * i + 1] - (CHAR_N - 2)
            at += (g_end, g_first, ng + e, ng + s, ng + nw + e - 1, ng + nw + s)
            sizes.append((e - s) * 2 - 1 + g_end - g_first)
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
