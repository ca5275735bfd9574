"""OSS-Instruct: a problem and its solution, written by a model inspired by a fragment of real code.

`build_prompt` renders `oss_instruct/problem_solution.jinja`; `parse_problem_solution` splits the answer
into its two sections; `solution_checks` are the filters (each drop with its reason).
"""

from __future__ import annotations

import ast
import re

from builders.filters.checks import Check
from builders.prompts import render

NAMES = {
    "python": "Python",
    "javascript": "JavaScript",
    "typescript": "TypeScript",
    "cpp": "C++",
    "csharp": "C#",
    "php": "PHP",
    "sql": "SQL",
    "shell": "shell (bash)",
}
# A heading line: "## Problem", "**Solution:**", "[Problem Description]", "Problem statement:", ...
_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__|\[)?[ \t]*"
    r"(?P<name>problem(?:[ \t]+(?:statement|description))?|solution)"
    r"[ \t]*(?:\*\*|__|\])?[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_FENCE = re.compile(r"^[ \t]*```[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n(?P<code>.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
# A problem that leans on the fragment the reader will never see. Strong signs always count; weak ones ("the
# given snippet") only when the problem shows no code of its own that they could refer to.
_STRONG_REFERENCE = re.compile(
    r"\b(?:code|snippet|fragment|excerpt|example|function|class)\s+(?:shown\s+|given\s+|provided\s+)?above\b"
    r"|\bthe\s+above\s+(?:code|snippet|fragment|excerpt|function|class)\b"
    r"|\b(?:as\s+shown|shown|given|provided)\s+above\b"
    r"|\b(?:the|this|that|original|provided|given)\s+(?:code\s+)?fragments?\b"
    r"|\boriginal\s+(?:code\s+)?(?:snippet|excerpt)s?\b"
    r"|\binspir(?:ed|ation)\s+(?:by|from)\s+(?:the|this)\s+(?:code|snippet)\b",
    re.IGNORECASE,
)
_WEAK_REFERENCE = re.compile(
    r"\b(?:the|this|provided|given)\s+(?:code\s+)?(?:snippet|excerpt)s?\b|\bthe\s+(?:provided|given)\s+code\b",
    re.IGNORECASE,
)
PYTHON_FENCES = ("", "python", "py", "python3")
PROBLEM_HEADING = "## Problem\n"  # the template's heading; a prefilled answer starts with it


def language_name(lang: str) -> str:
    return NAMES.get(lang, lang.capitalize() if lang else "code")


def build_prompt(snippet: str, lang: str) -> str:
    return render("oss_instruct/problem_solution.jinja", snippet=snippet, lang_name=language_name(lang), fence=lang)


def parse_problem_solution(text: str) -> tuple[str | None, str | None]:
    """(problem, solution) from a model's answer; None for a section that is missing or empty."""
    problem = solution = None
    headings = list(_HEADING.finditer(text or ""))
    for k, match in enumerate(headings):
        end = headings[k + 1].start() if k + 1 < len(headings) else len(text)
        is_problem = match["name"].lower().startswith("problem")
        if is_problem and problem is None and solution is None:
            problem = _section(text, match.end(), end)
        elif not is_problem and problem is not None and solution is None:
            solution = _section(text, match.end(), len(text))  # everything after the heading
            break
    return problem or None, solution or None


def _section(text: str, start: int, end: int) -> str:
    return text[start:end].strip()


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(fence language, code) for each fenced block, in order."""
    return [(m["lang"].lower(), m["code"]) for m in _FENCE.finditer(text or "")]


def solution_code(solution: str, lang: str) -> str | None:
    """The solution's main code block: the longest block fenced in `lang` (or unlabeled); else the longest."""
    blocks = code_blocks(solution)
    if not blocks:
        return None
    wanted = PYTHON_FENCES if lang == "python" else ("", lang)
    same = [code for fence, code in blocks if fence in wanted]
    return max(same or [code for _, code in blocks], key=len)


def refers_to_seed(problem: str) -> bool:
    """Whether the problem points at code the reader does not have (the seed fragment)."""
    if _STRONG_REFERENCE.search(problem):
        return True
    return bool(_WEAK_REFERENCE.search(problem)) and not code_blocks(problem)


def solution_checks(min_problem_words: int = 10) -> list[Check]:
    """Filters on parsed rows (`problem`, `solution`, `lang`); the first failing one names the drop.

    A problem of fewer than `min_problem_words` words cannot state a task (small models echo a heading).
    """

    def has_problem(row):
        return bool(row["problem"]), "missing_problem_section"

    def has_solution(row):
        return bool(row["solution"]), "missing_solution_section"

    def has_code_block(row):
        return solution_code(row["solution"], row["lang"]) is not None, "no_code_block"

    def python_parses(row):
        if row["lang"] != "python":
            return True, None
        try:
            ast.parse(solution_code(row["solution"], row["lang"]))
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False, "solution_does_not_parse"
        return True, None

    def long_enough(row):
        return len(row["problem"].split()) >= min_problem_words, "problem_too_short"

    def self_contained(row):
        return not refers_to_seed(row["problem"]), "problem_refers_to_snippet"

    return [has_problem, has_solution, long_enough, has_code_block, python_parses, self_contained]
