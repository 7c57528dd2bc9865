"""Find encoded payloads (base64, hex, URL-encoding, rot13, reversed text) and decode them.

Decoded text is scanned again by the detector, so an instruction hidden in an
encoding meets the same rules as plain text. Every candidate and the total
work are bounded.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Container
from typing import TYPE_CHECKING
from urllib.parse import unquote

from bastion.protect.injection.normalize import OTHER_SPACES

if TYPE_CHECKING:
    from bastion.protect.injection.prefilter import Cue

#: Most encoded candidates decoded from one text.
MAX_CANDIDATES = 16
#: Longest single candidate decoded, in characters.
MAX_CANDIDATE_CHARS = 16_384
#: Shortest base64 run considered (shorter runs are usually identifiers).
MIN_BASE64_CHARS = 16
#: Share of printable characters a decoded payload needs to count as text.
MIN_PRINTABLE_RATIO = 0.9

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/_=-])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){8,}(?![0-9A-Fa-f])")
_SPACED_HEX_CUE = re.compile(r"[0-9a-fA-F]{2}[ :][0-9a-fA-F]{2}[ :][0-9a-fA-F]{2}[ :][0-9a-fA-F]{2}[ :]")
_HEX_ESCAPED = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){6,}")
_URL_ENCODED = re.compile(r"(?:%[0-9A-Fa-f]{2}[^%\s]{0,3}){4,}")
#: Words that suggest a rot13 or reversed payload; checked as substrings of the lower-cased text first.
_ROT13_WORDS = ("rot13", "rot-13", "rot 13", "caesar", "cipher", "rotat", "rot-thirteen")
_REVERSE_WORDS = ("revers", "backward", "right to left", "mirror")
_REVERSE_CUE = re.compile(
    r"\b(?:reversed|backwards|right to left|mirrored)\b"
    r"|\breverse (?:this|it|the following|the text|the message|the order of the letters)",
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[A-Za-z]")


def _texty(raw: bytes) -> str | None:
    """The bytes as text if they look like human-readable text, else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\t\r")
    if printable / len(text) < MIN_PRINTABLE_RATIO or not _LETTERS.search(text):
        return None
    if " " not in text.strip() and len(text) > 24:
        return None
    return text


def _from_base64(token: str) -> str | None:
    if len(token) < MIN_BASE64_CHARS or token.isdigit() or token.isalpha() and token.islower():
        return None
    cleaned = token.rstrip("=")
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        if "-" in padded or "_" in padded:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _texty(raw)


def _from_hex(token: str) -> str | None:
    digits = re.sub(r"[ :\\x]", "", token)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _texty(bytes.fromhex(digits))
    except ValueError:
        return None


#: Every byte as one of three: "a" for a character a base64 or bare-hex run is made of, " " for
#: ASCII whitespace (where ``str.split()`` cuts, in text without other whitespace), "." for the
#: rest (every byte of a character that is not ASCII too).
_RUN_CLASSES = bytes(
    ord("a") if re.fullmatch(r"[A-Za-z0-9+/_:-]", chr(c)) else ord(" ") if c < 128 and chr(c).isspace() else ord(".")
    for c in range(256)
)
_RUN = b"a" * MIN_BASE64_CHARS
#: Whitespace that is not ASCII: text holding any is split as text, not as bytes.
_OTHER_SPACES = "".join(c for c in OTHER_SPACES if not c.isascii())
#: Hex digits as "h", the space and the colon as "s", every other byte as ".": ``_SPACED_HEX_CUE``
#: is then a search for one string.
_HEX_CLASSES = bytes(
    ord("h") if re.fullmatch(r"[0-9a-fA-F]", chr(c)) else ord("s") if chr(c) in " :" else ord(".") for c in range(256)
)
_SPACED_HEX = b"hhs" * 4

#: Indices of ``payload_cues()``: the four regexes, then the rot13 words, then the reverse words.
BASE64_CUE, HEX_CUE, HEX_ESCAPED_CUE, URL_ENCODED_CUE = range(4)
_ROT13_CUES = range(4, 4 + len(_ROT13_WORDS))
_REVERSE_CUES = range(4 + len(_ROT13_WORDS), 4 + len(_ROT13_WORDS) + len(_REVERSE_WORDS))
#: Looser forms of the base64 and hex regexes for the prefilter: every match of either holds
#: one of these, and hyperscan finds a run of fixed length several times faster.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16}")
_HEX_RUN = re.compile(r"(?:[0-9A-Fa-f]{2}[ :]?){8}")


