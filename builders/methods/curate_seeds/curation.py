"""Seed curation for Cosmopedia: the steps between clustering and the filtered seed set.

    central = central_texts(seeds, "text", central_rows(seeds, n, 8))    # each cluster's most central seeds
    prompts = cluster_prompts(central, sizes, template, max_chars=500)   # one labelling prompt per cluster
    labels = read_labels(run.generate(prompts, ...))                     # topic + score, or None when unparseable
    seeds = seeds.map(add_labels, fn_kwargs={"labels": labels})          # topic, educational_score per seed
    seeds = run.filter(seeds, curation_checks(min_score), stage="educational_value")

The card gets `cluster_table` (topic, size, score, kept or dropped, per cluster).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasets import Dataset, concatenate_datasets

from builders.data import ROW_ID, load_rows
from builders.errors import UserError
from builders.filters.checks import Check
from builders.methods.curate_seeds.clustering import CLUSTER_ID
from builders.methods.curate_seeds.prompts import SCORE_MAX, SCORE_MIN, label_prompt, parse_label

LABEL_COLUMNS = ("topic", CLUSTER_ID, "educational_score")
UNPARSEABLE = "label_unparseable"
LOW_VALUE = "low_educational_value"


@dataclass
class Label:
    cluster: int
    size: int
    topic: str | None
    score: int | None
    answer: str  # the model's raw answer, shown in the card when it did not parse
    example: str  # the cluster's most central text


# --- input ------------------------------------------------------------------------------------------------------


def append_inputs(seeds: Dataset, extra: list[dict], text_column: str, num_samples: int | None) -> Dataset:
    """`seeds` followed by the rows of each `{path, column?, split?}` in `extra`, as `text_column` + `source`.

    Inputs differ in their other columns, so a mixed input keeps only the text and where it came from.
    """
    parts = [seeds.select_columns([text_column]).add_column("source", ["dataset"] * len(seeds))]
    for i, spec in enumerate(extra):
        if not isinstance(spec, dict) or "path" not in spec or set(spec) - {"path", "column", "split"}:
            raise UserError(
                f"extra_datasets[{i}] must be a mapping {{path, column?, split?}}, got {spec!r}; "
                "e.g. {path: data/web.jsonl, column: text}"
            )
        column = spec.get("column", text_column)
        rows = load_rows(spec["path"], spec.get("split", "train"), None, num_samples, [column], "extra_datasets")
        rows = rows.select_columns([column])
        if column != text_column:
            rows = rows.rename_column(column, text_column)
        parts.append(rows.add_column("source", [str(spec["path"])] * len(rows)))
    mixed = concatenate_datasets([p.cast(parts[0].features) for p in parts])
    return mixed.add_column(ROW_ID, list(range(len(mixed))))


def describe_inputs(dataset: str, text_column: str, extra: list[dict]) -> str:
    """The card's "seed data" line."""
    parts = [f"`{dataset}` (column `{text_column}`)"]
    parts += [f"`{x['path']}` (column `{x.get('column', text_column)}`)" for x in extra]
    return " + ".join(parts)


def long_enough(column: str, min_chars: int) -> Check:
    def check(row: dict) -> tuple[bool, str | None]:
        return (len((row[column] or "").strip()) >= min_chars, "too_short")

    return check


# --- labelling ----------------------------------------------------------------------------------------------------


def central_texts(seeds: Dataset, text_column: str, central_rows: dict[int, list[int]]) -> dict[int, list[str]]:
    """The texts of each cluster's central rows (row positions in `seeds`), read in one `select`."""
    positions = [r for rows in central_rows.values() for r in rows]
    text_at = dict(zip(positions, seeds.select(positions)[text_column]))
    return {c: [text_at[r] for r in rows] for c, rows in central_rows.items()}


