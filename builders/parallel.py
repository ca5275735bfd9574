"""How many cores the CPU stages use, and a row-wise function run over a dataset on that many processes.

`num_proc` (a config key) is the one setting every CPU stage takes: row checks, decontamination, dedup,
Case2Code's sandbox, embeddings and the card's figures. Null means the cores this process may use: its CPU
affinity, and under `accelerate launch` its share of the node (`distributed.process_cores`).

`map_rows` runs a batched function with `Dataset.map(num_proc=...)`: contiguous shards, concatenated in order,
so the values are those of one process, row for row. A pool only starts when the work pays for it: the first
`PROBE_ROWS` rows run here and time the function, and the rest gets one process per `SECONDS_PER_PROCESS` of
one-core work it is estimated to take (at most `num_proc`; fewer than two: no pool). Starting a pool of 2 and
passing 50k short rows through it costs 0.12 to 0.26 s (measured, docs/dedup.md), so each process brings at
least twice what it costs. Cheap checks (a finish reason, an empty text: a few microseconds a row) start none
below a few hundred thousand rows; the quality checks (about 1.5 ms a row) start one from about 900 rows on.
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
SECONDS_PER_PROCESS = 0.5  # of one-core work, for each process of a pool
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

    ds = ds.with_format(None)  # batches as lists, whatever format the caller set
    n = len(ds)
    probe = min(n, PROBE_ROWS)
    began = time.perf_counter()
    values = list(function(ds[:probe])) if probe else []
    per_row = (time.perf_counter() - began) / max(probe, 1)
    if probe == n:
        return values
    workers = min(resolve_num_proc(num_proc), int(per_row * (n - probe) / SECONDS_PER_PROCESS))
    if workers > 1 and not _pickles(function, desc):
        workers = 1
    rest = ds.select(range(probe, n))
    workers = max(1, workers)
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
    """torch computes on `num_threads` threads (None: every core this process may use) inside the block.

    An in-process vLLM CPU engine binds torch's threads to its cores and replaces `torch.set_num_threads` with a
    no-op that warns; in such a process the threads stay as the engine bound them.
    """
    import torch

    if torch.set_num_threads is not torch._C.set_num_threads:  # vLLM's CPU worker took it over
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(resolve_num_proc(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