def payload_cues() -> list[Cue]:
    """Prefilter cues at least one of which matches any text in which ``decoded_payloads`` finds something.

    Every payload comes from a match of one of the regexes below inside the text (a token of
    it is a slice of it), or needs a rot13 or reverse cue word in the lower-cased text.
    """
    from bastion.protect.injection.prefilter import (
        LOWER_CASE_SOURCES,
        Cue,
        literal_expression,
        loose_expression,
        regex_cue,
    )

    def word_cue(word: str) -> Cue:
        return Cue(literal_expression(word, LOWER_CASE_SOURCES), lambda text: word in text.lower())

    def run_cue(pattern: re.Pattern[str], looser: re.Pattern[str]) -> Cue:
        return Cue(loose_expression(looser), lambda text: pattern.search(text) is not None)

    cues = [run_cue(_BASE64, _BASE64_RUN), run_cue(_HEX, _HEX_RUN)]
    cues += [regex_cue(p) for p in (_HEX_ESCAPED, _URL_ENCODED)]
    cues += [word_cue(w) for w in (*_ROT13_WORDS, *_REVERSE_WORDS)]
    return cues


def _spaced_hex(text: str) -> bool:
    """``_SPACED_HEX_CUE.search(text)``, as one search in the bytes' classes (every class is ASCII)."""
    return _SPACED_HEX in text.encode("utf-8", "surrogatepass").translate(_HEX_CLASSES)


def _long_tokens(text: str) -> list[str]:
    """The whitespace-free tokens of ``text`` that can hold a base64 or bare-hex match, in order.

    That is every token with a run of MIN_BASE64_CHARS characters of the two classes (a
    base64 match is such a run, a bare-hex one too: hex digits and colons); the others find
    nothing. The text's UTF-8 bytes are searched for such runs in one pass (a character that
    is not ASCII is bytes of neither class); text with whitespace that is not ASCII is split,
    and its tokens of at least that length are kept (a superset: the same findings).
    """
    if text.isascii():
        data = text.encode("ascii")
    elif any(map(text.__contains__, _OTHER_SPACES)):
        return [t for t in text.split() if len(t) >= MIN_BASE64_CHARS]
    else:
        data = text.encode("utf-8", "surrogatepass")
    classes = data.translate(_RUN_CLASSES)
    tokens: list[str] = []
    at = classes.find(_RUN)
    while at >= 0:
        start = classes.rfind(b" ", 0, at) + 1
        end = classes.find(b" ", at)
        if end < 0:
            end = len(classes)
        tokens.append(data[start:end].decode("utf-8", "surrogatepass"))
        at = classes.find(_RUN, end)
    return tokens


def decoded_payloads(text: str, possible: Container[int] | None = None) -> list[tuple[str, str]]:
    """Each decodable payload in ``text`` as (encoding, decoded text), bounded in count and size.

    ``possible``: the indices of the ``payload_cues()`` that can match ``text`` (from a
    prefilter); a search none of whose cues can match finds nothing and is skipped.
    """
    out: list[tuple[str, str]] = []

    def may(*cues: int) -> bool:
        return possible is None or any(c in possible for c in cues)

    def add(encoding: str, decoded: str | None) -> bool:
        if decoded and decoded.strip():
            out.append((encoding, decoded))
        return len(out) < MAX_CANDIDATES

    # Long whitespace-free tokens are the only base64 or bare-hex candidates; they are found
    # far faster than by a regex scan of every position.
    # A match in a token is one in the text (whitespace is in neither class), unless the token
    # is cut at MAX_CANDIDATE_CHARS: only a text that long can have such a token.
    cut = len(text) > MAX_CANDIDATE_CHARS
    base64_runs = cut or may(BASE64_CUE)
    hex_runs = cut or may(HEX_CUE)
    if base64_runs or hex_runs:
        for token in _long_tokens(text):
            if base64_runs:
                for m in _BASE64.finditer(token[:MAX_CANDIDATE_CHARS]):
                    if not add("base64", _from_base64(m.group(0))):
                        return out
            if hex_runs:
                for m in _HEX.finditer(token[:MAX_CANDIDATE_CHARS]):
                    if not add("hex", _from_hex(m.group(0))):
                        return out
    if may(HEX_CUE, HEX_ESCAPED_CUE) and ("\\x" in text or _spaced_hex(text)):
        for pattern, cue in ((_HEX, HEX_CUE), (_HEX_ESCAPED, HEX_ESCAPED_CUE)):
            if not may(cue):
                continue
            for m in pattern.finditer(text):
                if " " in m.group(0) or "\\x" in m.group(0):
                    if not add("hex", _from_hex(m.group(0)[:MAX_CANDIDATE_CHARS])):
                        return out
    if may(URL_ENCODED_CUE) and "%" in text:
        for m in _URL_ENCODED.finditer(text):
            if not add("url-encoding", unquote(m.group(0)[:MAX_CANDIDATE_CHARS])):
                return out
    rot13 = may(*_ROT13_CUES)
    reverse = may(*_REVERSE_CUES)
    if not (rot13 or reverse):
        return out
    low = text.lower()
    if rot13 and any(map(low.__contains__, _ROT13_WORDS)):
        if not add("rot13", codecs.decode(text[:MAX_CANDIDATE_CHARS], "rot13")):
            return out
    if reverse and any(map(low.__contains__, _REVERSE_WORDS)) and _REVERSE_CUE.search(text):
        add("reversed", text[:MAX_CANDIDATE_CHARS][::-1])
    return out
