"""Cosmopedia prompts: a seed extract + a format + an audience.

Diversity comes from the combinations: the same extract written as a children's story and as a
researcher's textbook section gives two texts with little in common. Each format lists the audiences
it makes sense for; a row's (format, audience) pairs are drawn from (seed, row id), so a rerun, a
resume or a different `num_proc` builds exactly the same prompts.
"""

from __future__ import annotations

import random

from builders.errors import UserError
from builders.generation.stage import row_seed
from builders.prompts import render

AUDIENCES = ("young_children", "high_school_students", "college_students", "researchers", "general")

FORMATS: dict[str, tuple[str, ...]] = {
    "textbook_narrative": ("young_children", "high_school_students", "college_students", "general"),
    "textbook_academic": ("college_students", "researchers"),
    "blogpost": ("high_school_students", "researchers", "general"),
    "wikihow": ("high_school_students", "general"),
    "story_children": ("young_children",),
    "story_problem_solving": ("young_children", "high_school_students", "general"),
    "story_morality": ("young_children", "general"),
    "story_forum": ("general",),
}


def style_pairs(formats: list[str], audiences: list[str]) -> list[tuple[str, str]]:
    """Every allowed (format, audience) pair among the configured ones; a UserError if there is none."""
    for name in formats:
        if name not in FORMATS:
            raise UserError(f"config key 'formats' has unknown format '{name}'; choose from {', '.join(FORMATS)}")
    for name in audiences:
        if name not in AUDIENCES:
            raise UserError(
                f"config key 'audiences' has unknown audience '{name}'; choose from {', '.join(AUDIENCES)}"
            )
    pairs = [(f, a) for f in formats for a in FORMATS[f] if a in audiences]
    if not pairs:
        raise UserError("no format in `formats` allows an audience in `audiences`; widen one of the two lists")
    return pairs


def choose_styles(pairs: list[tuple[str, str]], seed: int, row_id: int, k: int) -> list[tuple[str, str]]:
    """k distinct (format, audience) pairs for one seed row (all of them if k >= len(pairs))."""
    rng = random.Random(row_seed(seed, row_id, "cosmopedia-style"))
    return rng.sample(pairs, min(k, len(pairs)))


def build_prompt(extract: str, fmt: str, audience: str, topic: str | None = None) -> str:
    return render(f"cosmopedia/{fmt}.jinja", extract=extract.strip(), audience=audience, topic=topic or None)


def truncate_extracts(texts: list[str], tokenizer, max_tokens: int) -> list[str]:
    """Cut each extract to `max_tokens` tokens of the model's tokenizer (whitespace words without one)."""
    if tokenizer is None:
        return [" ".join(t.split()[:max_tokens]) for t in texts]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [
        text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)
        for text, ids in zip(texts, encoded)
    ]
