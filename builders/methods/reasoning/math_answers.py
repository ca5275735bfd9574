"""Final answers of math questions: extract them from a model's answer and compare them with a reference.

Extraction looks, in order, for the last `\\boxed{...}` (nested braces), a GSM8K-style `#### value`, the
text after "the answer is" / "答案是" (and similar), and finally the last number of the text (the whole
inline formula when the number sits in one: `$2\\sqrt{3}$`, not `3`).

Comparison reads the whole answer, never a number found inside it (`2\\sqrt{3}` is not 2, `12\\pi` is not 12):
- normalise: `$`, spacing commands, `\\left` / `\\right`, units (`\\text{ cm}`, trailing words such as `km/h`
  or `apples`, trailing Chinese such as `个`), a leading "approximately" / "about", and all before the last
  `=` go; thousands separators go (`1,000`, `1{,}000`); `\\frac` (`\\dfrac`, `\\tfrac`), `\\sqrt` (and
  `\\sqrt[n]`), `\\pi`, `\\cdot`, `\\times`, `\\div`, `^` and implicit products (`2\\sqrt{3}`, `12\\pi`)
  become arithmetic;
- evaluate: the arithmetic is parsed with `ast`, and only numbers, `+ - * / **`, `sqrt` and `pi` are
  allowed; rationals stay exact fractions (`3/4`, `\\frac{3}{4}` and `0.75` are equal), irrationals are floats;
- compare: two numbers match exactly or within a relative tolerance; a percentage matches both its number and
  its fraction (`50%` matches `50` and `0.5`, and `0.5` matches a reference of `50%`); when neither side is a
  number (`x+1`, `(1, 2)`), the two normalised strings must be equal; a number never matches a non-number.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from fractions import Fraction

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|=|:)\s*:?|(?:答案|结果|最终答案)\s*(?:是|为|：|:|=)", re.IGNORECASE
)
_ANSWER_IS_ZH = re.compile(r"(?:最终答案|答案|结果)\s*(?:是|为|：|:|=)")
_CLAUSE_END = re.compile(r"\n|[。；;！!？?]|[，,](?!\d{3})|[.](?=\s|$)")
_NUMBER = re.compile(
    r"""-?\s*\\d?frac\s*\{\s*-?[\d.,]+\s*\}\s*\{\s*-?[\d.,]+\s*\}   # \frac{3}{4}
      | -?\d[\d,]*(?:\.\d+)?\s*/\s*\d[\d,]*(?:\.\d+)?                # 3/4
      | -?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?\s*%?                    # 1,200.5  50%  1e-3
      | -?\.\d+\s*%?                                                   # .5
    """,
    re.VERBOSE,
)
_INLINE_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)


@dataclass(frozen=True)
class Answer:
    text: str  # the normalised answer, compared as a string when a side is not a number
    value: Fraction | float | None = None  # None when the answer does not evaluate to a number
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
    numbers = [m for m in _NUMBER.finditer(text) if re.search(r"\d", m.group(0))]
    if not numbers:
        return None
    last = numbers[-1]
    for formula in _INLINE_MATH.finditer(text):
        if formula.start() < last.start() and last.end() <= formula.end():
            return next(group for group in formula.groups() if group is not None).strip()
    return last.group(0).strip()


def stated_answer_zh(text: str) -> str | None:
    """The span after the last Chinese answer marker (答案是, 最终答案为, 结果是, ...), up to the end of its clause;
    None when there is no marker or no number after it. math-verify knows only English markers."""
    stated = list(_ANSWER_IS_ZH.finditer(text or ""))
    if not stated:
        return None
    span = _CLAUSE_END.split(text[stated[-1].end() :].strip(), maxsplit=1)[0].strip()
    return span if _NUMBER.search(span) else None


def fold_thousands(text: str) -> str:
    """`1 000`, `1\\,000`, `1,000` -> `1000` (math-verify reads `1 000` as the product 1 * 0)."""
    return _THOUSANDS.sub(lambda m: re.sub(r"\D", "", m.group(0)), text)


def parse_answer(span: str | None) -> Answer | None:
    """`span` normalised, with its value when it is a number; None when nothing is left of it."""
    if span is None:
        return None
    arithmetic, percent = _normalise(span)
    text = re.sub(r"\s+", "", arithmetic)
    if not text:
        return None
    return Answer(text, _evaluate(arithmetic), percent)


def parse_number(span: str | None) -> Answer | None:
    """`span` as a number (the whole span, see the module docstring); None when it is not one."""
    answer = parse_answer(span)
    return answer if answer is not None and answer.value is not None else None


def parse_reference(value) -> Answer | None:
    """A reference answer, or None when it is not a math answer (then no correctness check applies).

    Accepts numbers, strings that are a number with at most a unit after it ("72", "3/4", "50%", "$1,200",
    "12 km/h", "2\\sqrt{3}"), and strings that mark their answer (`\\boxed{}`, `#### 72`); a marked answer
    that is not a number ("\\boxed{x+1}") is compared as a normalised string.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return Answer(str(value), Fraction(repr(value)))
        except ValueError:  # nan, inf
            return None
    text = str(value).strip()
    marked = last_boxed(text)
    if marked is None and _HASHES.search(text):
        marked = _HASHES.findall(text)[-1]
    if marked is not None:
        return parse_answer(marked)
    return parse_number(text)


