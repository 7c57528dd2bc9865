"""The small linear classifier: a logistic model over sparse text features, in pure Python.

The weights live in a JSON artefact written by ``training/injection/train.py``.
Inference is a dictionary lookup per feature and one sigmoid per window; it
needs nothing beyond the standard library.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.errors import ConfigError
from bastion.protect.injection.features import features_of_words, windows, words_of

#: The artefact format this code reads.
ARTEFACT_FORMAT = "bastion-injection-linear/1"
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
        """Probability that one window of words is an injection."""
        feats = features_of_words(words)
        if not feats:
            return _sigmoid(self.bias)
        # map/filter keep the per-feature loop in C: this is the hot path of the classifier.
        total = sum(filter(None, map(self.weights.get, feats)))
        return _sigmoid(self.bias + total / math.sqrt(len(feats)))

    def probability(self, folded: str) -> float:
        """The highest window probability over the folded text."""
        words = words_of(folded)
        return max(self.window_probability(w) for w in windows(words))


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
