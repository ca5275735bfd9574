"""Heuristic quality checks for generated text; each returns `(keep, reason)` like every filter in builders.

    checks = quality_checks(config, "text", prompt_column="prompt", token_column="text_token_length")
    rows = run.filter(rows, checks, stage="quality")

| reason | a text is dropped when | config key (None: off) |
|---|---|---|
| too_short, too_long | it has fewer / more tokens than the bounds | quality_min_tokens, quality_max_tokens |
| repeated_lines | lines that repeat an earlier line are more than this share of its lines | quality_max_repeated_lines |
| looped_phrase | one phrase (1 to 30 words) comes more than this many times in a row (8 words or more) | quality_max_phrase_repeats |
| repeated_ngrams | more than this share of its characters lie in word 5-grams that occur twice or more | quality_max_repeated_ngrams |
| html_tags | it holds more than this many HTML tags | quality_max_html_tags |
| non_letters | more than this share of its non-space characters are not letters | quality_max_non_letters |
| replacement_chars | it holds more than this many U+FFFD replacement characters | quality_max_replacement_chars |
| echoes_prompt | it repeats at least this share of the prompt's word 8-grams | quality_max_prompt_echo |
| refusal | it says "As an AI language model" or refuses the task | quality_drop_refusals |
| wrong_language | its detected language is not the expected one | quality_language |

The repetition thresholds default to Gopher's (Rae et al., 2021: duplicate lines 0.3, characters in duplicate
5-grams 0.15). Lines and words without a letter or digit (code fences, table rules, numbers) are ignored by
the repetition checks. The language check uses `builders.filters.language`; text whose language cannot be told
("und") is kept.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from builders.dedup.shingles import reference_units
from builders.filters.checks import Check
from builders.filters.language import detect_language

HTML_TAG = re.compile(
    r"</?(?:a|abbr|article|aside|b|body|br|button|center|code|div|em|font|footer|form|h[1-6]|head|header|hr|html"
    r"|i|iframe|img|input|label|li|link|meta|nav|ol|option|p|pre|script|section|select|small|span|strong|style"
    r"|sub|sup|table|tbody|td|textarea|th|thead|title|tr|u|ul)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
REFUSAL = re.compile(
    r"\bas an ai\b|\bas a(?:n ai)? language model\b|\bi(?: am|'m) (?:just |only )?an ai\b"
    r"|\bi(?: am|'m) (?:sorry|afraid),? but i (?:can ?not|can't|am unable to|won't|'m unable to)"
    r" (?:help|assist|provide|fulfill|comply|create|write|generate|do)\b"
    r"|\bi can ?not (?:fulfill|comply with|assist with|help with) (?:this|that|your)\b",
    re.IGNORECASE,
)
LETTER_OR_DIGIT = re.compile(r"[^\W_]")
LETTER_WORD = re.compile(r"\w*[^\W\d_]\w*")
REPEAT_NGRAM = 5
ECHO_NGRAM = 8
MAX_PHRASE_WORDS = 30
MIN_LOOP_WORDS = 8


# ---------------------------------------------------------------------------------------------------------------
# measurements (each a plain function of the text, tested on its own)


def repeated_line_share(text: str) -> float:
    """Share of a text's lines (with a letter or digit) that repeat an earlier line."""
    lines = [line.strip() for line in text.splitlines() if LETTER_OR_DIGIT.search(line)]
    if not lines:
        return 0.0
    return (len(lines) - len(set(lines))) / len(lines)


def repeated_ngram_share(text: str, n: int = REPEAT_NGRAM) -> float:
    """Share of the characters of a text's words that lie in a word n-gram occurring more than once (Gopher)."""
    words = _words(text)
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = np.zeros(len(words), dtype=bool)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i : i + n] = True
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    return float(lengths[covered].sum() / lengths.sum())


