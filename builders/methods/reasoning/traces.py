"""Reasoning traces: split a thinking model's output into trace and answer, and the checks that judge it.

A thinking model writes `<think> ... </think>` and then its answer. Three ways the output can begin:
- the model opens the block itself (Qwen3 with `enable_thinking`): `<think>trace</think>answer`;
- the chat template opens it (DeepSeek-R1 distills end the generation prompt with `<think>\\n`), or we
  prefilled the assistant turn with the opening tag: the output starts inside the block, `trace</think>answer`;
- the model does not think at all: no tags.

`parse_thinking` handles all three without being told which one happened: a closing tag with no opening
tag before it means the output started inside the block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builders.filters.checks import Check
from builders.filters.language import detect_language
from builders.filters.repetition import repeated_ngram_fraction
from builders.methods.reasoning.answer_check import answer_is_right

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


@dataclass
class Thinking:
    reasoning: str | None  # the trace, None when the block never closed (or never opened)
    answer: str  # what follows the closing tag ("" when there is none)
    closed: bool  # a closing tag was found
    opened: bool  # an opening tag was found, or the output started inside the block


def parse_thinking(
    text: str, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG, started_inside: bool = False
) -> Thinking:
    """Split `text` into (reasoning, answer).

    `started_inside` says the opening tag was in the prompt (template or prefill); a closing tag with no
    opening tag before it implies the same, so the flag only matters for outputs that never close the block.
    """
    text = text or ""
    close = text.find(close_tag)
    open_ = text.find(open_tag)
    if close == -1:
        return Thinking(None, "", closed=False, opened=started_inside or open_ != -1)
    start = open_ + len(open_tag) if -1 < open_ < close else 0
    reasoning = text[start:close].strip()
    answer = text[close + len(close_tag) :].strip()
    return Thinking(reasoning, answer, closed=True, opened=True)


def assistant_content(reasoning: str, answer: str, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG) -> str:
    """The assistant turn an SFT trainer sees: the trace inside the tags, then the answer."""
    return f"{open_tag}\n{reasoning}\n{close_tag}\n\n{answer}"


def unclosed_trace(text: str, open_tag: str = OPEN_TAG) -> str:
    """The trace of an output whose block never closed: everything after the opening tag (or all of it)."""
    text = text or ""
    return text.split(open_tag, 1)[1].strip() if open_tag in text else text.strip()


def needs_forcing(closed: bool, finish_reason: str, force_unclosed: bool = False) -> bool:
    """Budget forcing: whether to close this output's trace ourselves and ask the model for the answer after it.

    A trace cut off by the token limit always is. A trace the model ended itself without closing the block (small
    models answer inside it and stop) is only with `force_unclosed`; otherwise the checks drop it as
    `no_closed_think_block`. A failed request is never forced: it stays a `request_failed` drop.
    """
    if closed or finish_reason == "error":
        return False
    return finish_reason == "length" or force_unclosed


def forced_answer_prefill(text: str, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG) -> str:
    """Budget forcing: the reply so far (prefill + output), closed, so that the model writes the answer next."""
    return f"{open_tag}\n{unclosed_trace(text, open_tag)}\n{close_tag}\n\n"


def template_opens_think(tokenizer, open_tag: str = OPEN_TAG, chat_template_kwargs: dict | None = None) -> bool:
    """Whether the chat template's generation prompt already opens the think block (DeepSeek-R1 distills)."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "1+1?"}],
        tokenize=False,
        add_generation_prompt=True,
        **(chat_template_kwargs or {}),
    )
    return rendered.rstrip().endswith(open_tag)


def question_text(instruction: str, input_: str | None) -> str:
    """The user's turn: the instruction, then its input (Alpaca style) after a blank line."""
    instruction = (instruction or "").strip()
    input_ = (input_ or "").strip()
    return f"{instruction}\n\n{input_}" if input_ else instruction


# Code and formulas are written in Latin letters whatever the language of the prose around them.
_NOT_PROSE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`|\$\$.*?\$\$|\\\[.*?\\\]|\$[^$\n]*\$|\\\(.*?\\\)", re.DOTALL)


def prose(text: str) -> str:
    """The text without code blocks, inline code and LaTeX math: what the language check should look at."""
    return _NOT_PROSE.sub(" ", text or "")


# --- checks --------------------------------------------------------------------------------------------------


def reasoning_checks(
    *,
    question_column: str = "question",
    reference_column: str | None = None,
    drop_truncated: bool = True,
    check_language: bool = True,
    max_repeated_ngrams: float | None = 0.3,
    tolerance: float = 1e-6,
    open_tag: str = OPEN_TAG,
    close_tag: str = CLOSE_TAG,
) -> list[Check]:
    """Checks on parsed rows (`reasoning`, `answer`, `think_closed`, `finish_reason`), in this order:
    failed request, truncated, no closed think block, a stray tag left in the trace or the answer, empty answer,
    answer in another language than the question, looping trace, wrong final answer (only where the row has a
    math reference answer: a number, or a marked `\\boxed{}` / `####` answer).
    """

    def request_ok(row):
        return row.get("finish_reason") != "error", "request_failed"

    def not_truncated(row):
        return row.get("finish_reason") != "length", "truncated"

    def think_closed(row):
        return bool(row["think_closed"]), "no_closed_think_block"

    def well_formed(row):
        stray = any(tag in (row["reasoning"] or "") + row["answer"] for tag in (open_tag, close_tag))
        return not stray, "malformed_think_block"

    def has_answer(row):
        return bool((row["answer"] or "").strip()), "empty_answer"

    def same_language(row):
        asked, answered = detect_language(prose(row[question_column])), detect_language(prose(row["answer"]))
        return asked == "und" or answered == "und" or asked == answered, "answer_language_differs"

    def no_loop(row):
        return repeated_ngram_fraction(row["reasoning"] or "") <= max_repeated_ngrams, "reasoning_loops"

    def correct(row):  # math-verify, and ours where it misses (builders.methods.reasoning.answer_check)
        right = answer_is_right(row["answer"], row.get(reference_column), tolerance)
        return right is not False, "wrong_answer"  # None: no reference, or not a math answer

    checks: list[Check] = [request_ok]
    if drop_truncated:
        checks.append(not_truncated)
    checks += [think_closed, well_formed, has_answer]
    if check_language:
        checks.append(same_language)
    if max_repeated_ngrams is not None:
        checks.append(no_loop)
    if reference_column:
        checks.append(correct)
    return checks
