"""A running generation's progress, read from its finished batches (`.checkpoints/<fingerprint>/<stage>/`).

Each finished batch is one parquet file written atomically (`generation/checkpoint.py`), so what is on disk
is always whole batches: their count, their rows and tokens, and the generations that a filter will drop
(failed, empty, truncated). A batch file never changes once written, so its figures are read once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from builders.view.reading import GENERATION_COLUMNS

_batches: dict[tuple[str, int], dict] = {}  # (path, mtime_ns) -> figures of one batch file


@dataclass
class StageProgress:
    name: str
    batches: int = 0
    rows: int = 0
    completion_tokens: int = 0
    failed: int = 0  # requests that failed after their retries (generated again by the next run)
    empty: int = 0
    truncated: int = 0  # hit max_new_tokens
    first: float = 0.0  # mtime of the first and the latest batch
    latest: float = 0.0
    latest_file: Path | None = None

    @property
    def rows_per_s(self) -> float | None:
        """Rows per second between the first and the latest finished batch (None with fewer than two)."""
        return self._rate(self.rows) if self.batches > 1 else None

    @property
    def tokens_per_s(self) -> float | None:
        return self._rate(self.completion_tokens) if self.batches > 1 else None

    def _rate(self, total: int) -> float | None:
        elapsed = self.latest - self.first
        # the first batch's work happened before its file appeared: count what came after it
        return (total - total / self.batches) / elapsed if elapsed > 0 else None


@dataclass
class Progress:
    stages: list[StageProgress] = field(default_factory=list)
    complete: bool = False
    read_at: float = 0.0

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.stages)

    @property
    def batches(self) -> int:
        return sum(s.batches for s in self.stages)


def read_progress(root: Path | None, complete: bool) -> Progress:
    """The progress of every generation stage under `root` (a run's checkpoint folder)."""
    progress = Progress(complete=complete, read_at=time.time())
    if root is None or not root.is_dir():
        return progress
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(folder.glob("*.parquet"))
        if not files:
            continue
        stage = StageProgress(folder.name)
        for path in files:
            try:
                mtime_ns = path.stat().st_mtime_ns
            except FileNotFoundError:  # a resume of the same run replaced it meanwhile
                continue
            figures = _batch(path, mtime_ns)
            stage.batches += 1
            for key in ("rows", "completion_tokens", "failed", "empty", "truncated"):
                setattr(stage, key, getattr(stage, key) + figures[key])
            mtime = mtime_ns / 1e9
            stage.first = min(stage.first or mtime, mtime)
            if mtime >= stage.latest:
                stage.latest, stage.latest_file = mtime, path
        progress.stages.append(stage)
    return progress


def _batch(path: Path, mtime_ns: int) -> dict:
    key = (str(path), mtime_ns)
    if key not in _batches:
        columns = [c for c in ("finish_reason", "completion_tokens") if c in pq.read_schema(path).names]
        table = pq.read_table(path, columns=columns).to_pandas()
        reasons = table.get("finish_reason", pd.Series(dtype=str))
        tokens = table.get("completion_tokens", pd.Series(dtype=int))
        _batches[key] = {
            "rows": len(table),
            "completion_tokens": int(tokens.sum()),
            "failed": int((reasons == "error").sum()),
            "empty": int(((tokens == 0) & (reasons != "error")).sum()),
            "truncated": int((reasons == "length").sum()),
        }
    return _batches[key]


def latest_rows(stage: StageProgress, limit: int = 20) -> pd.DataFrame:
    """The rows of the stage's latest finished batch: what the run is writing now."""
    if stage.latest_file is None or not stage.latest_file.exists():
        return pd.DataFrame()
    table = pq.read_table(stage.latest_file).to_pandas().head(limit)
    return table.drop(columns=[c for c in table.columns if c.startswith("_")])


def output_column(df: pd.DataFrame) -> str | None:
    """The column a generation stage wrote: the one just before its finish_reason (`generation/stage.py`)."""
    names = list(df.columns)
    if GENERATION_COLUMNS[0] not in names:
        return None
    at = names.index(GENERATION_COLUMNS[0])
    return names[at - 1] if at > 0 else None
