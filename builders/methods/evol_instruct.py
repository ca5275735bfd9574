"""Evol-Instruct: rewrite instructions into harder (in-depth) or rarer (in-breadth) ones, round after round.

Each round draws one operation per row from (seed, row id, round), asks the model to rewrite the row's
current instruction with that operation's template (`builders/prompts/evol_instruct/`), has the model
answer the rewritten instruction, and eliminates the evolutions that failed, each with its reason:
- `identical_to_parent`: the rewrite is the parent instruction again (case, spaces, punctuation aside);
- `no_new_information`: it is nearly the parent (similarity above a threshold), or shorter than the
  parent and made only of the parent's words;
- `copies_prompt`: it repeats words of our rewriting prompt (its markers, its requirements, a "Task:" label);
- `refusal` / `response_too_short`: the model would not, or could barely, answer it.
"""

from __future__ import annotations

import random
import re
from difflib import SequenceMatcher

from builders.dedup.minhash import normalize
from builders.errors import UserError
from builders.filters.checks import Check
from builders.filters.repetition import text_units
from builders.generation.stage import row_seed
from builders.prompts import render

IN_DEPTH = ("add_constraints", "deepen", "concretize", "increase_reasoning", "complicate_input")
IN_BREADTH = ("in_breadth",)
OPERATIONS = IN_DEPTH + IN_BREADTH

# Words of our templates that have no business in an evolved instruction: a rewrite that holds one of them
# copied the prompt instead of following it. Keep in sync with the templates (a test checks each is there).
PROMPT_MARKERS = (
    "original_task",
    "original task",
    "requirements for what you write",
    "these requirements",
    "brand-new task",
    "the following task",
)
# A label in front of the rewrite ("Task:", "Here is the new task:"), as our prompt's "Task:" line invites.
_LABEL = re.compile(
    r"^\W*(?:here is |here's )?(?:the |a |my )?(?:new |rewritten |revised |harder |evolved |more \w+ )?"
    r"(?:task|prompt|instruction)\W*[:：]",
    re.IGNORECASE,
)

_REFUSAL_START = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry\b|i apologi[sz]e|i cannot|i can'?t|i can not|i'?m unable|i am unable|"
    r"i'?m not able|i am not able|i won'?t|as an ai\b|as a language model|as an ai language model|"
    r"抱歉|对不起|很抱歉|我无法|我不能|作为一个?(ai|人工智能|语言模型))",
    re.IGNORECASE,
)


def check_operations(operations: list[str]) -> list[str]:
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown or not operations:
        raise UserError(
            f"config key 'operations' has unknown or no operations ({', '.join(unknown) or 'empty'}); "
            f"choose from {', '.join(OPERATIONS)}"
        )
    return list(operations)


def choose_operation(operations: list[str], seed: int, row_id: int, round_: int) -> str:
    """The operation for one row in one round: the same (seed, row, round) always gives the same one."""
    return random.Random(row_seed(seed, row_id, f"evol-instruct-round-{round_}")).choice(operations)


def evolution_prompt(instruction: str, operation: str, folder: str | None = None) -> str:
    return render(f"evol_instruct/{operation}.jinja", folder=folder, instruction=instruction.strip())


def clean_evolved(text: str) -> str:
    """The rewritten instruction as the model wrote it, without surrounding quotes or whitespace."""
    text = (text or "").strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text.strip("“”").strip()


def similarity(a: str, b: str) -> float:
    """Sequence similarity of the two texts' words (characters for Chinese): 1.0 for the same words in order."""
    return SequenceMatcher(None, text_units(a)[0], text_units(b)[0], autojunk=False).ratio()


def adds_nothing(parent: str, child: str, max_similarity: float) -> bool:
    """No information gained: nearly the parent, or shorter than it and made only of its words."""
    child_units, parent_units = text_units(child)[0], text_units(parent)[0]
    if len(child_units) <= len(parent_units) and set(child_units) <= set(parent_units):
        return True
    return similarity(parent, child) >= max_similarity


def copies_prompt(text: str) -> bool:
    lowered = text.lower()
    return bool(_LABEL.match(text)) or any(marker in lowered for marker in PROMPT_MARKERS)


def is_refusal(text: str) -> bool:
    """Starts like a refusal, or apologises in a short answer (fewer than 80 words)."""
    text = text or ""
    if _REFUSAL_START.match(text):
        return True
    short = len(text_units(text)[0]) < 80
    return short and bool(re.search(r"\bsorry\b|抱歉|对不起", text, re.IGNORECASE))


def instruction_checks(
    parent: str = "instruction", child: str = "evolved", max_similarity: float = 0.9, drop_truncated: bool = True
) -> list[Check]:
    """Eliminations that need only the rewritten instruction; the first failing check names the reason."""

    def request_ok(row):
        return row.get("finish_reason") != "error", "request_failed"

    def not_truncated(row):
        return row.get("finish_reason") != "length", "truncated"

    def not_empty(row):
        return bool(row[child].strip()), "empty"

    def not_identical(row):
        return normalize(row[child]) != normalize(row[parent]), "identical_to_parent"

    def no_prompt_words(row):
        return not copies_prompt(row[child]), "copies_prompt"

    def gains_information(row):
        return not adds_nothing(row[parent], row[child], max_similarity), "no_new_information"

    checks: list[Check] = [request_ok]
    if drop_truncated:
        checks.append(not_truncated)
    return checks + [not_empty, not_identical, no_prompt_words, gains_information]


def response_checks(column: str = "response", min_units: int = 10, drop_truncated: bool = False) -> list[Check]:
    """Eliminations on the answer to the rewritten instruction: failed, truncated (optional), refusal, too short."""

    def request_ok(row):
        return row.get("finish_reason") != "error", "response_failed"

    def not_truncated(row):
        return row.get("finish_reason") != "length", "response_truncated"

    def not_refusal(row):
        return not is_refusal(row[column]), "refusal"

    def long_enough(row):
        return len(text_units(row[column])[0]) >= min_units, "response_too_short"

    checks: list[Check] = [request_ok]
    if drop_truncated:
        checks.append(not_truncated)
    return checks + [not_refusal, long_enough]
