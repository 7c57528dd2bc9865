"""Entity masking for the classifier: identifiers become class tokens before featurisation.

Emails, URLs, host names, IP addresses, dates, times, UUIDs, long identifiers
and digit runs say nothing about whether a text tries to take over a model,
but their surface (``example``, ``.com``, ``130.251``) is learnt as noise: a
domain that happened to appear in attack data made every email address look
like an attack. Masking them to ``_email_``, ``_url_`` and so on, at training
and at inference alike, leaves the classifier only the words around them.

The rules never see the masked text: they read the folded text itself.
"""

from __future__ import annotations

import re
from collections.abc import Container
from itertools import compress
from operator import not_

from bastion.protect.injection.features import ASCII_NON_WORD_BYTES, words_of

#: Masking runs on folded (lower-case) text; each pattern is one linear pass and is
#: skipped when a cheap membership test shows it cannot match.
_URL = re.compile(r"\b(?:https?|ftp|s3|file)://[^\s<>\"'()\[\]{}]+|\bwww\.[^\s<>\"'()\[\]{}]+")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?::\d{1,5})?\b")
#: ISO dates with an optional time and zone, day-first or month-first dates, clock times.
_DATETIME = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}(?:[t ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z|[+-]\d{2}:?\d{2})?\b)?"
    r"|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b"
    r"|\b\d{1,2}/[a-z]{3}/\d{4}(?::\d{2}:\d{2}:\d{2})?"
    r"|\b\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z\b)?"
)
#: IPv6 in full or with "::" (before times, which look like short IPv6 groups) and MAC addresses.
_IPV6 = re.compile(
    r"(?<![\w:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5})?"
    r"|::[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})(?![\w:])"
    r"|\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b"
)
#: Host names ending in a common top-level domain (file names such as ``app.js`` are left alone).
_HOST = re.compile(
    r"\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|co|uk|de|fr|es|it|nl|pl|ch|at|be|se|dk|no|fi|eu|us|ca|au|jp|cn|in|br|"
    r"ru|info|biz|ai|app|cloud|edu|gov|example|test|local|internal|corp|lan)\b"
)
_DIGITS = re.compile(r"\d+")
_HAS_DIGIT = re.compile(r"\d")
#: Cheap tests led by a literal or a short class, so the engine skips ahead quickly; a full
#: pattern runs only when its test finds a candidate (most prose has none).
_HINT_IPV4 = re.compile(r"\.\d{1,3}\.\d{1,3}\.")
#: Every IPv6 form has "::" or five groups in a row (a MAC address too); clock times have neither.
#: Written from the colon (after the first group's last digit), so the engine only stops at colons.
_HINT_IPV6 = re.compile(r":(?::|(?<=[0-9a-f]:)(?:[0-9a-f]{1,4}:){4})")
_HINT_UUID = re.compile(r"-[0-9a-f]{4}-[0-9a-f]{4}-")
_HINT_DATE = re.compile(r"[-/.]\d{1,2}[-/.]\d")
_HINT_TIME = re.compile(r":\d\d|/[a-z]{3}/\d")
_HINT_HOST = re.compile(_HOST.pattern.split(r")+", 1)[1].replace("(?:", r"\.(?:", 1))
#: A word of at least this many characters that mixes digits with letters is an identifier
#: (request id, hash, IBAN, key); shorter ones (``v2``, ``mp3``) only have their digits masked.
LONG_ID_CHARS = 8

#: Class tokens, written as words so the tokenizer keeps each one whole.
URL, EMAIL, ID, IP, DATE, HOST = " _url_ ", " _email_ ", " _id_ ", " _ip_ ", " _date_ ", " _host_ "


#: The tests mask_entities makes before each masking pattern, by name: a prefilter built from
#: them tells which can pass on a folded text (``mask_entities(possible=...)``).
MASK_CUES: dict[str, re.Pattern[str]] = {
    "url": re.compile(r"://|www\."),
    "email": re.compile("@"),
    "digit": _HAS_DIGIT,
    "uuid": _HINT_UUID,
    "ipv4": _HINT_IPV4,
    "ipv6": _HINT_IPV6,
    "time": _HINT_TIME,
    "date": _HINT_DATE,
    "host": _HINT_HOST,
}


_OTHER_SPACE = re.compile(r"[^\S ]")
#: The ASCII whitespace characters other than the space (what ``\s`` and ``str.split`` cut at).
_ASCII_OTHER_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _single_spaced(text: str) -> bool:
    """Whether the only whitespace in ``text`` is the space (true of folded text)."""
    if text.isascii():
        # A few substring searches (each a memchr) instead of a regex step per character.
        return not any(map(text.__contains__, _ASCII_OTHER_SPACES))
    # Every whitespace character but the space is unprintable (a Separator or Other).
    return text.isprintable() or _OTHER_SPACE.search(text) is None


