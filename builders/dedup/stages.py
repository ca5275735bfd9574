"""The whole-dataset stages a run composes: dedup (exact + MinHash), decontamination and embedding dedup.

Each returns a `StageResult`: the kept rows, the removed rows with their reason, the drops by reason and the
details the funnel shows. `Run` records it and keeps the rejected rows; these functions only compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from datasets import Dataset, concatenate_datasets

from builders.filters.checks import REASON, with_reasons
from builders.parallel import resolve_num_proc


@dataclass
class StageResult:
    kept: Dataset
    removed: Dataset  # the dropped rows, each with its reason in the `REASON` column
    dropped: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DedupSettings:
    """One dedup stage's settings: the config's `dedup_*` keys, with a method's own overrides on top."""

    threshold: float = 0.7
    ngram: int = 5
    num_perm: int = 128
    seed: int = 42
    units: Literal["auto", "word", "char"] = "auto"  # word or character n-grams; auto decides per row
    exact: bool = True  # an exact pass (normalised text) before MinHash
    backend: Literal["memory", "spark", "text-dedup"] = "memory"  # text-dedup: its own code decides
    spark_master: str | None = None  # backend spark: the cluster (default local[*])
    num_proc: int | None = None  # threads of the in-memory stage (None: every core this process may use)

    @classmethod
    def from_config(cls, config, **overrides) -> DedupSettings:
        base = cls(
            threshold=config.dedup_threshold,
            ngram=config.dedup_ngram,
            num_perm=config.dedup_num_perm,
            seed=config.seed,
            backend=config.dedup_engine,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _with_reason(rows: Dataset, reason: str) -> Dataset:
    return rows.add_column(REASON, [reason] * len(rows))


def dedup_rows(ds: Dataset, column: str, settings: DedupSettings, scratch: Path) -> StageResult:
    """Exact dedup, then MinHash near-dedup; the first row of each cluster survives. `scratch` is where Spark
    writes (on a cluster, a folder every executor reads). The text-dedup backend differs: `builders.dedup.textdedup`."""
    from builders.dedup.minhash import exact_dedup, minhash_dedup

    if settings.backend == "text-dedup":
        from builders.dedup.textdedup import text_dedup_stage

        return text_dedup_stage(ds, column, settings, scratch)

    minhash = {
        "threshold": settings.threshold,
        "ngram": settings.ngram,
        "num_perm": settings.num_perm,
        "seed": settings.seed,
        "tokenizer": settings.units,
    }
    if settings.backend == "spark":
        from builders.dedup.spark import dedup_stages

        exact, near = dedup_stages(ds, column, settings.exact, settings.spark_master, scratch, **minhash)
    else:  # rows too short for MinHash are skipped by exact dedup too
        threads = resolve_num_proc(settings.num_proc)
        exact = (
            exact_dedup(ds, column, min_length=settings.ngram, num_proc=threads, return_removed=True)
            if settings.exact
            else None
        )
        near = minhash_dedup(exact[0] if exact else ds, column, return_removed=True, num_proc=threads, **minhash)
    kept, near_stats, near_removed = near
    removed = [_with_reason(near_removed, "near_duplicate")]
    dropped = {"near_duplicate": near_stats["removed"]}
    if exact:
        _, exact_stats, exact_removed = exact
        removed.insert(0, _with_reason(exact_removed, "exact_duplicate"))
        dropped = {"exact_duplicate": exact_stats["removed"], **dropped}
    details = {k: v for k, v in near_stats.items() if k != "removed"}  # the drop reasons hold the counts
    return StageResult(kept, _concat(removed), {k: v for k, v in dropped.items() if v}, details)


def decontaminate_rows(
    ds: Dataset, column: str, benchmarks, ngram: int, threshold: float, num_proc: int | None = None
) -> StageResult:
    """Remove rows that overlap the benchmarks (see `builders.filters.decontaminate`), counted per benchmark."""
    from builders.filters.decontaminate import decontaminate

    kept, removed, per_benchmark = decontaminate(
        ds, column, benchmarks, ngram=ngram, threshold=threshold, num_proc=num_proc
    )
    details = {"ngram": ngram, "min_similarity": threshold}
    details.update({f"removed_by_{label}": n for label, n in per_benchmark.items()})
    dropped = {"contaminated": len(removed)} if len(removed) else {}
    return StageResult(kept, _with_reason(removed, "contaminated"), dropped, details)


def embedding_dedup_rows(
    ds: Dataset, column: str, threshold: float, model: str, num_proc: int | None = None
) -> StageResult:
    """Drop rows whose `column` embeds within cosine `threshold` of an earlier kept row (torch on `num_proc`
    threads)."""
    from builders.dedup.embedding import embedding_dedup

    kept, stats, removed = embedding_dedup(
        ds, column, threshold=threshold, model=model, return_removed=True, num_threads=num_proc
    )
    count = stats.pop("removed")
    dropped = {"semantic_duplicate": count} if count else {}
    return StageResult(kept, _with_reason(removed, "semantic_duplicate"), dropped, stats)


def neighbour_rows(ds: Dataset, column: str, distance: float, model: str, num_proc: int | None = None) -> StageResult:
    """Every row, with its nearest other row by the embedding of `column` (`embedding.nearest_neighbours`):
    `neighbour_distance`, `repeat_count` (rows closer than `distance`) and `first_repeat` (the row index of the
    first of its repeats, -1 without). Drops nothing."""
    import time

    import numpy as np

    from builders.dedup.embedding import nearest_neighbours
    from builders.dedup.embeddings import embed

    if len(ds) == 0:  # add_column fails on an empty selection; the output schema types the empty columns
        return StageResult(ds, Dataset.from_dict({}))
    began = time.perf_counter()
    vectors = embed([t or "" for t in ds[column]], model=model, num_threads=num_proc)
    embedded = time.perf_counter()
    nearest, repeats, first = nearest_neighbours(vectors, distance)
    rows = ds.add_column("neighbour_distance", [None if np.isnan(d) else float(d) for d in nearest])
    rows = rows.add_column("repeat_count", repeats.tolist()).add_column("first_repeat", first.tolist())
    details = {
        "model": model,
        "repeat_distance": distance,
        "rows_with_repeats": int((repeats > 0).sum()),
        "embedding_seconds": round(embedded - began, 2),
        "search_seconds": round(time.perf_counter() - embedded, 2),
    }
    return StageResult(rows, Dataset.from_dict({}), {}, details)


def largest_rows(ds: Dataset, column: str, n: int, reason: str) -> StageResult:
    """The `n` rows with the largest `column`, in their order (a tie goes to the earlier row); the others are
    dropped with `reason`. Sorting the values alone, not the rows: the rows are read once, by `select`."""
    import numpy as np

    if len(ds) <= n:  # nothing to cut (an empty dataset may not even have the column)
        return StageResult(ds, with_reasons(ds, [], []))
    values = np.asarray(ds[column])
    order = np.lexsort((np.arange(len(values)), -values))  # by value descending, then by position
    keep = np.sort(order[:n])
    drop = np.sort(order[n:])
    details = {"column": column, "kept": n, "smallest_kept": values[keep].min().item()}
    return StageResult(ds.select(keep), with_reasons(ds, drop, [reason] * len(drop)), {reason: len(drop)}, details)


def _concat(parts: list[Dataset]) -> Dataset:
    parts = [p for p in parts if len(p)]
    return concatenate_datasets(parts) if len(parts) > 1 else (parts[0] if parts else Dataset.from_dict({}))
