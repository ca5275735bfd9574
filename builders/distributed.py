"""Which process am I? Data-parallel runs under `accelerate launch` (or torchrun).

Every process runs the whole recipe script. Generation stages split their chunks between processes;
the other stages are deterministic and cheap, so every process computes them; only the main process
writes the final output and pushes to the Hub.
"""

from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=1)
def _state():
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    # cpu=True keeps accelerate from claiming GPUs: vLLM places its own engine (see engines/vllm_engine.py).
    return PartialState(cpu=True)


def process_index() -> int:
    state = _state()
    return state.process_index if state else 0


def num_processes() -> int:
    state = _state()
    return state.num_processes if state else 1


def is_main_process() -> bool:
    return process_index() == 0


def wait_for_everyone() -> None:
    state = _state()
    if state is not None:
        state.wait_for_everyone()


def my_chunks(num_chunks: int) -> range:
    """The contiguous run of chunk indices this process generates (all of them in a one-process run)."""
    index, count = process_index(), num_processes()
    return range(num_chunks * index // count, num_chunks * (index + 1) // count)
