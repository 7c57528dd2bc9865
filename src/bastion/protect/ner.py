"""The NER model plug-in: spaCy's small English pipeline when it is installed.

Loading is explicit (``load_ner``) and happens once, when the scanner is built;
importing this module loads nothing. Only the model's tokeniser, token vectors and entity
recogniser run; the tagger, parser and lemmatiser are left out because names
need none of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from bastion.errors import ConfigError

log = logging.getLogger("bastion.protect")

#: Pipeline components names do not need (the recogniser has its own listener on the
#: shared token vectors); leaving them out roughly halves the model's time.
_EXCLUDE = ("parser", "lemmatizer", "attribute_ruler", "senter", "tagger")
#: Texts sent to the model in one batch.
NER_BATCH = 64


class NERModel(Protocol):
    """Anything that finds entities: ``entities(texts)`` -> per text, ``(start, end, label)``."""

    name: str

    def entities(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """Entities found in each text, as offsets into that text and a spaCy-style label."""


class SpacyNER:
    """A spaCy pipeline used for its PERSON / ORG / GPE entities."""

    def __init__(self, nlp: Any, name: str) -> None:
        self._nlp = nlp
        self.name = name
        # spaCy pipelines are not documented as safe for concurrent calls; a lock keeps them serial.
        self._lock = threading.Lock()

    def entities(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """Entities found in each text."""
        with self._lock:
            if len(texts) == 1:
                docs = [self._nlp(texts[0])]
            else:
                docs = list(self._nlp.pipe(texts, batch_size=NER_BATCH))
        return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


def load_ner(mode: str, models: Sequence[str]) -> SpacyNER | None:
    """The first spaCy model of ``models`` that loads, or None (``mode=required`` raises instead)."""
    if mode == "off":
        return None
    try:
        import spacy
    except ImportError:
        if mode == "required":
            raise ConfigError("protection.ner.mode is required, but spaCy is not installed") from None
        return None
    for name in models:
        try:
            nlp = spacy.load(name, exclude=list(_EXCLUDE))
        except (OSError, ImportError) as exc:
            log.debug("NER model %s not available: %s", name, exc)
            continue
        return SpacyNER(nlp, name)
    if mode == "required":
        raise ConfigError(f"protection.ner.mode is required, but none of {list(models)} loads")
    return None
