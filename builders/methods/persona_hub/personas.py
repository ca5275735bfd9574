"""Persona Hub's persona pool: prompt rows for each stage, parsing and checking the model's personas, lineage.

Every persona has a `persona_id` (also its `_row`, the key of its sampling seeds) and records how it was made:
from a text (`source_text`, `relation` = the viewpoint asked for, `hop` 0), or from another persona
(`parent_id`, `parent_persona`, `relation`, `hop` = the parent's hop + 1). Following `parent_id` from any
persona leads back, hop by hop, to the persona made from a text (or given as input).
"""

from __future__ import annotations

import json
import re

from datasets import Dataset, Features, Value

from builders.data import ROW_ID
from builders.dedup.minhash import normalize
from builders.filters.checks import Check
from builders.methods.cosmopedia import truncate_extracts
from builders.methods.persona_hub.prompts import (
    TASKS,
    choose_relations,
    choose_tasks,
    choose_viewpoint,
    few_shot_examples,
    persona_to_persona_prompt,
    synthesis_prompt,
    text_to_persona_prompt,
)

PARSE_ERROR = "_parse_error"
LINEAGE = Features(
    {
        "persona": Value("string"),
        "persona_id": Value("int64"),
        "hop": Value("int32"),
        "relation": Value("string"),
        "source_text": Value("string"),
        "parent_id": Value("int64"),
        "parent_persona": Value("string"),
        ROW_ID: Value("int64"),
    }
)
PERSONA_COLUMNS = list(LINEAGE)

_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")  # a list marker: "- ", "1. "
_LABEL = re.compile(r"^(?:\*\*)?\s*(?:the\s+)?persona\s*\d*\s*(?:\*\*)?\s*[:\-–]\s*(?:\*\*)?\s*", re.I)


# --- prompt rows -------------------------------------------------------------------------------------------------


def source_checks(text_column: str, min_words: int) -> list[Check]:
    """Documents too short to suggest anyone in particular are skipped (`source_too_short`)."""

    def long_enough(row):
        return len((row[text_column] or "").split()) >= min_words, "source_too_short"

    return [long_enough] if min_words > 0 else []


def cut_documents(batch, *, text_column, tokenizer, max_tokens):
    """Documents cut to `max_tokens` tokens of the model's tokenizer (whitespace words without one)."""
    return {text_column: truncate_extracts([t or "" for t in batch[text_column]], tokenizer, max_tokens)}


def text_to_persona_rows(batch, *, text_column, viewpoints, seed, structured):
    """One prompt per document; the document's `_row` becomes the persona's id."""
    n = len(batch[ROW_ID])
    views = [choose_viewpoint(viewpoints, seed, r) for r in batch[ROW_ID]]
    return {
        "prompt": [text_to_persona_prompt(t, v, structured) for t, v in zip(batch[text_column], views)],
        "source_text": batch[text_column],
        "relation": views,
        "hop": [0] * n,
        "persona_id": list(batch[ROW_ID]),
        "parent_id": [None] * n,
        "parent_persona": [None] * n,
    }


def input_persona_rows(batch, *, persona_column):
    """Personas given as input (no text-to-persona stage): hop 0, with no source text."""
    n = len(batch[ROW_ID])
    return {
        "persona": [clean_persona(p or "") for p in batch[persona_column]],
        "persona_id": list(batch[ROW_ID]),
        "hop": [0] * n,
        "relation": [None] * n,
        "source_text": [None] * n,
        "parent_id": [None] * n,
        "parent_persona": [None] * n,
    }


