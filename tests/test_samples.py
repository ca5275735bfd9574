"""Regrouping the samples of a prompt into list columns (builders/methods/generate_steps/samples.py)."""

from datasets import Dataset

from builders.data import ROW_ID
from builders.filters.checks import apply_checks
from builders.methods.generate_steps.samples import collect_samples


def test_samples_dropped_by_a_filter_stay_out_of_the_lists():
    n = 2  # three prompts, two samples each: ids prompt * n + sample_index
    samples = Dataset.from_dict(
        {
            ROW_ID: list(range(6)),
            "text": ["a", "a", "b", "b", "c", "c"],
            "generation": ["a0", "", "b0", "b1", "", "c1"],
            "sample_index": [0, 1, 0, 1, 0, 1],
        }
    )
    kept, _, _ = apply_checks(samples, [lambda row: (bool(row["generation"]), "empty")], desc="filter")
    assert len(kept) == 4

    lists = collect_samples(kept, n, ["generation"])
    assert lists.column_names == [ROW_ID, "text", "generation"]
    assert lists[ROW_ID] == [0, 1, 2]
    assert lists["text"] == ["a", "b", "c"]
    assert lists["generation"] == [["a0"], ["b0", "b1"], ["c1"]]
