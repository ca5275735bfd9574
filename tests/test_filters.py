from datasets import Dataset

from builders.filters.checks import REASON, apply_checks, generation_checks


def rows():
    return Dataset.from_list(
        [
            {"text": "fine text", "finish_reason": "stop", "completion_tokens": 10},
            {"text": "   ", "finish_reason": "stop", "completion_tokens": 1},
            {"text": "cut off", "finish_reason": "length", "completion_tokens": 10},
            {"text": "tiny", "finish_reason": "stop", "completion_tokens": 9},
            {"text": "", "finish_reason": "error", "completion_tokens": 0},
            {"text": "exactly at the bound", "finish_reason": "stop", "completion_tokens": 10},
        ]
    )


def test_generation_checks_drop_with_reasons_and_count_them():
    kept, rejected, counts = apply_checks(rows(), generation_checks("text", min_tokens=10, drop_truncated=True), "t")
    assert kept["text"] == ["fine text", "exactly at the bound"]  # min_tokens is inclusive: no overlap
    assert dict(counts) == {"empty": 1, "truncated": 1, "too_short": 1, "request_failed": 1}
    assert sorted(rejected[REASON]) == ["empty", "request_failed", "too_short", "truncated"]
    assert REASON not in kept.column_names


def test_truncated_rows_are_kept_unless_asked():
    kept, _, counts = apply_checks(rows(), generation_checks("text", min_tokens=0), "t")
    assert "cut off" in kept["text"]
    assert dict(counts) == {"empty": 1, "request_failed": 1}


def test_no_rows_left_by_an_earlier_stage_are_no_error():
    """An empty selection of a concatenated dataset (what a stage that dropped everything hands on)."""
    from datasets import concatenate_datasets

    empty = concatenate_datasets([rows(), rows()]).select([])
    kept, rejected, counts = apply_checks(empty, generation_checks("text"), "t")
    assert len(kept) == len(rejected) == 0 and not counts
    assert rejected.column_names == [*rows().column_names, REASON]
    everything = concatenate_datasets([rows(), rows()])
    kept, rejected, _ = apply_checks(everything, [lambda row: (False, "no")], "t")
    kept, again, _ = apply_checks(kept, generation_checks("text"), "t")  # the next stage gets no rows
    assert len(kept) == 0 and len(rejected) == 12 and again.column_names == rejected.column_names
