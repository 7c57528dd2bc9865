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
from collections.abc import Container

#: Zero-width, bidi-control and other invisible format characters attackers use to split keywords.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
#: Combining marks removed after NFKD: Latin/Greek/Cyrillic accents and Arabic short vowels.
_MARKS = re.compile("[\u0300-\u036f\u064b-\u065f\u0670]")

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


#: Every whitespace character but the space: what ``\s`` and ``str.split()`` cut at besides it.
OTHER_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000"
)
#: The invisible characters one by one: a search for each is far cheaper than a regex step per character.
_INVISIBLE_CHARS = "\u00ad\u180e" + "".join(
    map(chr, [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x206A), 0xFEFF])
)
#: First bytes of the UTF-8 form of every mark ``_MARKS`` removes (U+0300-037F, U+0640-067F).
_MARK_LEAD_BYTES = (b"\xcc", b"\xcd", b"\xd9")


#: The ASCII ones among them: the only ones ASCII text can hold.
_ASCII_OTHER_SPACES = "".join(c for c in OTHER_SPACES if c.isascii())


def collapse_spaces(text: str) -> str:
    """Every run of whitespace as one space (what ``re.sub(r"\\s+", " ", text)`` gives, several times faster).

    Each kind of whitespace that occurs is made a space (a search each; most find nothing),
    then runs of spaces are halved until none is left.
    """
    for c in _ASCII_OTHER_SPACES if text.isascii() else OTHER_SPACES:
        if c in text:
            text = text.replace(c, " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def fold(text: str) -> str:
    """The canonical form every rule is written against."""
    text = text[:MAX_FOLD_CHARS]
    if text.isascii():
        # ASCII is already in NFKC and NFD and holds no invisible characters or marks.
        return collapse_spaces(text.lower())
    text = unicodedata.normalize("NFKC", text)
    if any(map(text.__contains__, _INVISIBLE_CHARS)):
        text = strip_marks(_INVISIBLE.sub("", text))
    else:
        # The text is in NFKC, so NFC(NFKD(text)) is the text itself: stripping marks
        # changes it only when its decomposition holds one.
        decomposed = unicodedata.normalize("NFKD", text)
        if any(map(decomposed.encode("utf-8", "surrogatepass").__contains__, _MARK_LEAD_BYTES)):
            text = unicodedata.normalize("NFC", _MARKS.sub("", decomposed))
    return collapse_spaces(text.lower())


def _translated(text: str, table: dict[int, str]) -> str:
    """``text.translate(table)`` for a table of single characters, none of which is a key.

    One ``str.replace`` per character of the table that occurs: on text that is not ASCII,
    ``str.translate`` looks every character up in the table (raising and catching a
    KeyError for most), some hundred times slower than a search. ASCII text has a fast path
    in ``str.translate`` and takes it.
    """
    if text.isascii():
        return text.translate(table)
    for key, value in table.items():
        c = chr(key)
        if c in text:
            text = text.replace(c, value)
    return text


def _join_spaced(match: re.Match[str]) -> str:
    return _SPACED_SEP.sub("", match.group(0))


#: One pass that says whether any evasion variant could apply (most texts: none).
_ANY_EVASION = re.compile(f"{_LEET_WORD.pattern}|{_SPACED_LETTERS.pattern}")
#: The regexes that decide whether each variant is made, by name: a prefilter that can
#: rule some out (``variants(possible=...)``) is built from these.
VARIANT_CUES: dict[str, re.Pattern[str]] = {
    "homoglyphs": _MIXED_SCRIPT,
    "leetspeak": _LEET_WORD,
    "spaced letters": _SPACED_LETTERS,
}


def variants(folded: str, possible: Container[str] | None = None) -> list[tuple[str, str]]:
    """Alternative readings of folded text worth scanning, each with the evasion it undoes.

    ``possible``: the names of ``VARIANT_CUES`` whose regex can match ``folded`` (from a
    prefilter); the others are not searched. None: search them all.
    """
    out: list[tuple[str, str]] = []
    if possible is not None and not possible:
        return out
    if (
        not folded.isascii()
        and (possible is None or "homoglyphs" in possible)
        and _MIXED_SCRIPT.search(folded)
    ):
        out.append(("homoglyphs", _translated(folded, _CONFUSABLES)))
    if possible is None and _ANY_EVASION.search(folded) is None:
        return out
    if (possible is None or "leetspeak" in possible) and _LEET_WORD.search(folded):
        out.append(("leetspeak", _translated(folded, _LEET)))
    if (possible is None or "spaced letters" in possible) and _SPACED_LETTERS.search(folded):
        out.append(("spaced letters", _SPACED_LETTERS.sub(_join_spaced, folded)))
    return out
