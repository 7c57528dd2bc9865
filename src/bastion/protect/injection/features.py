"""Features of the linear classifier: words, word pairs and character 4-grams of folded text.

A window of words is a bag (multiset) of these features, each worth
``1/sqrt(n)`` for a bag of ``n``. Training (``training/injection/train.py``)
builds bags of feature strings with ``features_of_words``: that is the
definition. Inference never builds those strings: ``FeatureHashes`` gives
every feature of a joined text as a 64-bit hash computed with numpy over the
text's code points (one polynomial prefix sum, then one subtraction per
feature), and ``feature_key_hashes`` gives the same hash for a feature
string, so the classifier's weights are looked up by hash.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Length of the character n-grams.
CHAR_N = 4
#: Words per scoring window: long texts are scored window by window so a short
#: injection inside a long document is not diluted by the text around it.
WINDOW_WORDS = 64
#: Words shared by consecutive windows, so a phrase on a border is seen whole.
WINDOW_OVERLAP = 16

_WORD = re.compile(r"\w+")


#: ASCII characters that are not word characters (for ``re``'s \\w), each mapped to a space
#: (a table for ``bytes.translate``; other bytes are left alone).
ASCII_NON_WORD_BYTES = bytes(32 if c < 128 and not _WORD.fullmatch(chr(c)) else c for c in range(256))


#: Typographic punctuation common in otherwise ASCII text (none of it is a word character).
_TYPOGRAPHIC = "’‘“”—–…«»•·"


def words_of(folded: str) -> list[str]:
    """The word tokens of folded text."""
    if not folded.isascii():
        # English typed in a word processor is ASCII but for its quotes and dashes: as they
        # are not word characters, they can be spaces, and the text split the fast way.
        plain = folded
        for c in _TYPOGRAPHIC:
            if c in plain:
                plain = plain.replace(c, " ")
        if not plain.isascii():
            return _WORD.findall(folded)
        folded = plain
    # The same tokens as the regex, several times faster: non-word characters become
    # spaces (bytes.translate is a table lookup per byte) and str.split() cuts there.
    return folded.encode("ascii").translate(ASCII_NON_WORD_BYTES).decode("ascii").split()


def joined_words(words: list[str]) -> str:
    """Words joined by single spaces, padded with one space on each side (the character n-gram source)."""
    return " " + " ".join(words) + " "


def char_grams(joined: str) -> list[str]:
    """Every character n-gram of a joined string, in order."""
    n = CHAR_N
    return [joined[i : i + n] for i in range(len(joined) - n + 1)]


def word_features(words: list[str]) -> list[str]:
    """Word features, one per word, in order."""
    return list(map("w:".__add__, words))


def pair_features(words: list[str]) -> list[str]:
    """Word-pair features, one per adjacent pair, in order."""
    return list(map("b:{} {}".format, words, words[1:]))


def features_of_words(words: list[str]) -> list[str]:
    """The bag of features of one window of words (repeats kept)."""
    return char_grams(joined_words(words)) + word_features(words) + pair_features(words)


def window_bounds(count: int) -> Iterator[tuple[int, int]]:
    """(start, end) word indices of the overlapping windows covering ``count`` words."""
    if count <= WINDOW_WORDS:
        yield 0, count
        return
    step = WINDOW_WORDS - WINDOW_OVERLAP
    for start in range(0, count - WINDOW_OVERLAP, step):
        yield start, min(count, start + WINDOW_WORDS)


def windows(words: list[str]) -> Iterator[list[str]]:
    """Overlapping windows of words covering the whole text."""
    for start, end in window_bounds(len(words)):
        yield words[start:end]


# --- Hashed features -------------------------------------------------------------------------------
#
# A feature is identified by its kind (character n-gram, word, word pair) and its text. Each is a
# span of the joined text " w1 w2 ... wn ": the n-gram itself; for a word, the word with the space
# before it; for a pair, the two words with the space before the first. All are hashed alike:
# h(s, e) = sum(c[j] * Q**(j - s)) over the code points c of the span [s, e), modulo 2**64. With
# G[i] = sum(c[j] * Q**j for j < i), a prefix sum, h(s, e) = (G[e] - G[s]) * P**s where P is Q's
# inverse: one subtraction and one product per feature. A constant per kind is added. Hashes only
# address weights: no two feature strings the model knows share one (the weight table checks),
# and another text feature meets a known hash with a chance of about 60,000 in 2**64.
# Every hash is then multiplied by the odd constant SPREAD, which carries every bit of it into
# the top bits (where the weight table reads its bucket): that product is folded into the
# powers of P and the constants, so it costs nothing.

#: Kinds of feature.
GRAM, WORD, PAIR = 0, 1, 2
_UINT = np.uint64
_Q = 0x9E3779B97F4A7C15
_P = pow(_Q, -1, 1 << 64)
SPREAD = 0xFF51AFD7ED558CCD
_MASK64 = (1 << 64) - 1
#: Added to each kind's hashes (n-grams: nothing), so the n-gram " abc" and the word "abc"
#: (the same span of text) hash apart; multiplied by SPREAD like the rest.
_KIND_SALT = np.array(
    [0, 0x13198A2E03707344 * SPREAD & _MASK64, 0xA4093822299F31D0 * SPREAD & _MASK64], dtype=_UINT
)
_WORD_SALT, _PAIR_SALT = _KIND_SALT[WORD], _KIND_SALT[PAIR]
_SPACE = 32

U64Array = npt.NDArray[np.uint64]


class _Powers:
    """SPREAD * P**k and Q**k modulo 2**64 for k up to the longest text seen, grown on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One reference to both arrays, replaced at once: readers never see them mismatched.
        self._pq: tuple[U64Array, U64Array] = (np.full(1, SPREAD, dtype=_UINT), np.ones(1, dtype=_UINT))
        self.ensure(4096)

    def ensure(self, n: int) -> tuple[U64Array, U64Array]:
        pq = self._pq
        if len(pq[0]) >= n:
            return pq
        with self._lock:
            size = max(n, 2 * len(self._pq[0]))
            p = np.full(size, _P, dtype=_UINT)
            q = np.full(size, _Q, dtype=_UINT)
            p[0] = SPREAD
            q[0] = 1
            # Integer overflow in numpy array arithmetic wraps, which is arithmetic modulo 2**64.
            np.cumprod(p, out=p)
            np.cumprod(q, out=q)
            self._pq = pq = (p, q)
        return pq