def cluster_prompts(central: dict[int, list[str]], sizes: np.ndarray, template: str, max_chars: int) -> Dataset:
    """One row per non-empty cluster: its id (also the `_row` id its sampling seed derives from), size and prompt."""
    clusters = [c for c in sorted(central) if sizes[c] > 0 and central[c]]
    return Dataset.from_dict(
        {
            ROW_ID: clusters,
            CLUSTER_ID: clusters,
            "size": [int(sizes[c]) for c in clusters],
            "example": [central[c][0] for c in clusters],
            "prompt": [label_prompt(central[c], template, max_chars) for c in clusters],
        }
    )


def read_labels(generated: Dataset, answer_column: str = "answer") -> dict[int, Label]:
    """Each cluster's parsed label; an answer that failed, was cut off unparsed, or is garbled gives topic None."""
    labels = {}
    for row in generated:
        parsed = parse_label(row[answer_column]) if row["finish_reason"] != "error" else None
        labels[row[CLUSTER_ID]] = Label(
            cluster=row[CLUSTER_ID],
            size=row["size"],
            topic=parsed.topic if parsed else None,
            score=parsed.educational_score if parsed else None,
            answer=row[answer_column] or "",
            example=row["example"],
        )
    return labels


def add_labels(batch: dict[str, list], labels: dict[int, Label]) -> dict[str, list]:
    """The cluster's topic and score on each seed (None for a cluster whose label did not parse)."""
    found = [labels.get(c) for c in batch[CLUSTER_ID]]
    return {
        "topic": [label.topic if label else None for label in found],
        "educational_score": [label.score if label else None for label in found],
    }


def curation_checks(min_score: int) -> list[Check]:
    """A seed stays when its cluster was labelled and scored at least `min_score`."""

    def labelled(row: dict) -> tuple[bool, str | None]:
        return (row["educational_score"] is not None, UNPARSEABLE)

    def educational(row: dict) -> tuple[bool, str | None]:
        return (row["educational_score"] >= min_score, LOW_VALUE)

    return [labelled, educational]


def kept_clusters(labels: dict[int, Label], min_score: int) -> set[int]:
    return {c for c, label in labels.items() if label.score is not None and label.score >= min_score}


def cluster_summary(labels: dict[int, Label], kept: set[int]) -> list[dict]:
    return [
        {"cluster": c, "topic": x.topic, "seeds": x.size, "educational_score": x.score, "kept": c in kept}
        for c, x in sorted(labels.items())
    ]


# --- the card ----------------------------------------------------------------------------------------------------


def cluster_table(labels: dict[int, Label], min_score: int, example_chars: int = 90) -> str:
    """A Markdown table of the clusters, largest first: topic, seeds, score, kept or why dropped."""
    kept = kept_clusters(labels, min_score)
    lines = [
        f"Educational value is scored from {SCORE_MIN} to {SCORE_MAX}; clusters under {min_score} are dropped.",
        "",
        "| cluster | topic | seeds | score | kept | most central seed |",
        "|---:|---|---:|---:|---|---|",
    ]
    for label in sorted(labels.values(), key=lambda x: (-x.size, x.cluster)):
        if label.score is None:
            topic, verdict = f"unparseable answer: `{_cell(label.answer, 60)}`", f"no ({UNPARSEABLE})"
        else:
            topic, verdict = _cell(label.topic, 80), "yes" if label.cluster in kept else f"no ({LOW_VALUE})"
        score = "-" if label.score is None else label.score
        lines.append(
            f"| {label.cluster} | {topic} | {label.size} | {score} | {verdict} | {_cell(label.example, example_chars)} |"
        )
    total = sum(x.size for x in labels.values())
    kept_rows = sum(labels[c].size for c in kept)
    lines += ["", f"{len(kept)} of {len(labels)} clusters kept, holding {kept_rows} of {total} seeds."]
    return "\n".join(lines)


def _cell(text: str, limit: int) -> str:
    text = " ".join((text or "").split()).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= limit else text[:limit].rstrip() + " ..."
