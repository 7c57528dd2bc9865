"""Features of the linear classifier: words, word pairs and character 4-grams of folded text.

A window of words is a bag (multiset) of these features, each worth
``1/sqrt(n)`` for a bag of ``n``. Training (``training/injection/train.py``)
builds bags with ``features_of_words``; inference scores every window of a
long text at once from prefix sums of per-position weights, which gives the
same numbers without building a bag per window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Length of the character n-grams.
CHAR_N = 4
#: Words per scoring window: long texts are scored window by window so a short
#: injection inside a long document is not diluted by the text around it.
WINDOW_WORDS = 64
#: Words shared by consecutive windows, so a phrase on a border is seen whole.
WINDOW_OVERLAP = 16

_WORD = re.compile(r"\w+")


def words_of(folded: str) -> list[str]:
    """The word tokens of folded text."""
    return _WORD.findall(folded)


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
