"""The small linear classifier: a logistic model over sparse text features, in pure Python.

The weights live in a JSON artefact written by ``training/injection/train.py``.
Inference is a dictionary lookup per feature and one sigmoid per window; it
needs nothing beyond the standard library. Identifiers, addresses and numbers
are masked to class tokens first (``entities.py``), as they were at training.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any

from bastion.errors import ConfigError
from bastion.protect.injection.entities import entity_words
from bastion.protect.injection.features import (
    CHAR_N,
    WINDOW_WORDS,
    char_grams,
    features_of_words,
    joined_words,
    pair_features,
    window_bounds,
    word_features,
)

#: The artefact format this code reads (2: features of entity-masked text; weights of
#: format 1 were learnt on unmasked text and would be misread).
ARTEFACT_FORMAT = "bastion-injection-linear/2"
#: The artefact shipped with the package.
DEFAULT_ARTEFACT = Path(__file__).with_name("classifier.json")
#: Largest artefact accepted, in bytes (a corrupt or hostile file must not exhaust memory).
MAX_ARTEFACT_BYTES = 64 * 1024 * 1024


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class LinearClassifier:
    """Weights of a logistic model over L2-normalised binary features."""

    bias: float
    weights: dict[str, float]
    meta: dict[str, Any]

    def window_probability(self, words: list[str]) -> float:
        """Probability that one window of words (already entity-masked) is an injection."""
        feats = features_of_words(words)
        if not feats:
            return _sigmoid(self.bias)
        # map/filter keep the per-feature loop in C: this is the hot path of the classifier.
        total = sum(filter(None, map(self.weights.get, feats)))
        return _sigmoid(self.bias + total / math.sqrt(len(feats)))

    def probability(self, folded: str, words: list[str] | None = None) -> float:
        """The highest window probability over the folded text (``words``: its plain words, if known)."""
        words = entity_words(folded, words)
        if len(words) <= WINDOW_WORDS:
            return self.window_probability(words)
        # Long text: weigh every feature once, then each window is three prefix-sum differences.
        get = self.weights.get
        zero = repeat(0.0)
        joined = joined_words(words)
        grams = list(accumulate(map(get, char_grams(joined), zero), initial=0.0))
        singles = list(accumulate(map(get, word_features(words), zero), initial=0.0))
        pairs = list(accumulate(map(get, pair_features(words), zero), initial=0.0))
        # starts[i]: index in ``joined`` where word i begins (after the leading space).
        starts = list(accumulate((len(w) + 1 for w in words), initial=1))
        best = 0.0
        for s, e in window_bounds(len(words)):
            g_first = starts[s] - 1
            g_last = starts[e - 1] + len(words[e - 1]) - CHAR_N + 1
            n = (e - s) + (e - s - 1) + (g_last - g_first + 1)
            total = (singles[e] - singles[s]) + (pairs[e - 1] - pairs[s]) + (grams[g_last + 1] - grams[g_first])
            best = max(best, _sigmoid(self.bias + total / math.sqrt(n)))
        return best


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
