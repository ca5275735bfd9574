"""The columns of Magpie's "Filtered" releases that are computed, not generated, and the filter that makes them.

uuid, instruction_length and response_length (characters), language (upper-case ISO 639-1, as Magpie's
lingua tagger writes: "EN"), gen_input_configs (how the query was sampled), and the neighbour columns from
`Run.neighbours`. Magpie-Pro-300K-Filtered keeps rows whose input quality and difficulty reach a level, that are
the first of their group of near-repeats, and (with a reward model we do not run) whose reward is high enough.
"""

from __future__ import annotations

import uuid

from builders.filters.checks import Check
from builders.filters.language import detect_language
from builders.methods.magpie.tags import DIFFICULTIES, INPUT_QUALITIES

# Content-derived ids: a resumed or repeated run writes the same uuid for the same conversation, so its rows
# (and `min_similar_uuid`, which points at another row) compare across runs; uuid4 would differ every time.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://arxiv.org/abs/2406.08464")


def row_uuid(instruction: str, response: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{instruction}\0{response}"))


def language_code(text: str) -> str | None:
    """`detect_language` in Magpie's spelling ("EN", "ZH"); None when the text gives too little to go on."""
    code = detect_language(text)
    return None if code == "und" else code.upper()


def release_columns(batch: dict[str, list], *, input_configs: dict) -> dict[str, list]:
    """uuid, lengths, language and gen_input_configs of each row."""
    pairs = list(zip(batch["instruction"], batch["response"]))
    return {
        "uuid": [row_uuid(i, r) for i, r in pairs],
        "instruction_length": [len(i) for i, _ in pairs],
        "response_length": [len(r) for _, r in pairs],
        "language": [language_code(i) for i, _ in pairs],
        "gen_input_configs": [input_configs] * len(pairs),
    }


def neighbour_columns(batch: dict[str, list], *, uuids: list[str]) -> dict[str, list]:
    """Magpie's names for `Run.neighbours`' columns; the first of a group of repeats becomes its uuid."""
    return {
        "min_neighbor_distance": batch["neighbour_distance"],
        "min_similar_uuid": [uuids[i] if i >= 0 else None for i in batch["first_repeat"]],
    }


def release_checks(
    min_input_quality: str | None = None, min_difficulty: str | None = None, drop_repeats: bool = False
) -> list[Check]:
    """Magpie's filter: input quality and difficulty at least the given level; only the first of near-repeats."""

    def at_least(column, levels, level, reason):
        rank = {name: i for i, name in enumerate(levels)}

        def check(row):
            return row[column] is not None and rank[row[column]] >= rank[level], reason

        return check

    def first_of_repeats(row):
        return row["min_similar_uuid"] in (None, row["uuid"]), "repeated_instruction"

    checks: list[Check] = []
    if min_input_quality:
        checks.append(at_least("input_quality", list(INPUT_QUALITIES), min_input_quality, "low_input_quality"))
    if min_difficulty:
        checks.append(at_least("difficulty", list(DIFFICULTIES), min_difficulty, "too_easy"))
    if drop_repeats:
        checks.append(first_of_repeats)
    return checks