def _sub_in_runs(
    rx: re.Pattern[str], repl: str, text: str, hint: re.Pattern[str], reach: int = 0
) -> tuple[str, list[str], list[str]]:
    """``rx.sub(repl, text)`` on text whose only whitespace is the space, for a pattern whose every
    match holds a match of ``hint`` and spans at most ``reach`` + 1 space-free runs; with it, the
    stretches of the result that were substituted (the rest is copied from ``text``), and the
    stretches of ``text`` they replace.

    Only the runs holding a match of ``hint``, with ``reach`` runs on each side, can hold a
    match (overlapping stretches are merged), and the pattern sees the same at a stretch's
    ends as in the whole text (a space, or nothing: neither is a character its look-arounds,
    ``\\b`` or classes accept there). So each stretch is substituted on its own and the rest
    copied: the regex no longer walks the whole text.
    """
    stretches: list[list[int]] = []
    for m in hint.finditer(text):
        if stretches and m.end() <= stretches[-1][1]:
            continue  # inside a stretch already taken
        start = text.rfind(" ", 0, m.start()) + 1
        end = text.find(" ", m.end())
        end = len(text) if end < 0 else end
        for _ in range(reach):
            if start > 0:
                start = text.rfind(" ", 0, start - 1) + 1
            if end < len(text):
                end = text.find(" ", end + 1)
                end = len(text) if end < 0 else end
        if stretches and start <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], end)
        else:
            stretches.append([start, end])
    if not stretches:
        return text, [], []
    out: list[str] = []
    pieces: list[str] = []
    originals: list[str] = []
    done = 0
    for start, end in stretches:
        out.append(text[done:start])
        original = text[start:end]
        piece = rx.sub(repl, original)
        out.append(piece)
        pieces.append(piece)
        originals.append(original)
        done = end
    out.append(text[done:])
    return "".join(out), pieces, originals


#: The cues whose test can lead to a substitution (the digit test only leads to others).
_SUBSTITUTION_CUES = tuple(name for name in MASK_CUES if name != "digit")
_HINT_URL = re.compile(r"://|www\.")
_HINT_EMAIL = re.compile("@")
#: Every date or time the pattern masks holds one of these (and at most one space).
_HINT_DATETIME = re.compile(f"{_HINT_TIME.pattern}|{_HINT_DATE.pattern}")


def mask_entities(folded: str, possible: Container[str] | None = None) -> str:
    """Folded text with URLs, emails, UUIDs, IP and MAC addresses, dates, times and host names masked.

    ``possible``: the names of the ``MASK_CUES`` that can match ``folded`` (from a prefilter).
    See ``_masked``.
    """
    return _masked(folded, possible)[0]


def _masked(
    folded: str, possible: Container[str] | None = None
) -> tuple[str, tuple[list[str], list[str]] | None]:
    """``mask_entities(folded, possible)``, and the stretches masking rewrote, as written and as
    they were (None when a pattern ran over the whole text). Each stretch begins and ends at a
    space or an end of the text, which no word crosses: the masked text has as many more words
    (``words_of``) than ``folded`` as the rewritten stretches have more than the replaced ones.

    ``possible``: the names of the ``MASK_CUES`` that can match ``folded`` (from a prefilter).
    A test whose cue cannot match is still made on the stretches masking has rewritten so
    far: every test is a pattern that cannot match a space, so in text whose only whitespace
    is the space each of its matches lies in one space-free run, and a run masking left alone
    is as it was in ``folded``, with the same spaces around it. In other text a test is made
    on the whole text once anything has been masked.
    """
    text = folded
    runs: bool | None = None  # whether the space-free runs can be substituted alone
    rewritten: list[str] = []  # every stretch substituted so far, as it was written
    replaced: list[str] = []  # the stretches they replace
    if possible is not None and not any(map(possible.__contains__, _SUBSTITUTION_CUES)):
        # Every test but the digit one is ruled out, and nothing is rewritten to test again.
        return text, (rewritten, replaced)

    def may(name: str, test: re.Pattern[str]) -> bool:
        if possible is None or name in possible:
            return test.search(text) is not None
        return bool(rewritten) and any(test.search(piece) is not None for piece in rewritten)

    def sub(rx: re.Pattern[str], repl: str, hint: re.Pattern[str], reach: int = 0) -> str:
        nonlocal runs, possible
        if runs is None:
            runs = _single_spaced(text)
        if not runs:
            possible = None
            return rx.sub(repl, text)
        out, pieces, originals = _sub_in_runs(rx, repl, text, hint, reach)
        rewritten.extend(pieces)
        replaced.extend(originals)
        return out

    if may("url", _HINT_URL):
        text = sub(_URL, URL, _HINT_URL)
    if may("email", _HINT_EMAIL):
        text = sub(_EMAIL, EMAIL, _HINT_EMAIL)
    if may("digit", _HAS_DIGIT):
        if may("uuid", _HINT_UUID):
            text = sub(_UUID, ID, _HINT_UUID)
        if may("ipv4", _HINT_IPV4):
            text = sub(_IPV4, IP, _HINT_IPV4)
        if may("ipv6", _HINT_IPV6):
            text = sub(_IPV6, IP, _HINT_IPV6)
        if may("time", _HINT_TIME) or may("date", _HINT_DATE):
            # A date and its time may be one match across a space: one run either side.
            text = sub(_DATETIME, DATE, _HINT_DATETIME, 1)
    if may("host", _HINT_HOST):
        text = sub(_HOST, HOST, _HINT_HOST)
    return text, (None if runs is False else (rewritten, replaced))


