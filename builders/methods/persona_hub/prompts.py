"""Persona Hub prompts: text-to-persona, persona-to-persona, and "create {data} with {persona}".

A persona is a short description of one specific person. Text-to-persona asks who would read, write, like or
dislike a text (the viewpoint); persona-to-persona asks for someone in a given relation to a persona; synthesis
asks for a task's data (a math problem, a puzzle, ...) written for or by the persona. Every choice a row makes
(viewpoint, relations, tasks, few-shot examples) is drawn from (seed, row id), so reruns build the same prompts.
Templates are in `persona_hub/*.jinja`, few-shot examples in `persona_hub/examples.json`.
"""

from __future__ import annotations

import json
import random
from functools import cache

from builders.errors import UserError
from builders.generation.stage import row_seed
from builders.prompts import TEMPLATES, render

# Who the text-to-persona prompt asks about; recorded as the `relation` of a persona made from a text.
VIEWPOINTS = ("reader", "writer", "admirer", "critic")

# Relations that lead from a persona to another one: the name (recorded as `relation`) and its wording.
RELATIONS: dict[str, str] = {
    "family": "a member of their family or household",
    "colleague": "a colleague, someone they work alongside every day",
    "cared_for": "someone they serve, treat, teach or look after in their work",
    "carer": "someone who serves, treats, teaches or looks after them",
    "mentor": "the person who taught them their trade or shaped their thinking",
    "rival": "a rival, a competitor, or a critic of their work",
    "client": "a customer, client or user of what they make or do",
    "supplier": "someone whose work or goods they depend on",
    "neighbor": "a neighbour or member of their local community outside work",
    "friend": "a close friend from a different walk of life",
}

# Synthesis tasks: the name (recorded as `task`) and its template.
TASKS: dict[str, str] = {
    "math": "persona_hub/math.jinja",
    "reasoning": "persona_hub/reasoning.jinja",
    "instruction": "persona_hub/instruction.jinja",
    "knowledge": "persona_hub/knowledge.jinja",
    "npc": "persona_hub/npc.jinja",
    "tool": "persona_hub/tool.jinja",
}

# The tool task's answer: one function's interface in the function-calling format (the paper's "tool development"
# use case). Structured output holds the model to it; the length bounds stop a small model's endless strings.
ARGUMENT_TYPES = ["string", "number", "integer", "boolean", "array", "object"]
_ARGUMENT = {
    "type": "object",
    "properties": {
        "type": {"enum": ARGUMENT_TYPES},
        "description": {"type": "string", "minLength": 3, "maxLength": 300},
        "items": {"type": "object", "properties": {"type": {"enum": ARGUMENT_TYPES}}, "required": ["type"]},
        "enum": {"type": "array", "items": {"type": "string", "maxLength": 80}},
    },
    "required": ["type", "description"],
    "additionalProperties": False,
}
TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{2,63}$"},
        "description": {"type": "string", "minLength": 10, "maxLength": 500},
        "parameters": {
            "type": "object",
            "properties": {
                "type": {"enum": ["object"]},
                "properties": {"type": "object", "additionalProperties": _ARGUMENT},
                "required": {"type": "array", "items": {"type": "string", "maxLength": 64}},
            },
            "required": ["type", "properties", "required"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "description", "parameters"],
    "additionalProperties": False,
}

PERSONA_SCHEMA = {
    "type": "object",
    "properties": {"persona": {"type": "string", "minLength": 10, "maxLength": 400}},
    "required": ["persona"],
    "additionalProperties": False,
}


def check_names(key: str, values: list[str], known) -> list[str]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise UserError(f"config key '{key}' has unknown value '{unknown[0]}'; choose from {', '.join(known)}")
    if not values:
        raise UserError(f"config key '{key}' is empty; choose one or more of {', '.join(known)}")
    return list(values)


def choose_viewpoint(viewpoints: list[str], seed: int, row_id: int) -> str:
    return random.Random(row_seed(seed, row_id, "persona-viewpoint")).choice(viewpoints)


def choose_relations(relations: list[str], seed: int, persona_id: int, hop: int, k: int) -> list[str]:
    """k distinct relations for one persona at one hop (all of them if k >= len(relations))."""
    rng = random.Random(row_seed(seed, persona_id, f"persona-relation-{hop}"))
    return rng.sample(relations, min(k, len(relations)))


def choose_tasks(tasks: list[str], seed: int, row_id: int, k: int) -> list[str]:
    rng = random.Random(row_seed(seed, row_id, "persona-task"))
    return rng.sample(tasks, min(k, len(tasks)))


def text_to_persona_prompt(text: str, viewpoint: str, structured: bool) -> str:
    return render("persona_hub/text_to_persona.jinja", text=text.strip(), viewpoint=viewpoint, structured=structured)


def persona_to_persona_prompt(persona: str, relation: str, structured: bool) -> str:
    return render(
        "persona_hub/persona_to_persona.jinja", persona=persona, relation=RELATIONS[relation], structured=structured
    )


@cache
def _examples() -> dict[str, list[dict]]:
    return json.loads((TEMPLATES / "persona_hub" / "examples.json").read_text())


def few_shot_examples(task: str, persona: str, k: int, seed: int, row_id: int) -> list[dict]:
    """Up to k of the task's examples (none of them about `persona` itself), drawn from (seed, row id)."""
    if k <= 0:
        return []
    pool = [ex for ex in _examples()[task] if ex["persona"] != persona]
    return random.Random(row_seed(seed, row_id, "persona-shots")).sample(pool, min(k, len(pool)))


def synthesis_prompt(task: str, persona: str, examples: list[dict] = ()) -> str:
    return render(TASKS[task], persona=persona, examples=list(examples))