def persona_to_persona_rows(batch, indices, *, relations, per_persona, seed, hop, first_id, structured):
    """`per_persona` prompts per persona of the frontier, each for a different relation.

    The child of the i-th frontier persona by its j-th relation gets the id `first_id + i * per_persona + j`, so
    ids are unique across hops and the same in every rerun.
    """
    out = {name: [] for name in ("prompt", "relation", "hop", "persona_id", "parent_id", "parent_persona")}
    out["source_text"], out[ROW_ID] = [], []
    for i, persona, parent_id in zip(indices, batch["persona"], batch["persona_id"]):
        for j, relation in enumerate(choose_relations(relations, seed, parent_id, hop, per_persona)):
            child_id = first_id + i * per_persona + j
            out["prompt"].append(persona_to_persona_prompt(persona, relation, structured))
            out["relation"].append(relation)
            out["hop"].append(hop)
            out["persona_id"].append(child_id)
            out["parent_id"].append(parent_id)
            out["parent_persona"].append(persona)
            out["source_text"].append(None)
            out[ROW_ID].append(child_id)
    return out


def synthesis_rows(batch, *, tasks, per_persona, few_shot, seed):
    """`per_persona` synthesis prompts per persona, each for a different task; the lineage columns are kept."""
    lineage = [name for name in batch if name != ROW_ID]
    out = {name: [] for name in (*lineage, "task", "prompt", ROW_ID)}
    for i, persona_id in enumerate(batch["persona_id"]):
        for task in choose_tasks(tasks, seed, persona_id, per_persona):
            row_id = persona_id * len(TASKS) + list(TASKS).index(task)  # unique, whatever tasks are configured
            for name in lineage:
                out[name].append(batch[name][i])
            out[ROW_ID].append(row_id)
            examples = few_shot_examples(task, batch["persona"][i], few_shot, seed, row_id)
            out["task"].append(task)
            out["prompt"].append(synthesis_prompt(task, batch["persona"][i], examples))
    return out


# --- parsing and checks ------------------------------------------------------------------------------------------


def clean_persona(text: str) -> str:
    """The first non-empty line, without a 'Persona:' label, list marker, bold marks or surrounding quotes."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = _LABEL.sub("", _MARKER.sub("", line)).replace("**", "").strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'“”":
        line = line[1:-1].strip()
    return " ".join(line.strip('"“”').split())


def parse_personas(batch, *, column, structured):
    """`persona` from the raw generation in `column`; a reply that does not parse leaves a `_parse_error`."""
    personas, errors = [], []
    for raw in batch[column]:
        persona, error = _parse(raw or "", structured)
        personas.append(persona)
        errors.append(error)
    return {"persona": personas, PARSE_ERROR: errors}


def _parse(raw: str, structured: bool) -> tuple[str, str | None]:
    if not structured:
        return clean_persona(raw), None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return "", "unparseable"
    if not isinstance(value, dict) or not isinstance(value.get("persona"), str):
        return "", "unparseable"
    return clean_persona(value["persona"]), None


def persona_checks(min_words: int, max_words: int, drop_truncated: bool) -> list[Check]:
    """Failed request, unparseable, empty, truncated, too short, too long, a copy of its parent; in that order."""

    def request_ok(row):
        return row.get("finish_reason") != "error", "request_failed"

    def parsed(row):
        return row.get(PARSE_ERROR) is None, row.get(PARSE_ERROR)

    def not_empty(row):
        return bool(row["persona"]), "empty"

    def not_truncated(row):
        return row.get("finish_reason") != "length", "truncated"

    def long_enough(row):
        return len(row["persona"].split()) >= min_words, "too_short"

    def short_enough(row):
        return len(row["persona"].split()) <= max_words, "too_long"

    def not_parent(row):
        return not row.get("parent_persona") or normalize(row["persona"]) != normalize(row["parent_persona"]), (
            "copies_parent"
        )

    checks: list[Check] = [request_ok, parsed, not_empty]
    if drop_truncated:
        checks.append(not_truncated)
    return [*checks, long_enough, short_enough, not_parent]


def lineage_only(ds: Dataset) -> Dataset:
    """The persona pool's columns, with one schema for every hop (so hops concatenate)."""
    if len(ds) == 0:
        return Dataset.from_dict({name: [] for name in LINEAGE}, features=LINEAGE)
    return ds.select_columns(PERSONA_COLUMNS).cast(LINEAGE)
