"""How close a dataset is to a reference, e.g. a reproduction to the public original: schema, rows, lengths,
diversity, vocabulary, ROUGE-L between rows aligned on a key, and topic coverage.

The measurements are local `evaluate` modules (`output/metrics/<name>`, loaded with `evaluate.load(path)`);
schema and row counts are plain comparisons. `recipes/compare.py` writes the result as a report folder, and a
recipe run with `compare_to:` adds it to its own card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from datasets import Dataset

from builders.errors import UserError

METRICS = Path(__file__).parent / "metrics"
COMPARISON_HISTOGRAM = "comparison_length_histogram.png"
# Columns that say which input a row came from, in the order tried when no key is given.
KEY_CANDIDATES = ("prompt", "seed", "input persona", "seed_data", "instruction", "question")


@dataclass
class Comparison:
    figures: dict  # for stats.json
    sections: list[tuple[str, str]] = field(default_factory=list)  # card sections: (heading, Markdown)
    images: dict[str, bytes] = field(default_factory=dict)
    aligned: Dataset | None = None  # key, ours, reference, rougeL: one row per aligned pair


@cache
def load_metric(name: str):
    """One of the project's `evaluate` modules, by folder name."""
    import evaluate

    return evaluate.load(str(METRICS / name))


def schema_match(ours: Dataset, reference: Dataset) -> dict:
    """Column names, order and types of `ours` against `reference`."""
    mine, theirs = ours.features, reference.features
    mismatched = {
        c: {"ours": _dtype(mine[c]), "reference": _dtype(theirs[c])}
        for c in theirs
        if c in mine and _dtype(mine[c]) != _dtype(theirs[c])
    }
    return {
        "same": list(mine) == list(theirs) and not mismatched,
        "same_names": set(mine) == set(theirs),
        "same_order": list(mine) == list(theirs),
        "missing": [c for c in theirs if c not in mine],
        "extra": [c for c in mine if c not in theirs],
        "type_mismatches": mismatched,
    }


def compare(
    ours: Dataset,
    reference: Dataset,
    *,
    column: str,
    reference_column: str | None = None,
    key: str | None = None,
    topics: bool = True,
    embedding_model: str = "all-minilm-l6-v2",
    num_clusters: int = 20,
    max_rows: int = 5000,
    seed: int = 0,
) -> Comparison:
    """Every figure of the comparison of `ours[column]` with `reference[reference_column]` (the same name by
    default). Distribution figures use at most `max_rows` rows of each (a seeded sample)."""
    reference_column = reference_column or column
    ours, reference = _public(ours), _public(reference)
    for ds, name, where in ((ours, column, "the dataset"), (reference, reference_column, "the reference")):
        if name not in ds.column_names:
            raise UserError(
                f"{where} has no column '{name}'; its columns are {', '.join(ds.column_names)}: set "
                f"{'column' if where == 'the dataset' else 'reference_column'}"
            )
    if len(ours) == 0 or len(reference) == 0:
        raise UserError("nothing to compare: the dataset or the reference has no rows")
    mine, theirs = _sample(ours[column], max_rows, seed), _sample(reference[reference_column], max_rows, seed)
    figures = {
        "schema": schema_match(ours, reference),
        "rows": {"ours": len(ours), "reference": len(reference)},
        "column": column,
        "reference_column": reference_column,
        "lengths": load_metric("length_distribution").compute(predictions=mine, reference_texts=theirs),
        # distinct-n falls as a set grows: both sides are measured on samples of the same size
        "distinct": {
            "ours": load_metric("distinct_n").compute(data=_sample(mine, len(theirs), seed)),
            "reference": load_metric("distinct_n").compute(data=_sample(theirs, len(mine), seed)),
            "rows_each": min(len(mine), len(theirs)),
        },
        "vocabulary": load_metric("vocabulary_overlap").compute(predictions=mine, reference_texts=theirs),
    }
    aligned = _aligned(ours, reference, key, column, reference_column)
    if aligned is not None:
        scores = load_metric("aligned_rouge").compute(predictions=aligned["ours"], references=aligned["reference"])
        aligned = aligned.add_column("rougeL", scores.pop("rougeL"))
        figures["aligned"] = {"key": key or _common_key(ours, reference), "pairs": len(aligned), **scores}
    if topics:
        from builders.dedup.embeddings import resolve_embedding_model

        coverage = load_metric("topic_coverage").compute(
            predictions=mine,
            reference_texts=theirs,
            model=resolve_embedding_model(embedding_model),
            num_clusters=num_clusters,
            seed=seed,
        )
        figures["topics"] = coverage
    from builders.output.figures import length_histograms

    picture = length_histograms(
        {"ours": [len(t.split()) for t in mine], "reference": [len(t.split()) for t in theirs]}, "words", column
    )
    return Comparison(figures, _sections(figures), {COMPARISON_HISTOGRAM: picture}, aligned)


