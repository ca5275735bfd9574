"""How many cores the CPU stages use, and a row-wise function run over a dataset on that many processes.

`num_proc` (a config key) is the one setting every CPU stage takes: row checks, decontamination, dedup,
Case2Code's sandbox, embeddings and the card's figures. Null means the cores this process may use: its CPU
affinity, and under `accelerate launch` its share of the node (`distributed.process_cores`).

`map_rows` runs a batched function with `Dataset.map(num_proc=...)`: contiguous shards, concatenated in order,
so the values are those of one process, row for row. A pool is only started when the work pays for it: the
first `PROBE_ROWS` rows run here first and time the function, and the rest goes to the pool only when it would
take one core at least `MIN_POOL_SECONDS`. Starting a pool of 2 processes and passing 50k short rows through
it costs 0.12 to 0.26 s (measured, docs/dedup.md); cheap checks (a finish reason, an empty text: about a
microsecond a row) never pay for it at any size, the quality checks (about 1.5 ms a row) from a few hundred rows.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger("builders")

PROBE_ROWS = 256
MIN_POOL_SECONDS = 1.0  # about 5x the measured cost of a 2-process pool, so the pool never loses much
VALUE = "_value"


def available_cores() -> int:
    """The cores this process may use (its affinity; under `accelerate launch`, its share of the node)."""
    from builders.generation.distributed import process_cores

    return process_cores()


def resolve_num_proc(num_proc: int | None) -> int:
    """`num_proc` as given (at least 1), or every core this process may use when it is None."""
    return max(1, num_proc) if num_proc else available_cores()


def map_rows(
    ds: Dataset,
    function: Callable[[dict], list],
    *,
    num_proc: int | None,
    desc: str,
    dtype: str = "string",
    batch_size: int = 1000,
) -> list:
    """`function(batch) -> one value per row` over every row of `ds`, in order; on up to `num_proc` processes.

    `function` takes a batch as `Dataset.map` gives it (column -> list of values); its values are of `dtype`
    (a `datasets.Value` type; None allowed). It must pickle (dill, as `datasets` does) to run in a pool: when it
    does not, every row runs here, with a warning naming `desc`.
    """
    from datasets import Features, Value

    n = len(ds)
    probe = min(n, PROBE_ROWS)
    began = time.perf_counter()
    values = list(function(ds[:probe])) if probe else []
    per_row = (time.perf_counter() - began) / max(probe, 1)
    if probe == n:
        return values
    workers = resolve_num_proc(num_proc)
    if workers > 1 and per_row * (n - probe) < MIN_POOL_SECONDS:
        workers = 1
    if workers > 1 and not _pickles(function, desc):
        workers = 1
    rest = ds.select(range(probe, n))
    if workers > 1:
        logger.info("%s: %d rows on %d processes", desc, n - probe, workers)
    out = rest.map(
        functools.partial(_as_column, function=function),
        batched=True,
        batch_size=batch_size,
        num_proc=workers if workers > 1 else None,
        remove_columns=rest.column_names,
        features=Features({VALUE: Value(dtype)}),
        desc=desc,
    )
    return values + out.data.column(VALUE).to_pylist()


def _as_column(batch: dict, function: Callable[[dict], list]) -> dict:
    return {VALUE: list(function(batch))}


def _pickles(function: Callable, desc: str) -> bool:
    from datasets.utils._dill import dumps

    try:
        dumps(function)
    except Exception as err:  # dill raises many kinds: whatever it is, one process still gives the same values
        logger.warning("%s: runs on one process, its function does not pickle (%s: %s)", desc, type(err).__name__, err)
        return False
    return True


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """torch computes on `num_threads` threads (None: every core this process may use) inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(resolve_num_proc(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
