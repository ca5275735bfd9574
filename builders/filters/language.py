"""Language identification for filters: by Unicode script first, then by function words for Latin script.

Script decides reliably between Chinese, Japanese, Korean, Russian, Arabic and so on (the reasoning
recipe's zh/en case); for Latin-script text, the share of very common function words separates English
from the main European languages. Returns an ISO 639-1 code, or "und" when the text gives too little to go on.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# Very frequent, short function words: present in almost any sentence of the language, rare in the others.
FUNCTION_WORDS = {
    "en": "the and of to is in that it for was with as on are be this by not or have from they which you".split(),
    "fr": "le la les et des est une un du que pour dans qui pas sur au avec ce sont par il elle".split(),
    "de": "der die und das ist nicht ein eine zu den mit sich des auf für im dem von auch es wird".split(),
    "es": "el la los las y de que en es por para una un con no se del al lo como más".split(),
    "it": "il la di che e è per non una un del della con sono gli le si da al".split(),
    "pt": "o a os as de que e do da em um uma para com não é se por mais dos das".split(),
    "nl": "de het een en van is dat niet op te zijn met voor die er ook aan wordt".split(),
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SCRIPT_LANGUAGE = {
    "HANGUL": "ko",
    "CYRILLIC": "ru",
    "ARABIC": "ar",
    "HEBREW": "he",
    "GREEK": "el",
    "DEVANAGARI": "hi",
    "THAI": "th",
}


def script_counts(text: str) -> Counter:
    """Letters per script: LATIN, CJK (Han), KANA, HANGUL, CYRILLIC, ..."""
    counts: Counter = Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        if name.startswith("CJK") or "IDEOGRAPH" in name:
            counts["CJK"] += 1
        elif name.startswith(("HIRAGANA", "KATAKANA")):
            counts["KANA"] += 1
        else:
            counts[name.split(" ")[0]] += 1
    return counts


def detect_language(text: str, min_letters: int = 3) -> str:
    counts = script_counts(text or "")
    letters = sum(counts.values())
    if letters < min_letters:
        return "und"
    script, top = counts.most_common(1)[0]
    if counts["KANA"] >= 0.1 * letters:  # Japanese mixes kana with kanji; Chinese has no kana
        return "ja"
    if script == "CJK" or counts["CJK"] >= 0.3 * letters:
        return "zh"
    if script in _SCRIPT_LANGUAGE:
        return _SCRIPT_LANGUAGE[script]
    if script != "LATIN":
        return "und"
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: sum(1 for w in words if w in vocab) for lang, vocab in _VOCAB.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] > 0 else "und"


def same_language(a: str, b: str) -> bool:
    """True unless both texts have a determined language and they differ."""
    la, lb = detect_language(a), detect_language(b)
    return la == "und" or lb == "und" or la == lb


_VOCAB = {lang: frozenset(words) for lang, words in FUNCTION_WORDS.items()}