_POWERS = _Powers()


def _code_points(text: str | bytes) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint32]:
    if isinstance(text, bytes):  # ASCII, encoded
        return np.frombuffer(text, dtype=np.uint8)
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _prefix(codes: npt.NDArray[np.uint8] | npt.NDArray[np.uint32]) -> tuple[U64Array, U64Array]:
    """G (see above) and SPREAD * P**k for k < len(codes) + 1."""
    n = len(codes)
    p, q = _POWERS.ensure(n + 1)
    g = np.empty(n + 1, dtype=_UINT)
    g[0] = 0
    rest = g[1:]
    np.multiply(codes, q[:n], out=rest)
    np.add.accumulate(rest, out=rest)
    return g, p


def feature_key_hashes(keys: Sequence[str]) -> tuple[U64Array, npt.NDArray[np.bool_]]:
    """The hash of each feature string as ``features_of_words`` writes it, and whether it can occur.

    A key that is not a word (``w:``), a pair (``b:``) or a CHAR_N-character n-gram never
    occurs at inference; its hash is 0 and its flag False.
    """
    bodies: list[str] = []
    kinds: list[int] = []
    valid: list[bool] = []
    for key in keys:
        if key.startswith("w:"):
            bodies.append(" " + key[2:])
            kinds.append(WORD)
            valid.append(len(key) > 2)
        elif key.startswith("b:"):
            bodies.append(" " + key[2:])
            kinds.append(PAIR)
            valid.append(len(key) > 2)
        else:
            bodies.append(key)
            kinds.append(GRAM)
            valid.append(len(key) == CHAR_N)
    lengths = np.fromiter(map(len, bodies), dtype=np.intp, count=len(bodies))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    g, p = _prefix(_code_points("".join(bodies)))
    hashes: U64Array = (g.take(ends) - g.take(starts)) * p.take(starts)
    hashes += _KIND_SALT.take(np.array(kinds, dtype=np.intp))
    ok = np.array(valid, dtype=np.bool_)
    hashes[~ok] = 0
    return hashes, ok


@dataclass(frozen=True, slots=True)
class FeatureHashes:
    """Every feature of a joined text (``joined_words``), hashed, in the order the windows need.

    ``hashes`` holds the n-grams (the one starting at ``joined[i]`` at ``i``), then the words,
    then the pairs of adjacent words; ``grams`` and ``words`` are the first two counts.
    ``spaces[k]`` is the index in ``joined`` of the space before word k (``spaces[n]``: the last).
    """

    hashes: U64Array
    grams: int
    words: int
    spaces: npt.NDArray[np.intp]


def feature_hashes(joined: str | bytes) -> FeatureHashes:
    """The hashed features of a joined text (single spaces between words, one on each side).

    ``joined`` may be given encoded, as bytes, when it is ASCII.
    """
    codes = np.frombuffer(joined, dtype=np.uint8) if isinstance(joined, bytes) else _code_points(joined)
    n = len(codes)
    spaces = (codes == _SPACE).nonzero()[0]
    if n <= 2:
        # No words (the joined text of none is two spaces), and no n-grams.
        return FeatureHashes(np.zeros(0, dtype=_UINT), 0, 0, spaces)
    g, p = _prefix(codes)
    m = max(0, n - CHAR_N + 1)
    words = len(spaces) - 1
    out = np.empty(m + 2 * words - 1, dtype=_UINT)
    grams = out[:m]
    np.subtract(g[CHAR_N:], g[:m], out=grams)
    grams *= p[:m]
    # Words and pairs start at a space: G and P there are all they need.
    gs = g.take(spaces)
    ps = p.take(spaces)
    single = out[m : m + words]
    np.subtract(gs[1:], gs[:-1], out=single)
    single *= ps[:-1]
    single += _WORD_SALT
    pair = out[m + words :]
    np.subtract(gs[2:], gs[:-2], out=pair)
    pair *= ps[:-2]
    pair += _PAIR_SALT
    return FeatureHashes(out, m, words, spaces)
