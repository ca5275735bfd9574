"""Checkpoint shards: each finished batch of a generation stage is a parquet file, written atomically.

`datasets` cannot fingerprint an engine object (it hashes it at random, datasets issue 4506), so its
cache never protects generated rows; this store does. A chunk is keyed by its row range in the stage's
input, so a rerun, a resume after `kill -9`, or a run split over N processes all produce and find the
same chunks.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from builders.files import write_atomically


class CheckpointStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stage: str, start: int, end: int) -> Path:
        return self.root / stage / f"{start:010d}-{end:010d}.parquet"

    def load(self, stage: str, start: int, end: int) -> dict[str, list] | None:
        path = self.path(stage, start, end)
        if not path.exists():
            return None
        return pq.read_table(path).to_pydict()

    def save(self, stage: str, start: int, end: int, columns: dict[str, list]) -> None:
        path = self.path(stage, start, end)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda f: pq.write_table(pa.Table.from_pydict(columns), f))

    def chunks(self, stage: str) -> list[Path]:
        return sorted((self.root / stage).glob("*.parquet"))

    def count_done(self, stage: str) -> int:
        return len(self.chunks(stage))
