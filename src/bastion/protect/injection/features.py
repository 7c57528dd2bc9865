"""Features of the linear classifier: words, word pairs and character 4-grams of folded text.

Training (``training/injection/train.py``) and inference both call these
functions, so the model sees the same features in both places.
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


def features_of_words(words: list[str]) -> set[str]:
    """The feature set of one run of words."""
    joined = " " + " ".join(words) + " "
    n = CHAR_N
    # Set comprehensions and map keep the loops in C; this runs for every window of every text.
    feats = {joined[i : i + n] for i in range(len(joined) - n + 1)}
    feats.update(map("w:".__add__, words))
    feats.update(map("b:{} {}".format, words, words[1:]))
    return feats


def windows(words: list[str]) -> Iterator[list[str]]:
    """Overlapping windows of words covering the whole text."""
    if len(words) <= WINDOW_WORDS:
        yield words
        return
    step = WINDOW_WORDS - WINDOW_OVERLAP
    for start in range(0, len(words) - WINDOW_OVERLAP, step):
        yield words[start : start + WINDOW_WORDS]
