"""Row filters that say why.

A check is a function `row -> (keep, reason)`, as in datatrove: `(True, None)` keeps the row,
`(False, "too_short")` drops it and names the reason. `apply_checks` runs a list of checks in one
`Dataset.map` (the first failing check gives the reason), counts every drop by reason, and returns the
kept rows and the dropped ones (with their reason) so a run can keep them for inspection.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import numpy as np
from datasets import Dataset, Value

from builders.parallel import map_rows

Check = Callable[[dict], tuple[bool, str | None]]
REASON = "_drop_reason"


def apply_checks(
    ds: Dataset, checks: list[Check], desc: str, num_proc: int | None = None
) -> tuple[Dataset, Dataset, Counter]:
    """Return (kept, rejected, drops by reason). `rejected` has a `_drop_reason` column.

    The checks run on `num_proc` processes (None: every core this process may use) when the work pays for it
    (`builders.parallel.map_rows`); the rows, their order and the reasons are the same on any number.
    """
    reasons = map_rows(ds, functools.partial(_reasons, checks=checks), num_proc=num_proc, desc=desc)
    dropped = np.flatnonzero([r is not None for r in reasons])
    kept = ds.select(np.flatnonzero([r is None for r in reasons])) if len(dropped) else ds
    return kept, with_reasons(ds, dropped, [reasons[i] for i in dropped]), Counter(reasons[i] for i in dropped)


def with_reasons(ds: Dataset, rows, reasons: list[str]) -> Dataset:
    """The rows `rows` of `ds` with their drop reason in a `_drop_reason` column (none: an empty dataset that has
    the columns, which `add_column` cannot make from an empty selection of a concatenated dataset)."""
    if len(rows) == 0:
        features = ds.features.copy()
        features[REASON] = Value("string")
        return Dataset.from_dict({name: [] for name in features}, features=features)
    return ds.select(rows).add_column(REASON, reasons, feature=Value("string"))


def _reasons(batch: dict[str, list], checks: list[Check]) -> list[str | None]:
    """The first failing check's reason for each row of a batch (None: kept)."""
    return [_first_failure(dict(zip(batch, values)), checks) for values in zip(*batch.values())]


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