def answers_match(predicted: str | None, reference: Answer, tolerance: float = 1e-6) -> bool:
    """Whether the predicted span states the reference: the same number (exactly, or within a relative
    tolerance), or, when neither is a number, the same normalised string. A number never matches a non-number."""
    got = parse_answer(predicted)
    if got is None or (got.value is None) != (reference.value is None):
        return False
    if got.value is None:
        return (got.text, got.percent) == (reference.text, reference.percent)
    candidates = [got.value]
    if got.percent != reference.percent:  # 50% vs 0.5, or 0.5 vs 50%
        candidates.append(got.value / 100 if got.percent else got.value * 100)
    return any(_close(c, reference.value, tolerance) for c in candidates)


def _close(a: Fraction | float, b: Fraction | float, tolerance: float) -> bool:
    if a == b:
        return True
    try:
        return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(b)))
    except OverflowError:
        return False


# --- normalising ----------------------------------------------------------------------------------------------

_CHARACTERS = {
    "−": "-",
    "，": ",",
    "％": "%",
    "×": r"\times ",
    "·": r"\cdot ",
    "÷": r"\div ",
    "π": r"\pi ",
    "√": r"\sqrt",
}
_DROPPED = re.compile(
    r"\\\$|\$|\\[(\[\])]|\\[,;:! ]|~|\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|°"
    r"|\\(?:left|right|displaystyle|textbf|mathbf|boxed)\b"
)
_UNIT_TEXT = re.compile(r"\\(?:text|textrm|mathrm|mbox|operatorname)\s*\{([^{}]*)\}(?:\s*\^\s*\{?\d+\}?)?")
_QUALIFIER = re.compile(r"^(?:approximately|approx\.?|about|around|roughly|exactly|大约|约为|约)\s*", re.IGNORECASE)
_UNIT_WORDS = re.compile(r"(?<=[\d%)}])(?:\s+[A-Za-z][A-Za-z./]*(?:\^\{?\d+\}?|[²³])?)+$")
_UNIT_ZH = re.compile(r"(?<=[\d%)}])\s*[\u4e00-\u9fff]+$")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:(?:,|\\,|[ \u00a0\u202f])\d{3})+(?!\d)")


def _normalise(span: str) -> tuple[str, bool]:
    """(the span as arithmetic, or as normalised LaTeX where it is not arithmetic; whether it was a percentage)."""
    text = span.strip()
    for character, replacement in _CHARACTERS.items():
        text = text.replace(character, replacement)
    text = text.replace(r"\%", "%").replace("{,}", ",")
    text = fold_thousands(text)  # 1,000  1\,000  1 000
    text = re.sub(r"\s*\bper\s*cent\b|\s*\bpercent\b", "%", text, flags=re.IGNORECASE)
    text = _DROPPED.sub(" ", text)
    text = _UNIT_TEXT.sub(lambda m: m.group(1) if re.search(r"\d", m.group(1)) else " ", text)
    text = re.sub(r"≈|\\approx\b", "=", text)
    if "=" in text and "," not in text.rsplit("=", 1)[0]:  # `x = 6`, but not `x = 6, y = 7`
        text = text.rsplit("=", 1)[1]
    text = text.strip().rstrip(".。").strip()
    text = _QUALIFIER.sub("", text).strip("¥€£ ")
    text = _UNIT_ZH.sub("", _UNIT_WORDS.sub("", text)).strip()
    percent = text.endswith("%")
    text = text.removesuffix("%")
    return _arithmetic(text), percent


_COMMAND = re.compile(r"\\([a-zA-Z]+)")
_FRACTIONS = {"frac", "dfrac", "tfrac", "cfrac"}
_SYMBOLS = {"pi": " pi ", "cdot": "*", "times": "*", "div": "/"}


def _arithmetic(text: str) -> str:
    """LaTeX to Python arithmetic: `\\frac{a}{b}` -> `((a)/(b))`, `\\sqrt{a}` -> `sqrt(a)`, `^` -> `**`, `{}` -> `()`.
    Commands it does not know stay as they are (the result is then not a number)."""
    return _convert(text, 0, None)[0]


