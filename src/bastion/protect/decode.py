"""Find base64, hex and URL-encoded runs whose decoded form is readable text worth scanning."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

#: Shortest encoded run considered; shorter runs cannot hide a useful value.
MIN_ENCODED_CHARS = 16
#: Longest encoded run decoded, in characters.
MAX_ENCODED_CHARS = 64 * 1024
#: Share of printable characters a decoded run needs to count as text.
MIN_PRINTABLE_SHARE = 0.9

#: Runs start only where the previous character is outside the alphabet, so a short word is
#: rejected once, not once per letter.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}", re.ASCII)
_HEX = re.compile(r"\b(?:0x)?[0-9A-Fa-f]{16,}\b", re.ASCII)
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_URLENC = re.compile(r"(?<![^\s%])[^\s%]{0,256}(?:%[0-9A-Fa-f]{2}[^\s%]{0,256})+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded run: where it sits in the scanned text, what it decodes to, and how."""

    start: int
    end: int
    text: str
    encoding: str
    #: For URL-encoding, the source index of every decoded character (so spans map precisely).
    origin: tuple[int, ...] | None = None


def _readable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return text if printable / len(text) >= MIN_PRINTABLE_SHARE and any(c.isalnum() for c in text) else None


def _b64(run: str) -> str | None:
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in body or "_" in body:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _readable(raw)


def _url_decode_mapped(run: str, base: int) -> tuple[str, tuple[int, ...]]:
    out: list[str] = []
    origin: list[int] = []
    i = 0
    while i < len(run):
        if _PCT.match(run, i) is None:
            out.append(run[i])
            origin.append(base + i)
            i += 1
            continue
        # A run of escapes is decoded together so multi-byte UTF-8 characters come out whole.
        j = i
        raw = bytearray()
        while _PCT.match(run, j) is not None:
            raw.append(int(run[j + 1 : j + 3], 16))
            j += 3
        for k, c in enumerate(raw.decode("utf-8", errors="replace")):
            out.append(c)
            origin.append(base + min(i + 3 * k, j - 1))
        i = j
    origin.append(base + len(run))
    return "".join(out), tuple(origin)


_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9",
}
_DIGIT_WORD = "(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
#: Seven or more digits written as words: "five three six - two two - one two three four".
SPELLED_DIGITS = re.compile(rf"\b{_DIGIT_WORD}(?:[ ,.-]{{1,3}}{_DIGIT_WORD}){{6,}}\b", re.IGNORECASE)
_DIGIT_SPLIT = re.compile(r"[a-z]+|[.,-]", re.IGNORECASE)


def _spelled_digits(run: str) -> str:
    # Words become digits; dashes and dots stay as separators, commas mark groups, spaces go.
    return "".join(_DIGIT_WORDS.get(tok.lower(), " " if tok == "," else tok) for tok in _DIGIT_SPLIT.findall(run))


#: ASCII bytes: word characters in lower case, everything else a space (to split words out).
_WORDS_LOWER = bytes(
    (b | 0x20 if 65 <= b <= 90 else b) if chr(b).isascii() and (chr(b).isalnum() or b == 95) else 32
    for b in range(256)
)
_DIGIT_WORD_SET = frozenset(w.encode() for w in _DIGIT_WORDS)


def _may_spell_digits(text: str) -> bool:
    """False only when ``text`` cannot hold seven digits written as words in a row (cheap, no regex)."""
    if not text.isascii():
        return True
    words = text.encode("ascii").translate(_WORDS_LOWER).split()
    # Seven words in a row hold one whose index is a multiple of seven: only around those
    # that are digit words can such a row stand.
    every_seventh = words[::7]
    if _DIGIT_WORD_SET.isdisjoint(every_seventh):
        return False
    n = len(words)
    for k, w in enumerate(every_seventh):
        if w not in _DIGIT_WORD_SET:
            continue
        j = 7 * k
        lo = j
        while lo > 0 and j - lo < 6 and words[lo - 1] in _DIGIT_WORD_SET:
            lo -= 1
        hi = j + 1
        while hi < n and hi - lo < 7 and words[hi] in _DIGIT_WORD_SET:
            hi += 1
        if hi - lo >= 7:
            return True
    return False


def find_encoded(text: str, spelled_digits: bool | None = None) -> Iterator[Decoded]:
    """Every encoded run in ``text`` that decodes to readable text (or digits spelled as words).

    ``spelled_digits``: whether ``SPELLED_DIGITS`` matches somewhere in ``text``, when a pass
    over it already told (None: find out here). It is only taken for ASCII text, where the
    hyperscan pass that tells means exactly what this regex means.
    """
    if spelled_digits if spelled_digits is not None and text.isascii() else _may_spell_digits(text):
        for m in SPELLED_DIGITS.finditer(text):
            yield Decoded(m.start(), m.end(), _spelled_digits(m.group(0)), "spelled-digits")
    # Base64 and hex runs lie in stretches of 16 or more of their characters: only those are searched.
    spans = _encoded_stretches(text)
    if spans:
        yield from _base64_and_hex(text, spans)
    if "%" in text:
        for m in _URLENC.finditer(text):
            run = m.group(0)
            if len(run) > MAX_ENCODED_CHARS:
                continue
            decoded_text, origin = _url_decode_mapped(run, m.start())
            if decoded_text != run:
                yield Decoded(m.start(), m.end(), decoded_text, "url", origin)


#: Bytes of base64 (either alphabet, with padding) and hex (with ``0x``) become "A"; all others a space.
_ENCODED_MARKS = bytes(
    65 if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "+/_=-") else 32 for b in range(256)
)
_LONG_ENOUGH = b"A" * MIN_ENCODED_CHARS


def _encoded_stretches(text: str) -> list[tuple[int, int]]:
    """Spans of the stretches of at least ``MIN_ENCODED_CHARS`` base64 or hex characters."""
    # One byte per character ('?' for those outside Latin-1), so byte offsets are string offsets;
    # characters of either alphabet become 'A', all others a space.
    marks = text.encode("latin-1", "replace").translate(_ENCODED_MARKS)
    spans: list[tuple[int, int]] = []
    # The first place ``MIN_ENCODED_CHARS`` marks stand in a row after a space is a stretch's start.
    pos = marks.find(_LONG_ENOUGH)
    while pos >= 0:
        end = marks.find(b" ", pos)
        if end < 0:
            end = len(marks)
        spans.append((pos, end))
        pos = marks.find(_LONG_ENOUGH, end)
    return spans


def _base64_and_hex(text: str, spans: list[tuple[int, int]]) -> Iterator[Decoded]:
    # No match holds a character outside the stretches, and the characters beside a stretch
    # are neither in either alphabet nor word characters, so searching each stretch alone
    # finds exactly what a search of the whole text finds.
    for m in (m for a, b in spans for m in _BASE64.finditer(text, a, b)):
        run = m.group(0)
        if len(run) > MAX_ENCODED_CHARS or run.isdigit() or run.isalpha() and (run.islower() or run.isupper()):
            continue
        decoded = _b64(run)
        if decoded is not None:
            yield Decoded(m.start(), m.end(), decoded, "base64")
    for m in (m for a, b in spans for m in _HEX.finditer(text, a, b)):
        run = m.group(0)
        body = run[2:] if run.startswith("0x") else run
        if len(body) % 2 or len(body) > MAX_ENCODED_CHARS or body.isdigit():
            continue
        decoded = _readable(bytes.fromhex(body))
        if decoded is not None:
            yield Decoded(m.start(), m.end(), decoded, "hex")