def _mask_word(word: str) -> str:
    if word.isascii() and word.isdigit():
        # A plain number (the commonest case): one token, whatever its length.
        return "0"
    if _HAS_DIGIT.search(word) is None:
        return word
    if len(word) >= LONG_ID_CHARS and word.strip("0123456789_"):
        return ID.strip()
    # Any other number is one token whatever its value or length.
    return _DIGITS.sub("0", word)


def entity_words(
    folded: str, words: list[str] | None = None, possible: Container[str] | None = None
) -> list[str]:
    """The classifier's words of folded text: entities masked, long identifiers and numbers too.

    ``words``, the plain words of ``folded`` if already split, are reused when nothing is masked.
    ``possible``: as for ``mask_entities``.
    """
    masked = mask_entities(folded, possible)
    if words is None or masked != folded:
        words = words_of(masked)
    return _numbers_masked(words, masked)


def _numbers_masked(words: list[str], masked: str) -> list[str]:
    """The words of a masked text with numbers and long identifiers masked (``_mask_word``)."""
    if _HAS_DIGIT.search(masked) is None:
        return words
    # isalpha() is true for most words: it is run over all of them in C, and only the
    # others are looked at in Python.
    alpha = list(map(str.isalpha, words))
    if all(alpha):
        return words
    out = list(words)
    for i in compress(range(len(words)), map(not_, alpha)):
        out[i] = _mask_word(words[i])
    return out


#: For a joined ASCII text: every byte but the digits and the space, to delete (what is left of
#: a word is its digits: nothing, for most words).
_NOT_DIGIT_OR_SPACE = bytes(c for c in range(256) if c != 32 and not 48 <= c <= 57)
_ASCII_DIGIT_RUNS = re.compile(rb"[0-9]+")
#: Up to this many digits, the words holding them are found from the digits; past it, by a
#: split of what is left of every word.
_FEW_DIGITS = 24
_ASCII_ID = ID.strip().encode()


def _mask_ascii_word(word: bytes) -> bytes:
    """``_mask_word`` of an ASCII word that holds a digit."""
    if word.isdigit():
        return b"0"
    if len(word) >= LONG_ID_CHARS and word.strip(b"0123456789_"):
        return _ASCII_ID
    return _ASCII_DIGIT_RUNS.sub(b"0", word)


def entity_joined(
    folded: str, words: list[str] | None = None, possible: Container[str] | None = None
) -> tuple[bytes | str, int]:
    """``joined_words(entity_words(folded, words, possible))``, as bytes when it is ASCII, and the
    number of plain words of ``folded`` (``len(words_of(folded))``).

    What the classifier reads, made without a Python step per word when the masked text is
    ASCII: it is split as bytes, and only the words holding a digit are looked at one by one.
    The number of plain words is the masked text's less what masking added, unless known.
    """
    masked, changes = _masked(folded, possible)
    joined: bytes | str
    if masked.isascii():
        # The words, one space apart: non-word characters made spaces, runs of spaces halved
        # until none is left (no list of words is made unless some word holds a digit).
        text = masked.encode("ascii").translate(ASCII_NON_WORD_BYTES)
        while b"  " in text:
            text = text.replace(b"  ", b" ")
        text = text.strip(b" ")
        count = text.count(b" ") + 1 if text else 0
        # A folded text without digits has none after masking either (no class token has one).
        if count and (possible is None or "digit" in possible):
            # What is left of each word is its digits; the words are count - 1 spaces apart.
            digits = text.translate(None, _NOT_DIGIT_OR_SPACE)
            held = len(digits) - (count - 1)
            if held > 0:
                parts = text.split(b" ")
                if held <= _FEW_DIGITS:
                    # A few digits: each run's word is the number of spaces before it.
                    i = last = 0
                    for m in _ASCII_DIGIT_RUNS.finditer(digits):
                        i += digits.count(b" ", last, m.start())
                        last = m.start()
                        parts[i] = _mask_ascii_word(parts[i])
                else:
                    for i in compress(range(count), digits.split(b" ")):
                        parts[i] = _mask_ascii_word(parts[i])
                text = b" ".join(parts)
        joined = b" " + text + b" "
    else:
        plain_words = words if words is not None and masked == folded else words_of(masked)
        count = len(plain_words)
        joined = " " + " ".join(_numbers_masked(plain_words, masked)) + " "
        if joined.isascii():
            joined = joined.encode("ascii")
    if words is not None:
        return joined, len(words)
    if masked == folded:
        return joined, count
    if changes is None:
        return joined, len(words_of(folded))
    rewritten, replaced = changes
    # Stretches joined by spaces have the words of each, in one split.
    return joined, count - len(words_of(" ".join(rewritten))) + len(words_of(" ".join(replaced)))
