"""The hook for a stronger injection model, and an adapter for ONNX Prompt Guard-style classifiers.

Any object with a ``name`` and ``probability(text) -> float`` is an
``InjectionModel``. The ONNX adapter needs ``onnxruntime`` and ``tokenizers``;
they are optional, imported only when an operator configures a model.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bastion.errors import ConfigError
from bastion.protect.injection.config import InjectionModelSettings


@runtime_checkable
class InjectionModel(Protocol):
    """A classifier that gives the probability that a text is an attack."""

    name: str

    def probability(self, text: str) -> float:
        """Probability in [0, 1] that ``text`` is a prompt injection or jailbreak."""
        ...


def _softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


class OnnxPromptGuard:
    """A sequence classifier in ONNX form: token ids in, one row of class logits out."""

    name = "onnx"

    def __init__(self, session: Any, tokenizer: Any, *, attack_labels: Sequence[int], max_tokens: int = 512) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._attack = tuple(attack_labels)
        self._max_tokens = max_tokens
        self._inputs = {i.name for i in session.get_inputs()}

    def _window_ids(self, text: str) -> list[list[int]]:
        ids: list[int] = list(self._tokenizer.encode(text).ids)
        if len(ids) <= self._max_tokens:
            return [ids]
        # Overlapping windows so a payload on a border is seen whole by one of them.
        step = max(1, self._max_tokens * 3 // 4)
        return [ids[i : i + self._max_tokens] for i in range(0, len(ids) - self._max_tokens + step, step)]

    def probability(self, text: str) -> float:
        """The highest attack probability over the text's token windows."""
        np = importlib.import_module("numpy")
        best = 0.0
        for ids in self._window_ids(text):
            feed: dict[str, Any] = {"input_ids": np.array([ids], dtype=np.int64)}
            if "attention_mask" in self._inputs:
                feed["attention_mask"] = np.ones((1, len(ids)), dtype=np.int64)
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros((1, len(ids)), dtype=np.int64)
            logits = [float(x) for x in self._session.run(None, feed)[0][0]]
            probs = _softmax(logits)
            if max(self._attack) >= len(probs):
                raise ConfigError(f"the injection model has {len(probs)} labels; attack_labels names a missing one")
            best = max(best, sum(probs[i] for i in self._attack))
        return best


def load_onnx_model(settings: InjectionModelSettings) -> OnnxPromptGuard:
    """Load the configured ONNX model; missing packages or files are configuration errors."""
    try:
        ort = importlib.import_module("onnxruntime")
        tokenizers = importlib.import_module("tokenizers")
    except ImportError:
        raise ConfigError(
            "protect.injection.model needs the onnxruntime and tokenizers packages; install them or remove the setting"
        ) from None
    model_path = Path(settings.path)
    tok_path = Path(settings.tokenizer_path) if settings.tokenizer_path else model_path.with_name("tokenizer.json")
    for p in (model_path, tok_path):
        if not p.is_file():
            raise ConfigError(f"injection model file {p} does not exist")
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    tokenizer = tokenizers.Tokenizer.from_file(str(tok_path))
    return OnnxPromptGuard(session, tokenizer, attack_labels=settings.attack_labels, max_tokens=settings.max_tokens)