def _aligned(ours, reference, key, column, reference_column) -> Dataset | None:
    key = key or _common_key(ours, reference)
    if key is None:
        return None
    if key not in ours.column_names or key not in reference.column_names:
        raise UserError(f"key '{key}' is not a column of both datasets; set `key` to a column they share, or null")
    first = {}
    for k, text in zip(reference[key], reference[reference_column]):
        first.setdefault(str(k), text)
    pairs = [(str(k), t, first[str(k)]) for k, t in zip(ours[key], ours[column]) if str(k) in first]
    if not pairs:
        return None
    keys, mine, theirs = zip(*pairs)
    return Dataset.from_dict({"key": list(keys), "ours": list(mine), "reference": list(theirs)})


def _public(ds: Dataset) -> Dataset:
    """Without the private columns (`_row` and such) the run machinery adds."""
    return ds.remove_columns([c for c in ds.column_names if c.startswith("_")])


def _common_key(ours: Dataset, reference: Dataset) -> str | None:
    return next((k for k in KEY_CANDIDATES if k in ours.column_names and k in reference.column_names), None)


def _sample(texts: list, k: int, seed: int) -> list[str]:
    import random

    texts = [t if isinstance(t, str) else "" for t in texts]
    return texts if len(texts) <= k else random.Random(seed).sample(texts, k)


def _dtype(feature) -> str:
    return str(getattr(feature, "dtype", None) or type(feature).__name__)


def _sections(f: dict) -> list[tuple[str, str]]:
    """The report as card sections (heading, Markdown)."""
    s, lengths, vocabulary = f["schema"], f["lengths"], f["vocabulary"]
    schema = (
        "identical (names, order, types)"
        if s["same"]
        else (
            f"missing {s['missing'] or 'none'}; extra {s['extra'] or 'none'}; "
            f"{'same' if s['same_order'] else 'different'} order; type mismatches {s['type_mismatches'] or 'none'}"
        )
    )
    rows = [
        ("schema", schema, ""),
        ("rows", f"{f['rows']['ours']:,}", f"{f['rows']['reference']:,}"),
        ("mean length (words)", f"{lengths['mean_words']:.1f}", f"{lengths['reference_mean_words']:.1f}"),
        ("median length (words)", f"{lengths['median_words']:.0f}", f"{lengths['reference_median_words']:.0f}"),
        (
            "distinct-1",
            f"{f['distinct']['ours']['distinct_1']:.3f}",
            f"{f['distinct']['reference']['distinct_1']:.3f}",
        ),
        (
            "distinct-2",
            f"{f['distinct']['ours']['distinct_2']:.3f}",
            f"{f['distinct']['reference']['distinct_2']:.3f}",
        ),
        ("vocabulary size", f"{vocabulary['vocabulary_size']:,}", f"{vocabulary['reference_vocabulary_size']:,}"),
    ]
    table = "| | this dataset | reference |\n|---|---:|---:|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    distances = [
        f"- length distributions: Kolmogorov-Smirnov {lengths['ks_statistic']:.3f} (p = {lengths['ks_pvalue']:.2g}), "
        f"Wasserstein {lengths['wasserstein_words']:.1f} words (0: the same distribution)",
        f"- vocabulary: Jaccard {vocabulary['jaccard']:.3f}; {vocabulary['reference_vocabulary_reached']:.1%} of the "
        f"reference's words appear here, {vocabulary['vocabulary_in_reference']:.1%} of ours appear there",
    ]
    if "aligned" in f:
        a = f["aligned"]
        distances.append(
            f"- ROUGE-L on {a['pairs']:,} rows aligned on `{a['key']}`: mean {a['rougeL_mean']:.3f}, "
            f"median {a['rougeL_median']:.3f} (1: the same text)"
        )
    if "topics" in f:
        t = f["topics"]
        distances.append(
            f"- topics: {t['clusters_reached']} of the reference's {t['clusters']} embedding clusters reached "
            f"({t['coverage']:.0%}); Jensen-Shannon divergence of the cluster shares {t['jensen_shannon']:.3f} (0: same)"
        )
    body = (
        f"`{f['column']}` against the reference's `{f['reference_column']}`; measured with the `evaluate` modules in "
        "`builders/output/metrics/`.\n\n" + table + "\n\n" + "\n".join(distances) + "\n\n"
        f"![lengths](images/{COMPARISON_HISTOGRAM})"
    )
    return [("Comparison with the reference", body)]