def _convert(text: str, i: int, closing: str | None) -> tuple[str, int]:
    parts = []
    while i < len(text):
        char = text[i]
        if char == closing:
            return "".join(parts), i + 1
        if char == "{":
            inner, i = _convert(text, i + 1, "}")
            parts.append(f"({inner})")
            continue
        command = _COMMAND.match(text, i) if char == "\\" else None
        if command is None:
            parts.append("**" if char == "^" else char)
            i += 1
            continue
        name, i = command.group(1), command.end()
        if name in _FRACTIONS:
            numerator, i = _argument(text, i)
            denominator, i = _argument(text, i)
            parts.append(f"(({numerator})/({denominator}))")
        elif name == "sqrt":
            index = re.match(r"\s*\[([^\]]*)\]", text[i:])
            if index:
                i += index.end()
            radicand, i = _argument(text, i)
            parts.append(f"(({radicand})**(1/({_arithmetic(index.group(1))})))" if index else f"sqrt({radicand})")
        else:
            parts.append(_SYMBOLS.get(name, command.group(0)))
    return "".join(parts), i


def _argument(text: str, i: int) -> tuple[str, int]:
    """One argument of a command: a `{...}` group, a command (`\\frac\\pi2`), or a single character (`\\frac12`)."""
    while i < len(text) and text[i].isspace():
        i += 1
    if i == len(text):
        return "", i
    if text[i] == "{":
        return _convert(text, i + 1, "}")
    command = _COMMAND.match(text, i)
    end = command.end() if command else i + 1
    return _arithmetic(text[i:end]), end


# --- evaluating -----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|([a-zA-Z]+)|(\*\*|[-+*/()]))")
_FUNCTIONS = {"sqrt"}
_CONSTANTS = {"pi": math.pi}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_BITS = 10_000  # exact powers larger than this many bits are computed as floats (and may overflow)


def _evaluate(text: str) -> Fraction | float | None:
    """The value of arithmetic `text`, or None when it is anything else (a variable, a list, a stray command)."""
    expression = _explicit_products(text)
    if expression is None:
        return None
    try:
        value = _value(ast.parse(expression, mode="eval").body, expression)
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    return value if isinstance(value, Fraction) or math.isfinite(value) else None


def _explicit_products(text: str) -> str | None:
    """`2sqrt(3)` -> `2*sqrt(3)`, `12 pi` -> `12*pi`, `(1)(2)` -> `(1)*(2)`; None for anything not arithmetic
    (two numbers side by side are not a product: `1 000` is a malformed number, not zero)."""
    tokens: list[tuple[str, str]] = []  # (kind, text), kind: number, name or symbol
    text, i = text.strip(), 0
    while i < len(text):
        match = _TOKEN.match(text, i)
        if match is None:
            return None
        number, name, symbol = match.groups()
        kind, token = ("number", number) if number else ("name", name) if name else ("symbol", symbol)
        if tokens:
            last_kind, last = tokens[-1]
            if kind == last_kind == "number":
                return None
            operand_before = last_kind == "number" or (last_kind == "name" and last not in _FUNCTIONS) or last == ")"
            if operand_before and (kind != "symbol" or token == "("):
                tokens.append(("symbol", "*"))
        tokens.append((kind, token))
        i = match.end()
    return "".join(token for _, token in tokens)


def _value(node: ast.expr, source: str) -> Fraction | float:
    match node:
        case ast.Constant(value=int() | float()) if not isinstance(node.value, bool):
            return Fraction(ast.get_source_segment(source, node))  # "0.1" is exactly 1/10
        case ast.Name(id=name) if name in _CONSTANTS:
            return _CONSTANTS[name]
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return _UNARY[type(op)](_value(operand, source))
        case ast.BinOp(left=left, op=ast.Pow(), right=right):
            return _power(_value(left, source), _value(right, source))
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            return _BINARY[type(op)](_value(left, source), _value(right, source))
        case ast.Call(func=ast.Name(id="sqrt"), args=[argument], keywords=[]):
            return _sqrt(_value(argument, source))
    raise ValueError(f"not arithmetic: {ast.dump(node)}")


def _power(base: Fraction | float, exponent: Fraction | float) -> Fraction | float:
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        bits = max(base.numerator.bit_length(), base.denominator.bit_length()) if isinstance(base, Fraction) else 0
        if bits * abs(exponent.numerator) > _MAX_BITS:
            base = float(base)
        return base ** int(exponent)
    if base < 0:
        raise ValueError("a fractional power of a negative number")
    if isinstance(base, Fraction) and exponent == Fraction(1, 2):
        return _sqrt(base)
    return float(base) ** float(exponent)


def _sqrt(value: Fraction | float) -> Fraction | float:
    if value < 0:
        raise ValueError("the square root of a negative number")
    if isinstance(value, Fraction):
        numerator, denominator = math.isqrt(value.numerator), math.isqrt(value.denominator)
        if numerator**2 == value.numerator and denominator**2 == value.denominator:
            return Fraction(numerator, denominator)
    return math.sqrt(value)
