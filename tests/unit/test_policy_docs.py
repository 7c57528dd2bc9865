"""docs/policy.md stays true: it shows the shipped defaults verbatim and names every setting."""

from __future__ import annotations

from pathlib import Path

from bastion.policy.config import PolicySettings
from bastion.policy.encode import CONTEXT_KEYS
from bastion.policy.source import FLAG_SELECTORS, PROTECTION_STRICTNESS, VALUE_SELECTORS, default_sources

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "policy.md").read_text()


def test_defaults_shown_verbatim() -> None:
    for src in default_sources():
        assert src.text.rstrip() in DOC, f"{src.name} differs from docs/policy.md"


def test_settings_and_annotations_documented() -> None:
    for name in PolicySettings.model_fields:
        assert f"{name}:" in DOC, name
    for word in [*PROTECTION_STRICTNESS, *FLAG_SELECTORS, *(f"{v}:" for v in VALUE_SELECTORS)]:
        assert word in DOC, word
    for key in CONTEXT_KEYS - {"request_bytes", "provider"}:
        assert f"`{key}`" in DOC or key in DOC, key
