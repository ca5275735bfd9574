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
