"""Magpie's tags of a query (Xu et al., 2024, section 3 and appendix): task category, difficulty, input quality.

Each tag is one question to a model about the instruction (the first user query), answered as a JSON object.
With structured output (vLLM) the answer can only be that object, its labels only the allowed ones; without it
(an OpenAI-compatible server that is not vLLM) the answer is free text, read with `fit_answer`, and an answer
that holds no such object, or a label outside the allowed ones, is a drop with its reason, never a crash.
Magpie asked with the prompt prefilled with "{" and a stop at "}"; the grammar does that job here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from builders.filters.checks import Check
from builders.methods.generate_steps.steps import fit_answer
from builders.prompts import render

# Magpie's twelve task categories, with what each covers (our wording).
TASK_CATEGORIES = {
    "Information seeking": "asks for facts or explanations about a topic",
    "Reasoning": "needs logical thinking, problem solving or working through complex ideas",
    "Planning": "wants a plan, schedule or strategy for an activity or project",
    "Editing": "asks to rewrite, shorten, correct or polish a given text",
    "Coding & Debugging": "asks to write, explain, review or fix program code",
    "Math": "a mathematical problem, calculation or concept",
    "Role playing": "asks the assistant to act as a character or persona",
    "Data analysis": "asks to interpret data or statistics, or to analyse them",
    "Creative writing": "asks for a story, poem, script or other creative text",
    "Advice seeking": "asks for guidance or a recommendation on a personal or professional matter",
    "Brainstorming": "asks for ideas or possibilities to explore",
    "Others": "fits none of the categories above",
}
DIFFICULTIES = ("very easy", "easy", "medium", "hard", "very hard")
INPUT_QUALITIES = {
    "very poor": "unclear, vague or incoherent; essential information and context are missing",
    "poor": "somewhat unclear or missing important details; an answer needs much clarification first",
    "average": "fairly clear and specific, though some information may be missing",
    "good": "clear and specific, with enough context to see what the user wants",
    "excellent": "very clear, specific and well put, with everything an answer needs",
}


@dataclass(frozen=True)
class Tag:
    name: str  # the stage's name, and the template's: builders/prompts/magpie/<name>.jinja
    fields: dict[str, tuple[str, ...] | None]  # JSON key -> its allowed values (a tuple), a free string (None)
    # or, for `other_tags`, a list of allowed values (a list)
    columns: dict[str, str]  # JSON key -> the output column (Magpie's names)
    generator: str  # the column naming the model that tagged
    variables: dict  # what the template shows besides the instruction (the allowed labels)

    def prompt(self, instruction: str) -> str:
        return render(f"magpie/{self.name}.jinja", instruction=instruction, **self.variables)

    def schema(self, max_chars: int | None = None) -> dict:
        """The JSON schema of the answer; `max_chars` bounds the free strings (a weak model may never close one)."""
        properties = {}
        for key, allowed in self.fields.items():
            if isinstance(allowed, list):
                # at most every other label: a weak model may repeat one without end (repeats are dropped on reading)
                properties[key] = {"type": "array", "items": {"enum": allowed}, "maxItems": len(allowed) - 1}
            elif allowed:
                properties[key] = {"enum": list(allowed)}
            else:
                properties[key] = {"type": "string", **({"maxLength": max_chars} if max_chars else {})}
        return {
            "type": "object",
            "properties": properties,
            "required": list(self.fields),
            "additionalProperties": False,
        }

    def read(self, text: str | None) -> tuple[dict | None, str | None]:
        """The answer's columns, or None and the drop reason: `unparseable_<tag>` when it holds no JSON object,
        `invalid_<tag>` when a key is missing or a label is not an allowed one (case aside: "Very Easy" is read)."""
        answer = _json_object(text or "")
        if answer is None:
            return None, f"unparseable_{self.name}"
        values = {}
        for key, allowed in self.fields.items():
            value = answer.get(key)
            if isinstance(allowed, list):
                value = [_label(v, allowed) for v in value] if isinstance(value, list) else None
                value = None if value is None or None in value else list(dict.fromkeys(value))
            elif allowed:
                value = _label(value, allowed)
            elif isinstance(value, str) and value.strip():
                value = value.strip()
            else:
                value = None
            if value is None:
                return None, f"invalid_{self.name}"
            values[self.columns[key]] = value
        return values, None


def _json_object(text: str) -> dict | None:
    """The JSON object the answer is (a control character inside a string, which the grammar lets through, is
    kept), else the one it holds in free text (`fit_answer`: a code block, or from the first { to the last })."""
    try:
        answer = json.loads(text, strict=False)
    except ValueError:
        found = fit_answer(text, {"json": None})
        answer = json.loads(found) if found else None
    return answer if isinstance(answer, dict) else None


def _label(value, allowed) -> str | None:
    """`value` as the allowed label it names (case and surrounding space aside), else None."""
    if not isinstance(value, str):
        return None
    wanted = value.strip().casefold()
    return next((a for a in allowed if a.casefold() == wanted), None)


CATEGORY_NAMES = list(TASK_CATEGORIES)
TAGS = (
    Tag(
        "task_category",
        {"primary_tag": tuple(CATEGORY_NAMES), "other_tags": CATEGORY_NAMES},
        {"primary_tag": "task_category", "other_tags": "other_task_category"},
        "task_category_generator",
        {"categories": TASK_CATEGORIES},
    ),
    Tag(
        "difficulty",
        {"intent": None, "knowledge": None, "difficulty": DIFFICULTIES},
        {"intent": "intent", "knowledge": "knowledge", "difficulty": "difficulty"},
        "difficulty_generator",
        {"levels": DIFFICULTIES},
    ),
    Tag(
        "input_quality",
        {"explanation": None, "input_quality": tuple(INPUT_QUALITIES)},
        {"explanation": "quality_explanation", "input_quality": "input_quality"},
        "quality_generator",
        {"levels": INPUT_QUALITIES},
    ),
)


def tag_prompts(batch: dict[str, list], *, tag: Tag) -> dict[str, list]:
    return {"_tag_prompt": [tag.prompt(text) for text in batch["instruction"]]}


def read_tags(batch: dict[str, list], *, tag: Tag, generator: str) -> dict[str, list]:
    """The tag's columns from each answer in `_tag_answer` (None where it did not read) and `_tag_error`; an answer
    that did not read because it hit `tag_max_new_tokens` is `truncated_<tag>` (the fix is a larger limit or
    `tag_max_chars`, not a better model)."""
    read = [tag.read(text) for text in batch["_tag_answer"]]
    out = {column: [values[column] if values else None for values, _ in read] for column in tag.columns.values()}
    out[tag.generator] = [generator] * len(read)
    finish = batch.get("finish_reason") or [None] * len(read)
    out["_tag_error"] = [
        f"truncated_{tag.name}" if reason and why == "length" else reason for (_, reason), why in zip(read, finish)
    ]
    return out


def tag_checks() -> list[Check]:
    """The tagging request went through and its answer read."""

    def request_ok(row):
        return row.get("finish_reason") not in ("error", "rejected"), "tag_request_failed"

    def answer_read(row):
        return row["_tag_error"] is None, row["_tag_error"]

    return [request_ok, answer_read]
