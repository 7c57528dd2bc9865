"""Text folding for injection rules: one canonical form so evasions meet the same patterns.

The folded form is lower-case, NFKC-normalised, stripped of invisible format
characters and of Latin/Cyrillic/Arabic diacritics, with runs of whitespace
collapsed. Variants (look-alike letters, leetspeak, letter-spaced words) are
produced only when the text shows signs of them, so ordinary text pays for one
pass.
"""

from __future__ import annotations

import re
import unicodedata

#: Zero-width, bidi-control and other invisible format characters attackers use to split keywords.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
#: Combining marks removed after NFKD: Latin/Greek/Cyrillic accents and Arabic short vowels.
_MARKS = re.compile("[\u0300-\u036f\u064b-\u065f\u0670]")
_SPACES = re.compile(r"\s+")

#: Cyrillic and Greek letters that look like Latin ones, used only inside mixed-script words.
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "ο": "o",
        "α": "a",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
    }
)
_MIXED_SCRIPT = re.compile(r"[a-z][а-яіјѕԁɡοαειкνρτυχ]|[а-яіјѕԁɡοαειкνρτυχ][a-z]")

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
)
#: A word mixing letters with two or more leetspeak digits or symbols, e.g. "1gn0r3" (not "3rd", "mp3").
_LEET_WORD = re.compile(r"[a-z][013457@$][a-z]*[013457@$]|[013457@$][a-z]+[013457@$]")

#: Words written with a separator between every letter: "i g n o r e", "i.g.n.o.r.e".
_SPACED_LETTERS = re.compile(r"(?<!\w)(?:\w[ .\-_*]){3,}\w(?!\w)")
_SPACED_SEP = re.compile(r"[ .\-_*]")

#: Longest text folded; longer input is folded in windows by the caller.
MAX_FOLD_CHARS = 1_000_000


def strip_marks(text: str) -> str:
    """Remove accents and Arabic vowel marks while keeping other scripts composed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", _MARKS.sub("", decomposed))


def fold(text: str) -> str:
    """The canonical form every rule is written against."""
    text = unicodedata.normalize("NFKC", text[:MAX_FOLD_CHARS])
    text = _INVISIBLE.sub("", text)
    text = strip_marks(text).lower()
    return _SPACES.sub(" ", text)


def _join_spaced(match: re.Match[str]) -> str:
    return _SPACED_SEP.sub("", match.group(0))


#: One pass that says whether any evasion variant could apply (most texts: none).
_ANY_EVASION = re.compile(f"{_LEET_WORD.pattern}|{_SPACED_LETTERS.pattern}")


def variants(folded: str) -> list[tuple[str, str]]:
    """Alternative readings of folded text worth scanning, each with the evasion it undoes."""
    out: list[tuple[str, str]] = []
    if not folded.isascii() and _MIXED_SCRIPT.search(folded):
        out.append(("homoglyphs", folded.translate(_CONFUSABLES)))
    if _ANY_EVASION.search(folded) is None:
        return out
    if _LEET_WORD.search(folded):
        out.append(("leetspeak", folded.translate(_LEET)))
    if _SPACED_LETTERS.search(folded):
        out.append(("spaced letters", _SPACED_LETTERS.sub(_join_spaced, folded)))
    return out
