"""Settings of the injection detector (the ``protect.injection`` section of ``bastion.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Score at or above which a text is flagged.
DEFAULT_THRESHOLD = 0.5
#: Longest text scanned; longer input is refused (fail closed) rather than half-read.
DEFAULT_MAX_SCAN_CHARS = 1_000_000
#: How many layers of encoding (base64 inside hex ...) are peeled.
DEFAULT_DECODE_DEPTH = 2
#: Verdicts remembered, so a conversation's history resent with every turn is scored once.
DEFAULT_CACHE_ENTRIES = 4096


class InjectionModelSettings(BaseModel):
    """An optional stronger classifier (ONNX, Prompt Guard style) an operator provides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Path to the ``.onnx`` file.
    path: str
    #: Path to the tokenizer (``tokenizer.json``); defaults to the model's directory.
    tokenizer_path: str | None = None
    #: Output labels that mean "attack" (Prompt Guard 1: 1 injection, 2 jailbreak; Prompt Guard 2: 1).
    attack_labels: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    #: Longest token sequence given to the model; longer text is scored in windows.
    max_tokens: int = Field(default=512, ge=16, le=8192)


class InjectionSettings(BaseModel):
    """How prompt injection and jailbreaks are detected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: Score in [0, 1] at or above which a text is flagged.
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0.0, le=1.0)
    #: A classifier artefact to use instead of the one shipped with Bastion.
    classifier_path: str | None = None
    #: Extra weight given to indirect, tool and exfiltration rules in tool results and documents.
    untrusted_boost: float = Field(default=0.1, ge=0.0, le=0.5)
    max_scan_chars: int = Field(default=DEFAULT_MAX_SCAN_CHARS, gt=0)
    decode_depth: int = Field(default=DEFAULT_DECODE_DEPTH, ge=0, le=4)
    model: InjectionModelSettings | None = None
    #: ``auto``: hyperscan picks which rules can match, once its database has compiled (in the
    #: background; pure Python until then); ``hyperscan``: compile at start-up and fail without
    #: it; ``python``: never. The verdicts are the same with either.
    engine: Literal["auto", "hyperscan", "python"] = "auto"
    #: Verdicts kept in memory, keyed by a digest of the text, its source and this configuration
    #: (least recently used dropped first); 0 turns the cache off.
    cache_entries: int = Field(default=DEFAULT_CACHE_ENTRIES, ge=0, le=1_000_000)
