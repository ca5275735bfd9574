"""Row filters that say why.

A check is a function `row -> (keep, reason)`, as in datatrove: `(True, None)` keeps the row,
`(False, "too_short")` drops it and names the reason. `apply_checks` runs a list of checks in one
`Dataset.map` (the first failing check gives the reason), counts every drop by reason, and returns the
kept rows and the dropped ones (with their reason) so a run can keep them for inspection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from datasets import Dataset

Check = Callable[[dict], tuple[bool, str | None]]
REASON = "_drop_reason"


def apply_checks(
    ds: Dataset, checks: list[Check], desc: str, num_proc: int | None = None
) -> tuple[Dataset, Dataset, Counter]:
    """Return (kept, rejected, drops by reason). `rejected` has a `_drop_reason` column."""
    if len(ds) == 0:
        return ds, ds.add_column(REASON, []), Counter()

    def reasons(batch: dict[str, list]) -> dict[str, list]:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        return {REASON: [_first_failure(row, checks) for row in rows]}

    marked = ds.map(reasons, batched=True, desc=desc, num_proc=num_proc)
    counts = Counter(r for r in marked[REASON] if r is not None)
    kept = marked.filter(lambda r: [x is None for x in r], input_columns=[REASON], batched=True, desc=desc)
    rejected = marked.filter(lambda r: [x is not None for x in r], input_columns=[REASON], batched=True, desc=desc)
    return kept.remove_columns(REASON), rejected, counts


def _first_failure(row: dict, checks: list[Check]) -> str | None:
    for check in checks:
        keep, reason = check(row)
        if not keep:
            return reason or getattr(check, "__name__", "filtered")
    return None


# --- checks on a generation (every generating recipe uses these) --------------------------------------------


def generation_checks(
    column: str,
    min_tokens: int = 0,
    drop_truncated: bool = False,
) -> list[Check]:
    """Checks every generation stage needs: failed request, prompt the engine refused, empty text, truncated, too
    short.

    The boundaries do not overlap: a row is `too_short` only when it has fewer than `min_tokens`
    completion tokens, so a row with exactly `min_tokens` is kept.
    """

    def request_ok(row: dict) -> tuple[bool, str | None]:
        reason = row.get("finish_reason")
        return (reason not in ("error", "rejected"), "request_failed" if reason == "error" else "prompt_rejected")

    def not_empty(row: dict) -> tuple[bool, str | None]:
        return (bool((row[column] or "").strip()), "empty")

    def not_truncated(row: dict) -> tuple[bool, str | None]:
        return (row.get("finish_reason") != "length", "truncated")

    def long_enough(row: dict) -> tuple[bool, str | None]:
        return (row.get("completion_tokens", 0) >= min_tokens, "too_short")

    checks: list[Check] = [request_ok, not_empty]
    if drop_truncated:
        checks.append(not_truncated)
    if min_tokens > 0:
        checks.append(long_enough)
    return checks
