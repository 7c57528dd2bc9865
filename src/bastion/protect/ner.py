"""The NER model plug-in: spaCy's small English pipeline when it is installed.

Loading is explicit (``load_ner``) and happens once, when the scanner is built;
importing this module loads nothing. Only the model's tokeniser, token vectors and entity
recogniser run; the tagger, parser and lemmatiser are left out because names
need none of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from bastion.errors import ConfigError

log = logging.getLogger("bastion.protect")

#: Pipeline components names do not need (the recogniser has its own listener on the
#: shared token vectors); leaving them out roughly halves the model's time.
_EXCLUDE = ("parser", "lemmatizer", "attribute_ruler", "senter", "tagger")
#: Texts sent to the model in one batch.
NER_BATCH = 64
#: Segments whose entities are remembered (by keyed digest, never by text).
NER_CACHE_ENTRIES = 4096


class NERModel(Protocol):
    """Anything that finds entities: ``entities(texts)`` -> per text, ``(start, end, label)``."""

    name: str

    def entities(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """Entities found in each text, as offsets into that text and a spaCy-style label."""


class SpacyNER:
    """A spaCy pipeline used for its PERSON / ORG / GPE entities."""

    def __init__(self, nlp: Any, name: str, cache_size: int = NER_CACHE_ENTRIES) -> None:
        self._nlp = nlp
        self.name = name
        # spaCy pipelines are not documented as safe for concurrent calls; a lock keeps them serial.
        self._lock = threading.Lock()
        # Boilerplate (templates, signatures, disclaimers) repeats across requests; results are
        # kept by a keyed digest of the segment, so no text is held in memory.
        self._cache: OrderedDict[bytes, list[tuple[int, int, str]]] = OrderedDict()
        self._cache_size = cache_size
        self._key = os.urandom(16)

    def _digest(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=self._key, digest_size=16).digest()

    def entities(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """Entities found in each text."""
        keys = [self._digest(t) for t in texts]
        out: list[list[tuple[int, int, str]] | None] = []
        with self._lock:
            for k in keys:
                hit = self._cache.get(k)
                if hit is not None:
                    self._cache.move_to_end(k)
                out.append(hit)
            todo = [i for i, r in enumerate(out) if r is None]
            if todo:
                docs = ([self._nlp(texts[todo[0]])] if len(todo) == 1
                        else list(self._nlp.pipe([texts[i] for i in todo], batch_size=NER_BATCH)))
                for i, doc in zip(todo, docs, strict=True):
                    ents = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
                    out[i] = ents
                    self._cache[keys[i]] = ents
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return [list(r or []) for r in out]


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
