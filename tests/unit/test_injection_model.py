"""The stronger-model hook: any InjectionModel plugs in; the ONNX adapter runs on fake session and tokenizer."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bastion.errors import ConfigError
from bastion.protect.injection import (
    InjectionDetector,
    InjectionModel,
    InjectionModelSettings,
    InjectionSettings,
    OnnxPromptGuard,
    build_detector,
    load_default_detector,
)
from bastion.protect.injection.classifier import ARTEFACT_FORMAT, load_classifier
from bastion.protect.injection.model import load_onnx_model
from bastion.protect.injection.rules import RuleSet


class KeywordModel:
    """A stand-in for a real model: confident when it sees one word."""

    name = "keyword"

    def __init__(self, word: str) -> None:
        self.word = word
        self.calls = 0

    def probability(self, text: str) -> float:
        self.calls += 1
        return 0.97 if self.word in text.lower() else 0.01


def test_any_object_with_probability_is_a_model() -> None:
    assert isinstance(KeywordModel("x"), InjectionModel)


def test_model_raises_the_score_and_is_named_in_reasons() -> None:
    model = KeywordModel("flamingo")
    det = InjectionDetector(RuleSet([]), None, InjectionSettings(), model=model)
    res = det.score("The flamingo protocol is now active.")
    assert res.flagged and res.kind == "model"
    assert any("keyword" in r for r in res.reasons)
    assert not det.score("Book a meeting room.").flagged
    assert model.calls == 2


def test_build_detector_accepts_a_model() -> None:
    det = build_detector(model=KeywordModel("zebra"))
    assert det.score("zebra crossing").flagged


@dataclass
class _Encoding:
    ids: list[int]


class FakeTokenizer:
    """Token ids are word lengths: enough to drive the adapter."""

    def encode(self, text: str) -> _Encoding:
        return _Encoding([len(w) for w in text.split()])


@dataclass
class _Input:
    name: str


class FakeSession:
    """Three-label logits (benign, injection, jailbreak): attack when any token id is 13."""

    def __init__(self) -> None:
        self.feeds: list[dict[str, Any]] = []

    def get_inputs(self) -> list[_Input]:
        return [_Input("input_ids"), _Input("attention_mask")]

    def run(self, _outputs: Any, feed: dict[str, Any]) -> list[list[list[float]]]:
        self.feeds.append(feed)
        ids = [int(x) for x in feed["input_ids"][0]]
        return [[[0.0, 6.0, 0.0]]] if 13 in ids else [[[6.0, 0.0, 0.0]]]


needs_numpy = pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="numpy not installed")


@needs_numpy
def test_onnx_adapter_sums_attack_labels_and_windows_long_text() -> None:
    session = FakeSession()
    guard = OnnxPromptGuard(session, FakeTokenizer(), attack_labels=[1, 2], max_tokens=16)
    assert guard.probability("hello there") < 0.01
    expected = (math.exp(6) + 1) / (math.exp(6) + 2)
    assert guard.probability("an thirteenchars x") == pytest.approx(expected, rel=1e-6)
    # A payload far into a long text still lands in one window.
    long_text = "ab " * 100 + "thirteenchars"
    session.feeds.clear()
    assert guard.probability(long_text) > 0.9
    assert len(session.feeds) > 1
    assert all(len(f["input_ids"][0]) <= 16 for f in session.feeds)
    assert "attention_mask" in session.feeds[0]


@needs_numpy
def test_onnx_adapter_rejects_a_missing_label() -> None:
    guard = OnnxPromptGuard(FakeSession(), FakeTokenizer(), attack_labels=[5])
    with pytest.raises(ConfigError):
        guard.probability("hi")


def test_onnx_loader_reports_missing_packages_or_files(tmp_path: Path) -> None:
    settings = InjectionModelSettings(path=str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError):
        load_onnx_model(settings)
    with pytest.raises(ConfigError):
        build_detector(InjectionSettings(model=settings))


def test_settings_forbid_unknown_keys() -> None:
    with pytest.raises(ValueError):
        InjectionSettings.model_validate({"threshhold": 0.4})
    with pytest.raises(ValueError):
        InjectionSettings(threshold=0)


def test_shipped_classifier_loads_and_is_small() -> None:
    clf = load_default_detector().classifier
    assert clf is not None
    assert 1_000 < len(clf.weights) < 200_000
    assert clf.meta.get("licences")


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"format": "other"}), json.dumps({"format": ARTEFACT_FORMAT, "weights": {}})],
)
def test_bad_classifier_artefacts_are_config_errors(tmp_path: Path, content: str) -> None:
    p = tmp_path / "clf.json"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_classifier(p)
    with pytest.raises(ConfigError):
        load_classifier(tmp_path / "absent.json")


def test_custom_classifier_path(tmp_path: Path) -> None:
    p = tmp_path / "clf.json"
    p.write_text(json.dumps({"format": ARTEFACT_FORMAT, "bias": 3.0, "weights": {}}), encoding="utf-8")
    det = build_detector(InjectionSettings(classifier_path=str(p)))
    # A classifier that says "attack" to everything flags even a greeting: the path was used.
    assert det.score("good morning").flagged
