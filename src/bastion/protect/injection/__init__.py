"""Prompt-injection and jailbreak detection.

``load_default_detector()`` gives a ready detector (built-in rules plus the
shipped classifier); ``detector.score(text, source=...)`` gives an
``InjectionResult``. An operator can add a stronger model through
``InjectionSettings.model`` or any object implementing ``InjectionModel``.
"""

from __future__ import annotations

from bastion.protect.injection.classifier import DEFAULT_ARTEFACT, LinearClassifier, load_classifier
from bastion.protect.injection.config import InjectionModelSettings, InjectionSettings
from bastion.protect.injection.detector import InjectionDetector, InjectionResult, Source
from bastion.protect.injection.model import InjectionModel, OnnxPromptGuard, load_onnx_model
from bastion.protect.injection.rules import RuleSet, default_rules

__all__ = [
    "InjectionDetector",
    "InjectionModel",
    "InjectionModelSettings",
    "InjectionResult",
    "InjectionSettings",
    "LinearClassifier",
    "OnnxPromptGuard",
    "RuleSet",
    "Source",
    "build_detector",
    "load_default_detector",
]


def build_detector(
    settings: InjectionSettings | None = None, *, model: InjectionModel | None = None
) -> InjectionDetector:
    """A detector built from settings: rules, the classifier artefact and the optional ONNX model."""
    settings = settings or InjectionSettings()
    classifier = load_classifier(settings.classifier_path or DEFAULT_ARTEFACT)
    if model is None and settings.model is not None:
        model = load_onnx_model(settings.model)
    return InjectionDetector(default_rules(), classifier, settings, model)


_default: InjectionDetector | None = None


def load_default_detector() -> InjectionDetector:
    """The detector with default settings, built on first use and then shared."""
    global _default
    if _default is None:
        _default = build_detector()
    return _default
