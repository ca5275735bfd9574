"""Writing a finished run: the data, the rejected rows, the card's figures and images, the config, stats.json
and the card, staged beside `output_dir` and published into it at once (`sink.publish`)."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset, concatenate_datasets

from builders.config import save_config
from builders.filters.checks import REASON
from builders.output.card import length_stats
from builders.output.funnel import Funnel
from builders.output.sink import publish, staging_dir, write_parquet_shards


def rejected_rows(rejected: Dataset, stage: str) -> Dataset:
    """Dropped rows (with their `REASON` column) as the `rejected` split's rows: stage, reason, the row as JSON."""
    rows = [
        {"stage": stage, "reason": row.pop(REASON), "row": json.dumps(row, ensure_ascii=False, default=str)}
        for row in rejected
    ]
    return Dataset.from_list(rows)


def text_figures(
    ds: Dataset, text_column: str, lengths, unit: str, seed: int, ngram: int, funnel: Funnel, num_proc=None
):
    """The length histogram (PNG bytes) and the card's figures for the text column; the funnel gets the length
    statistics and diversity. `lengths` are the rows' text lengths in `unit`; `num_proc`: threads for the
    diversity figures. Returns (images, card figures)."""
    from builders.output.diversity import diversity_figures
    from builders.output.figures import LENGTH_HISTOGRAM, length_histogram

    diversity = diversity_figures(ds[text_column], seed=seed, ngram=ngram, num_proc=num_proc)
    funnel.extra["text_length"] = {"column": text_column, "unit": unit, **length_stats(lengths)}
    funnel.extra["diversity"] = diversity
    images = {LENGTH_HISTOGRAM: length_histogram(lengths, unit, text_column)}
    figures = {"lengths": lengths, "length_unit": unit, "histogram": f"images/{LENGTH_HISTOGRAM}"}
    return images, {**figures, "diversity": diversity}


def write_output(
    output_dir: Path,
    ds: Dataset,
    *,
    rejected: list[Dataset],
    extra: Dataset | None = None,
    images: dict[str, bytes],
    config,
    funnel: Funnel,
    card,
    record: dict,
) -> None:
    """Stage every file of the run, then publish the staging folder into `output_dir` in one step, marking the
    run `record` (recipe, config, inputs) complete."""
    staging = staging_dir(output_dir)
    write_parquet_shards(ds, staging / "data")
    if extra is not None:  # our columns outside a public schema, row-aligned with data/ (output_extra_columns)
        write_parquet_shards(extra, staging / "extra", split="extra")
    if rejected:
        write_parquet_shards(concatenate_datasets(rejected), staging / "rejected", split="rejected")
    for name, data in images.items():
        (staging / "images").mkdir(exist_ok=True)
        (staging / "images" / name).write_bytes(data)
    save_config(config, staging / "config.yaml")
    funnel.write(staging / "stats.json")
    card.save(staging / "README.md")
    publish(staging, output_dir, record)
