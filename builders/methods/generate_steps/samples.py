"""Regroup the samples of one prompt (generated with n > 1, one row each) into list columns."""

from __future__ import annotations

import pyarrow as pa
from datasets import Dataset

from builders.data import ROW_ID


def collect_samples(ds: Dataset, n: int, list_columns: list[str]) -> Dataset:
    """One row per prompt: `list_columns` become lists of the samples that survived the filters.

    Sample rows carry the id `prompt_row * n + sample_index` (see generate.py), so the prompt is `id // n`;
    the other columns are equal across the samples of a prompt and keep their first value.
    """
    table = ds.with_format("arrow")[:]  # the rows of `ds`: a filtered Dataset keeps its rows in an indices mapping
    group = pa.compute.divide(table[ROW_ID], pa.scalar(n, table[ROW_ID].type))
    table = table.append_column("_group", group)
    keep_first = [c for c in table.column_names if c not in (*list_columns, "_group", "sample_index")]
    aggregations = [(c, "first") for c in keep_first] + [(c, "list") for c in list_columns]
    grouped = table.group_by("_group", use_threads=False).aggregate(aggregations)  # no threads: input order kept
    grouped = grouped.rename_columns([_strip_suffix(c) for c in grouped.column_names]).drop(["_group"])
    grouped = grouped.set_column(grouped.column_names.index(ROW_ID), ROW_ID, pa.compute.divide(grouped[ROW_ID], n))
    return Dataset(grouped.select([c for c in ds.column_names if c in grouped.column_names]))


def _strip_suffix(name: str) -> str:
    for suffix in ("_first", "_list"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
