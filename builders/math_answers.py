"""Final answers of math questions: extract them from a model's answer and compare them with a reference.

The extraction looks, in order, for the last `\\boxed{...}`, a GSM8K-style `#### value`, the text after
"the answer is" / "答案是" (and similar), and finally the last number of the text. Numbers are compared
exactly as fractions where possible (`3/4`, `\\frac{3}{4}`, `0.75` are equal) and with a relative tolerance
otherwise; a percentage also matches its fraction (`50%` and `0.5`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|=|:)\s*:?|(?:答案|结果|最终答案)\s*(?:是|为|：|:|=)", re.IGNORECASE
)
_NUMBER = re.compile(
    r"""-?\s*\\d?frac\s*\{\s*-?[\d.,]+\s*\}\s*\{\s*-?[\d.,]+\s*\}   # \frac{3}{4}
      | -?\d[\d,]*(?:\.\d+)?\s*/\s*\d[\d,]*(?:\.\d+)?                # 3/4
      | -?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?\s*%?                    # 1,200.5  50%  1e-3
      | -?\.\d+\s*%?                                                   # .5
    """,
    re.VERBOSE,
)
_FRAC = re.compile(r"(-?)\s*\\d?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")


@dataclass(frozen=True)
class Number:
    value: Fraction
    percent: bool = False  # written with a % sign


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}`, braces balanced; None if there is none."""
    matches = list(_BOXED.finditer(text or ""))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i].strip()
    return None  # unbalanced: the answer was cut


def extract_final_answer(text: str) -> str | None:
    """The span of `text` that states the final answer (see the module docstring for the order)."""
    text = text or ""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    hashes = _HASHES.findall(text)
    if hashes:
        return hashes[-1].strip()
    stated = list(_ANSWER_IS.finditer(text))
    if stated:
        tail = text[stated[-1].end() :].strip()
        span = re.split(r"\n|。|[.!?](?=\s|$)", tail, maxsplit=1)[0].strip()
        if _NUMBER.search(span):
            return span
    numbers = [m.group(0) for m in _NUMBER.finditer(text) if re.search(r"\d", m.group(0))]
    return numbers[-1].strip() if numbers else None


def parse_number(span: str | None) -> Number | None:
    """The first number in `span` (after an `=`, the last side), as an exact fraction; None if none."""
    if span is None:
        return None
    span = span.replace("\\!", "").replace("\\,", "").replace("{,}", ",").replace("\\%", "%").replace("$", "")
    span = span.replace("，", ",").replace("−", "-")
    if "=" in span:
        span = span.rsplit("=", 1)[1]
    match = _NUMBER.search(span)
    if match is None:
        return None
    return _to_number(match.group(0))


def _to_number(token: str) -> Number | None:
    token = token.strip()
    percent = token.endswith("%")
    token = token.rstrip("%").strip().replace(" ", "")
    try:
        frac = _FRAC.fullmatch(token)
        if frac:
            sign, num, den = frac.groups()
            value = _decimal(num) / _decimal(den)
            value = -value if sign else value
        elif "/" in token:
            num, den = token.split("/")
            value = _decimal(num) / _decimal(den)
        else:
            value = _decimal(token)
    except (ValueError, ZeroDivisionError):
        return None
    return Number(value, percent)


def _decimal(text: str) -> Fraction:
    text = text.strip()
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")  # thousands separators
    return Fraction(text)


def parse_reference(value) -> Number | None:
    """A reference answer as a number, or None when it is not one (then no correctness check applies).

    Accepts numbers, strings that are a number with at most a unit after it ("72", "3/4", "50%",
    "$1,200", "12 km/h"), and strings that mark their answer (`\\boxed{}`, `#### 72`).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Number(Fraction(value))
    text = str(value).strip()
    marked = last_boxed(text)
    if marked is None and _HASHES.search(text):
        marked = _HASHES.findall(text)[-1]
    if marked is not None:
        return parse_number(marked)
    bare = re.fullmatch(r"\$?\s*([^a-zA-Z\u4e00-\u9fff]+?)\s*([a-zA-Z\u4e00-\u9fff/ ]*)\.?", text)
    if bare is None or re.search(r"\d", bare.group(2) or ""):
        return None
    return parse_number(bare.group(1))


def answers_match(predicted: str | None, reference: Number, tolerance: float = 1e-6) -> bool:
    """Whether the predicted span states the reference number (exactly, or within a relative tolerance)."""
    got = parse_number(predicted)
    if got is None:
        return False
    candidates = [got.value]
    if got.percent != reference.percent:  # 50% vs 0.5, or 0.5 vs 50%
        candidates.append(got.value / 100 if got.percent else got.value * 100)
    return any(_close(c, reference.value, tolerance) for c in candidates)


def _close(a: Fraction, b: Fraction, tolerance: float) -> bool:
    return a == b or abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(b)))
