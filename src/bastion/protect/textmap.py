"""Normalise text against evasions while keeping a map back to the original offsets.

What is undone: compatibility forms (NFKC: fullwidth digits and letters,
ligatures, superscripts), zero-width and bidi control characters, and Cyrillic
or Greek look-alike letters inside words that also hold Latin letters, digits
or ``@``. Every character of the normalised text knows the original index it
came from, so findings are reported against the text the caller sent.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Invisible characters used to split values so that patterns miss them.
_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\u3164\ufeff\uffa0"
)

#: Letters of other scripts that look like Latin ones (folded only inside mixed words).
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ӏ": "l", "һ": "h", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ο": "o", "α": "a", "ε": "e",
    "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Ԛ": "Q", "Ԝ": "W",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
_WORD = re.compile(r"\S+")
_ANCHOR = re.compile(r"[A-Za-z0-9@]")
#: Dashes and dots of other scripts that hide separators inside numbers.
_PUNCT_FOLD = {
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00b7": ".", "\u2024": ".", "\u3002": ".", "\uff0e": ".", "\u00a0": " ", "\u2007": " ",
    "\u2009": " ", "\u202f": " ",
}


@dataclass(frozen=True, slots=True)
class MappedText:
    """Normalised text and, for each of its characters, the original index it came from."""

    text: str
    #: ``origin[i]`` is the original index where ``text[i]`` starts; None when nothing changed.
    origin: tuple[int, ...] | None
    #: ``origin_end[i]`` is the original index just past the character(s) ``text[i]`` came from.
    origin_end: tuple[int, ...] | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised span ``[start, end)`` back to the original text."""
        if self.origin is None or self.origin_end is None:
            return start, end
        if end <= start:
            return self.origin[start], self.origin[start]
        return self.origin[start], self.origin_end[end - 1]


def _fold_homoglyphs(chars: list[str]) -> None:
    text = "".join(chars)
    if text.isascii():
        return
    for word in _WORD.finditer(text):
        w = word.group(0)
        if w.isascii() or not any(c in _HOMOGLYPHS for c in w):
            continue
        # Only words that already hold Latin letters, digits or '@' are folded:
        # a word written wholly in Cyrillic or Greek is real text, not a disguise.
        plain = "".join(c for c in w if c not in _HOMOGLYPHS)
        if not _ANCHOR.search(plain):
            continue
        for i in range(word.start(), word.end()):
            rep = _HOMOGLYPHS.get(chars[i])
            if rep is not None:
                chars[i] = rep


def normalize(text: str) -> MappedText:
    """Undo Unicode evasions; ASCII text is returned as is, without a map."""
    if text.isascii():
        return MappedText(text, None)
    out: list[str] = []
    origin: list[int] = []
    origin_end: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        j = i + 1
        if ch in _INVISIBLE:
            i = j
            continue
        # A base character and the combining marks after it are normalised together.
        while j < n and unicodedata.combining(text[j]):
            j += 1
        cluster = text[i:j]
        if cluster.isascii():
            folded = cluster
        elif cluster in _PUNCT_FOLD:
            folded = _PUNCT_FOLD[cluster]
        else:
            folded = unicodedata.normalize("NFKC", cluster)
            folded = "".join(_PUNCT_FOLD.get(c, c) for c in folded if c not in _INVISIBLE)
        # Expansions (a ligature to two letters) all point at the one original cluster.
        for c in folded:
            out.append(c)
            origin.append(i)
            origin_end.append(j)
        i = j
    origin.append(n)
    _fold_homoglyphs(out)
    return MappedText("".join(out), tuple(origin), tuple(origin_end))
