"""Repetition inside one text: the share of n-grams seen earlier in the same text (a looping trace scores high).

Text is split into words, or into characters when it is written without spaces (Chinese, Japanese), so
the same measure works for both. `builders.methods.reasoning.traces` uses it to drop reasoning traces that loop.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)


def text_units(text: str) -> tuple[list[str], bool]:
    """Lower-cased words, or the characters of text written without spaces; True when characters."""
    text = text or ""
    letters = sum(1 for c in text if c.isalpha())
    if letters and text.count(" ") < letters / 20:
        return [c for c in text if c.isalnum()], True
    return [w.lower() for w in _WORD.findall(text)], False


def repeated_ngram_fraction(text: str, n: int | None = None) -> float:
    """Share of the text's n-grams that already occurred earlier in it (0: no repeat; near 1: one loop).

    n defaults to 10 words, or 20 characters for unspaced text: long enough that ordinary phrasing
    ("so the answer is") never counts, short enough that a repeated sentence does.
    """
    units, chars = text_units(text)
    n = n or (20 if chars else 10)
    if len(units) < n + 1:
        return 0.0
    grams = [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)
