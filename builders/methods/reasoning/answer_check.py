"""The reasoning recipe's final-answer check: Hugging Face's math-verify (open-r1's accuracy reward) decides.

    answer_is_right("So the answer is \\boxed{\\frac{3}{4}}.", "0.75")       # True
    answer_is_right("答案是 70 页。验算：70 - 30 = 40。", "70")                # True (math-verify alone reads 40)
    answer_is_right("The capital is Paris.", "Paris")                         # None: not a math reference

math-verify extracts the model's answer (the last `\\boxed{}`, "the final answer is", else the last formula
or number), parses both sides to sympy and compares them numerically and symbolically. Our own checker
(`math_answers`) stays only where a test in tests/test_reasoning.py shows math-verify gets it wrong (the
comparison of the two on the tests' cases and on real SmolLM2 answers: docs/reasoning.md):
- whether a reference is a math answer at all (`parse_reference`): math-verify reads "3 apples and 4 pears"
  as 4 and "Paris" as nothing, so it would check, and drop, answers to questions that have no number to match;
- Chinese answer markers (答案是, 最终答案为, ...): math-verify knows English ones only and takes the last
  number, often a check the model wrote after its answer; it reads the span after the marker instead;
- thousands separated by a space or `\\,` inside `\\boxed{}`: math-verify reads `1 000` as the product 1 * 0.
"""

from __future__ import annotations

import math
import threading
from functools import cache

from builders.methods.reasoning.math_answers import fold_thousands, last_boxed, parse_reference, stated_answer_zh


def answer_is_right(answer: str, reference, tolerance: float = 1e-6) -> bool | None:
    """Whether `answer` states `reference`; None when the reference is not a math answer (nothing to check).

    `tolerance`: math-verify rounds floats to decimal places, `-log10(tolerance)` of them (6 by default).
    """
    if parse_reference(reference) is None:
        return None
    parse, verify = _math_verify()
    # math-verify's timeouts use SIGALRM, which only the main thread may set; elsewhere it runs without one
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold = _parse(parse, str(reference).strip(), timeout)
    span = stated_answer_zh(answer)
    if span is not None:
        target = _parse(parse, span, timeout)
    else:
        boxed = last_boxed(answer)
        target = parse(
            answer if boxed is None else answer.replace(boxed, fold_thousands(boxed)), parsing_timeout=timeout
        )
    decimals = 15 if tolerance <= 0 else max(0, round(-math.log10(tolerance)))
    return bool(verify(gold, target, float_rounding=decimals, timeout_seconds=timeout))


def math_text(text: str) -> str:
    """What math-verify should read: a bare LaTeX formula (`16\\pi`, `\\sqrt{12}`: a command, but no `$` or
    `\\boxed`) wrapped in `$...$`; math-verify reads `16\\pi` alone as 16 and `\\sqrt{12}` as nothing."""
    bare_latex = "\\" in text and "$" not in text and "\\boxed" not in text and "\\(" not in text
    return f"${text}$" if bare_latex else text


def _parse(parse, text: str, timeout: int | None) -> list:
    return parse(math_text(text), parsing_timeout=timeout)


@cache
def _math_verify():
    from math_verify import parse, verify  # sympy and an ANTLR parser: imported on the first check only

    return parse, verify
