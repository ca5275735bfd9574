"""Checkpoint shards: each finished batch of a generation stage is a parquet file, written atomically.

`datasets` cannot fingerprint an engine object (it hashes it at random, datasets issue 4506), so its
cache never protects generated rows; this store does. A chunk is keyed by its row range in the stage's
input, so a rerun, a resume after `kill -9`, or a run split over N processes all produce and find the
same chunks. A chunk is trusted only after it was read and checked (`load`'s `problem`): one that does not
parse, or holds other rows than its name says, is set aside (`*.bad`, kept for a look) and generated again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from builders.files import write_atomically

logger = logging.getLogger("builders")


class CheckpointStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stage: str, start: int, end: int) -> Path:
        return self.root / stage / f"{start:010d}-{end:010d}.parquet"

    def load(
        self, stage: str, start: int, end: int, problem: Callable[[dict], str | None] | None = None
    ) -> dict[str, list] | None:
        """The chunk's columns; None when there is none, or when it does not parse or `problem(columns)` names what
        is wrong with it: then it is logged and set aside, and the caller generates the batch again."""
        path = self.path(stage, start, end)
        if not path.exists():
            return None
        try:
            columns = pq.read_table(path).to_pydict()
            wrong = problem(columns) if problem else None
        except (pa.ArrowException, OSError) as err:
            wrong = f"it does not parse ({type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''})"
        if wrong is None:
            return columns
        aside = path.with_name(path.name + ".bad")
        os.replace(path, aside)
        logger.warning("checkpoint %s is set aside as %s and generated again: %s", path, aside.name, wrong)
        return None

    def save(self, stage: str, start: int, end: int, columns: dict[str, list]) -> None:
        path = self.path(stage, start, end)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda f: pq.write_table(pa.Table.from_pydict(columns), f))

    def chunks(self, stage: str) -> list[Path]:
        return sorted((self.root / stage).glob("*.parquet"))

    def count_done(self, stage: str) -> int:
        return len(self.chunks(stage))