def longest_phrase_loop(text: str, max_words: int = MAX_PHRASE_WORDS, min_span: int = MIN_LOOP_WORDS) -> int:
    """Most consecutive copies of one phrase of 1 to `max_words` words, among loops of `min_span` words or more.

    "The end. The end. The end. The end." is 4; a short outcry such as "No, no, no, no, no." (5 words) is no loop.
    """
    words = _words(text)
    if len(words) < 2:
        return len(words)
    ids = np.unique(np.array(words), return_inverse=True)[1]
    best = 1
    for period in range(1, min(max_words, len(ids) // 2) + 1):
        same = ids[period:] == ids[:-period]
        if not same.any():
            continue
        edges = np.flatnonzero(np.diff(np.concatenate(([0], same.view(np.int8), [0]))))
        run = int((edges[1::2] - edges[::2]).max())  # a run of r equal pairs is r + period words
        if run + period >= min_span:
            best = max(best, (run + period) // period)
    return best


def html_tag_count(text: str) -> int:
    return len(HTML_TAG.findall(text))


def non_letter_share(text: str) -> float:
    """Share of non-space characters that are not letters (digits, punctuation, symbols)."""
    chars = [c for c in text if not c.isspace()]
    return sum(1 for c in chars if not c.isalpha()) / len(chars) if chars else 0.0


def prompt_echo_share(text: str, prompt: str, n: int = ECHO_NGRAM) -> float:
    """Share of the prompt's word n-grams that appear in the text."""
    p, t = reference_units(prompt), reference_units(text)
    if len(p) < n:
        return 1.0 if p and _contains(t, p) else 0.0
    prompt_grams = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    text_grams = {tuple(t[i : i + n]) for i in range(len(t) - n + 1)}
    return len(prompt_grams & text_grams) / len(prompt_grams)


def is_refusal(text: str) -> bool:
    return bool(REFUSAL.search(text.replace("\u2019", "'")))


def token_count(text: str, tokenizer=None) -> int:
    if tokenizer is None:
        return len(text.split())
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------------------------------------------------------
# checks


def quality_checks(
    config,
    column: str,
    prompt_column: str | None = None,
    token_column: str | None = None,
    tokenizer=None,
) -> list[Check]:
    """The checks a config turns on (`quality_*` keys), for the text in `column`.

    Token lengths come from `token_column` when the row has it (e.g. the generation's completion tokens),
    else from `tokenizer`, else from whitespace-separated words. `prompt_column` enables the echo check.
    """
    if not getattr(config, "quality_filters", True):
        return []
    c = config

    def text_of(row: dict) -> str:
        return row.get(column) or ""

    checks: list[Check] = []
    if c.quality_min_tokens is not None or c.quality_max_tokens is not None:

        def length(row: dict) -> tuple[bool, str | None]:
            tokens = row.get(token_column) if token_column else None
            if tokens is None:
                tokens = token_count(text_of(row), tokenizer)
            if c.quality_min_tokens is not None and tokens < c.quality_min_tokens:
                return False, "too_short"
            if c.quality_max_tokens is not None and tokens > c.quality_max_tokens:
                return False, "too_long"
            return True, None

        checks.append(length)
    limits = [
        ("repeated_lines", c.quality_max_repeated_lines, repeated_line_share),
        ("looped_phrase", c.quality_max_phrase_repeats, longest_phrase_loop),  # before n-grams: more telling
        ("repeated_ngrams", c.quality_max_repeated_ngrams, repeated_ngram_share),
        ("html_tags", c.quality_max_html_tags, html_tag_count),
        ("non_letters", c.quality_max_non_letters, non_letter_share),
        ("replacement_chars", c.quality_max_replacement_chars, lambda t: t.count("\ufffd")),
    ]
    for reason, limit, measure in limits:
        if limit is not None:
            checks.append(_at_most(reason, limit, measure, text_of))
    if prompt_column and c.quality_max_prompt_echo is not None:

        def echo(row: dict) -> tuple[bool, str | None]:
            share = prompt_echo_share(text_of(row), row.get(prompt_column) or "")
            return share < c.quality_max_prompt_echo, "echoes_prompt"

        checks.append(echo)
    if c.quality_drop_refusals:
        checks.append(lambda row: (not is_refusal(text_of(row)), "refusal"))
    if c.quality_language:
        expected = c.quality_language.lower()

        def language(row: dict) -> tuple[bool, str | None]:
            found = detect_language(text_of(row))
            return found in ("und", expected), "wrong_language"

        checks.append(language)
    return checks


def _at_most(reason: str, limit, measure, text_of) -> Check:
    def check(row: dict) -> tuple[bool, str | None]:
        return measure(text_of(row)) <= limit, reason

    check.__name__ = reason
    return check


def _words(text: str) -> list[str]:
    """Lower-cased words that hold a letter (numbers and symbols do not make a text repetitive)."""
    return LETTER_WORD.findall(text.lower())


def _contains(words: list[str], part: list[str]) -> bool:
    k = len(part)
    return any(words[i : i + k] == part for i in range(len(words) - k + 1))
