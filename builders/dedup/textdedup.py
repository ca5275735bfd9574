"""Dedup by text-dedup itself (`dedup_engine: text-dedup`): its exact-hash and MinHash commands decide.

    decisions = text_dedup(ds, "text", threshold=0.7, ngram=5, num_perm=128, seed=42)

For a run that must match a dataset deduplicated with text-dedup (0.4.0, `python -m text_dedup.minhash`). The
column goes with row numbers to a temporary folder, `builders.dedup.textdedup_child` runs text-dedup's commands
on it in a child process (importing them forces the `fork` start method, which vLLM's process must not get),
and only the decisions come back: for every row, kept or why not, and the row it duplicates.

Where text-dedup differs from the `memory` and `spark` engines (docs/dedup.md; the card of a run says so too):
- it keeps an arbitrary member of each cluster (the root of its union-find), not the first row;
- it drops rows with fewer than `min_length` (5) tokens (its split on each non-word character, so punctuation
  adds tokens); the other engines keep rows too short to compare;
- its exact pass compares the raw text (the others compare case-, space- and punctuation-folded text), and
  its MinHash uses words only (no character n-grams for Chinese or Japanese) and no verification of pairs;
- its band/row choice weighs false positives and negatives equally (`optimal_param(t, p, 0.5, 0.5)`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from datasets import Dataset, Value

from builders.dedup.minhash import optimal_param
from builders.errors import UserError

logger = logging.getLogger("builders")

KEPT, EXACT, NEAR, SHORT = 0, 1, 2, 3
REASONS = {EXACT: "exact_duplicate", NEAR: "near_duplicate", SHORT: "too_short"}
MIN_LENGTH = 5  # text-dedup's default `--min_length`: rows with fewer tokens are dropped
NOTE = (
    "text-dedup decided: it keeps an arbitrary member of each cluster (not the first row), drops rows of fewer "
    f"than {MIN_LENGTH} tokens (too_short), compares raw text in its exact pass and word n-grams only"
)


@dataclass
class TextDedupDecisions:
    """Per row: `fate` (KEPT, EXACT, NEAR or SHORT) and `duplicate_of` (the row it duplicates, or -1)."""

    fate: np.ndarray
    duplicate_of: np.ndarray
    stats: dict


def text_dedup(
    ds: Dataset,
    column: str,
    threshold: float = 0.7,
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 42,
    exact: bool = True,
    min_length: int = MIN_LENGTH,
    hash_func: str = "sha1",
    num_proc: int | None = None,
    work_dir: str | os.PathLike | None = None,
) -> TextDedupDecisions:
    """Run text-dedup's exact hash (when `exact`) and MinHash on `column`; its CLI's defaults for the rest."""
    if importlib.util.find_spec("text_dedup") is None:
        raise UserError(
            "dedup engine 'text-dedup' needs the text-dedup package: `pip install --no-deps text-dedup==0.4.0` "
            "(requirements/nodeps.txt), or set the engine to memory"
        )
    n = len(ds)
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="text-dedup-", dir=work_dir) as tmp:
        work = Path(tmp)
        rows = ds.select_columns([column]).add_column("__row__", np.arange(n))
        rows.save_to_disk(str(work / "input"))
        spec = {
            "column": column,
            "exact": exact,
            "threshold": threshold,
            "ngram": ngram,
            "num_perm": num_perm,
            "min_length": min_length,
            "seed": seed % 2**32,
            "hash_func": hash_func,
            "num_proc": num_proc or max(1, min(os.cpu_count() or 1, n // 10_000)),
        }
        (work / "spec.json").write_text(json.dumps(spec))
        _run_child(work)
        with np.load(work / "result.npz") as result:
            near_rows, roots, kept = result["rows"], result["roots"], result["kept"]

    fate = np.full(n, EXACT, dtype=np.int8)  # rows that did not reach MinHash: removed by the exact pass
    duplicate_of = np.full(n, -1, dtype=np.int64)
    near = roots != np.arange(len(roots))
    fate[near_rows] = np.where(near, NEAR, SHORT)
    duplicate_of[near_rows[near]] = near_rows[roots[near]]
    fate[kept] = KEPT
    if exact:
        _first_with_same_text(ds, column, fate == EXACT, duplicate_of)
    bands, rows_per_band = optimal_param(threshold, num_perm, 0.5, 0.5)
    stats = {
        "clusters": int(len(np.unique(roots[near]))),
        "bands": bands,
        "rows_per_band": rows_per_band,
        "min_length": min_length,
    }
    return TextDedupDecisions(fate, duplicate_of, stats)


def _run_child(work: Path) -> None:
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "builders.dedup.textdedup_child", str(work)], capture_output=True, text=True, env=env
    )
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 3:
        raise UserError(f"dedup engine 'text-dedup' cannot run: {log.splitlines()[-1]}; run `make install`")
    if proc.returncode:
        raise RuntimeError(f"text-dedup failed (exit {proc.returncode}):\n{log[-3000:]}")
    logger.debug("text-dedup: %s", log[-3000:])


def _first_with_same_text(ds: Dataset, column: str, removed: np.ndarray, duplicate_of: np.ndarray) -> None:
    """The row each exact duplicate repeats: the first with the very same text (text-dedup keeps that one)."""
    first: dict[str, int] = {}
    for i, text in enumerate(ds.select_columns([column]).with_format("arrow")[column].to_pylist()):
        if removed[i]:
            duplicate_of[i] = first[text]
        else:
            first.setdefault(text, i)


def text_dedup_stage(ds: Dataset, column: str, settings, scratch: Path):
    """`dedup_rows` for `backend="text-dedup"`: the kept rows, the removed ones with their reason and
    `duplicate_of`, drops by reason, and details that say text-dedup decided (and how it differs)."""
    from builders.dedup.stages import StageResult, _concat, _with_reason

    decisions = text_dedup(
        ds,
        column,
        settings.threshold,
        settings.ngram,
        settings.num_perm,
        settings.seed,
        exact=settings.exact,
        work_dir=scratch,
    )
    fate, duplicate_of = decisions.fate, decisions.duplicate_of
    removed, dropped = [], {}
    for code, reason in REASONS.items():
        rows = np.flatnonzero(fate == code)
        if len(rows):
            dropped[reason] = len(rows)
            part = ds.select(rows).add_column("duplicate_of", duplicate_of[rows].tolist(), feature=Value("int64"))
            removed.append(_with_reason(part, reason))
    kept_rows = np.flatnonzero(fate == KEPT)
    kept = ds if len(kept_rows) == len(ds) else ds.select(kept_rows)
    details = {"engine": f"text-dedup {version('text-dedup')}", **decisions.stats, "note": NOTE}
    return StageResult(kept, _concat(removed), dropped, details)
