"""The generation stage: one `Dataset.map` whose batches go to the engine whole, checkpointed per batch.

Each map batch is handed to the engine in a single call, so vLLM's scheduler sees the whole batch at
once. Batches are aligned on multiples of `batch_size` in the stage's input, and each finished batch is
saved as a checkpoint chunk: a rerun skips finished chunks, and a run split over several processes
produces exactly the chunks a one-process run would. A chunk that holds failed requests (an OpenAI
server that stayed down through the retries) is generated again by the next run of the same command.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass

import datasets
from datasets import Dataset

from builders.data import ROW_ID
from builders.errors import UserError
from builders.generation import distributed
from builders.generation.checkpoint import CheckpointStore
from builders.generation.engines import Completion, Engine, Prompt, Sampling

GENERATION_COLUMNS = ("finish_reason", "prompt_tokens", "completion_tokens")
FAILED = ("error", "rejected")  # finish reasons of a request that gave no text


def row_seed(seed: int, row_id: int, salt: str = "") -> int:
    """A 31-bit seed for one row: the same (seed, row, salt) always gives the same value, in any process."""
    digest = hashlib.blake2b(f"{seed}/{salt}/{row_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


@dataclass
class GenerationReport:
    """What one process did in a stage: for the run's summary (tokens/s excludes chunks loaded from disk)."""

    chunks_generated: int = 0
    chunks_resumed: int = 0
    chunks_retried: int = 0  # chunks loaded with failed requests and generated again
    completion_tokens: int = 0
    engine_seconds: float = 0.0


def as_prompt(value, use_chat_template: bool, system_prompt: str | None) -> Prompt:
    """A string becomes a chat conversation in chat mode; a list of messages is used as it is."""
    if not isinstance(value, str):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    if not use_chat_template:
        return value
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": value}]


def generate_column(
    ds: Dataset,
    engine: Engine,
    sampling: Sampling,
    *,
    prompt_column: str,
    output_column: str,
    stage: str,
    store: CheckpointStore,
    seed: int,
    batch_size: int,
    use_chat_template: bool = True,
    system_prompt: str | None = None,
    report: GenerationReport | None = None,
) -> Dataset:
    """Add `output_column` (+ finish_reason, prompt_tokens, completion_tokens) to every row of `ds`.

    With `sampling.n > 1` each sample becomes its own row, with a `sample_index` column and the row id
    `row * n + sample_index`, so later stages give every sample its own seed; a `sample_index` already in `ds`
    (an earlier stage with n > 1) is replaced by this stage's.
    Returns the complete stage output, also in a multi-process run (read back from the checkpoints).
    """
    report = report or GenerationReport()
    if distributed.num_processes() > 1:
        _check_same_input(ds, stage, prompt_column)
    num_chunks = -(-len(ds) // batch_size)
    mine = distributed.my_chunks(num_chunks)
    start_row = mine.start * batch_size
    part = ds.select(range(start_row, min(mine.stop * batch_size, len(ds))))

    written = _written_columns(output_column, explode=sampling.n > 1)
    succeeded = False  # a request of this stage came back in this process: later failures are an outage

    def generate_batch(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        nonlocal succeeded
        start, end = start_row + indices[0], start_row + indices[-1] + 1
        expected = _expected_chunk(batch, prompt_column, written, sampling.n if sampling.n > 1 else 1)
        cached = store.load(stage, start, end, expected)
        if cached is not None and "error" not in cached.get("finish_reason", ()):
            report.chunks_resumed += 1
            return cached
        if cached is not None:  # requests failed after their retries (a server was down): try them again
            report.chunks_retried += 1
        prompts = [as_prompt(p, use_chat_template, system_prompt) for p in batch[prompt_column]]
        seeds = [row_seed(seed, row_id, stage) for row_id in batch[ROW_ID]]
        began = time.perf_counter()
        results = engine.generate(prompts, sampling, seeds)
        report.engine_seconds += time.perf_counter() - began
        failed = [c for cs in results for c in cs if c.finish_reason in FAILED]
        if not succeeded and len(failed) == sum(map(len, results)):
            raise UserError(
                f"stage '{stage}': every request of its first batch failed ({len(failed)} of {len(failed)}; the first: "
                f"{failed[0].error}); nothing was generated: fix the model settings or the server, then run the same "
                "command again"
            )
        succeeded = True
        out = _rows_with_completions(batch, results, output_column, explode=sampling.n > 1)
        report.completion_tokens += sum(out["completion_tokens"])
        report.chunks_generated += 1
        store.save(stage, start, end, out)
        return out

    generated = part.map(
        generate_batch,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        remove_columns=part.column_names,
        load_from_cache_file=False,
        # The engine cannot be hashed, and generated rows must never come from datasets' cache (checkpoints are
        # the cache): a fresh fingerprint per call also keeps later maps from reusing another run's results.
        new_fingerprint=f"{stage}-{uuid.uuid4().hex}",
        desc=f"Generating {output_column} ({stage})",
    )
    if distributed.num_processes() == 1:
        return generated
    # Every process gets the whole stage output, merged in row order from the chunks all processes wrote.
    distributed.wait_for_everyone(f"generation ({stage})")
    chunks = [store.path(stage, start, min(start + batch_size, len(ds))) for start in range(0, len(ds), batch_size)]
    missing = [p.name for p in chunks if not p.exists()]
    if missing:
        raise RuntimeError(
            f"stage '{stage}': chunks {missing[:3]} are missing from {store.root} after every process finished"
        )
    return read_chunks(store, stage, chunks)


def read_chunks(store: CheckpointStore, stage: str, chunks: list | None = None) -> Dataset:
    """The given chunks (default: all chunks of the stage), in row order, as one memory-mapped Dataset."""
    files = [str(p) for p in (store.chunks(stage) if chunks is None else chunks)]
    return datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(store.root / ".cache"))


def _check_same_input(ds: Dataset, stage: str, prompt_column: str) -> None:
    """Every process must see the same stage input, or the merged chunks would mix two different datasets.

    The stages before a generation are computed by every process; a digest of the row ids and prompts catches one
    that is not deterministic across processes (unseeded randomness, iteration over a set of strings).
    """
    digest = hashlib.blake2b(digest_size=16)
    for batch in ds.select_columns([ROW_ID, prompt_column]).iter(batch_size=1000):
        digest.update(json.dumps(batch, sort_keys=True, ensure_ascii=False, default=str).encode())
    digests = distributed.gather(f"input of {stage}", digest.hexdigest())
    if len(set(digests)) > 1:
        raise RuntimeError(
            f"stage '{stage}': the processes of this launch built different inputs for it (digests {digests}); "
            "a stage before it is not deterministic across processes"
        )


def _written_columns(output_column: str, explode: bool) -> tuple[str, ...]:
    # with n > 1, a `sample_index` from an earlier stage is replaced (the row id keeps the whole lineage)
    return (output_column, *GENERATION_COLUMNS, *(["sample_index"] if explode else []))


def _expected_chunk(batch: dict[str, list], prompt_column: str, written: tuple[str, ...], n: int):
    """What a checkpoint of `batch` must hold: the row ids of exactly these rows (each row's samples with n > 1),
    their prompts, and the stage's columns. Returns a check: columns -> what is wrong, or None."""
    ids = [row * n + k for row in batch[ROW_ID] for k in range(n)] if n > 1 else list(batch[ROW_ID])
    names = set(batch) | set(written)

    def problem(columns: dict[str, list]) -> str | None:
        if set(columns) != names:
            return f"its columns are {sorted(columns)}, not the stage's {sorted(names)}"
        if columns[ROW_ID] != ids:
            got = columns[ROW_ID]
            return f"it holds rows {got[:1]}..{got[-1:]} ({len(got)}), not the {len(ids)} rows {ids[:1]}..{ids[-1:]}"
        if prompt_column not in written and columns[prompt_column] != [
            p for p in batch[prompt_column] for _ in range(n)
        ]:
            return "its prompts are not the ones of its rows (the input changed since it was written)"
        return None

    return problem


def _rows_with_completions(
    batch: dict[str, list], results: list[list[Completion]], output_column: str, explode: bool
) -> dict[str, list]:
    written = _written_columns(output_column, explode)
    out: dict[str, list] = {name: [] for name in (*batch, *written)}
    for i, completions in enumerate(results):
        for k, completion in enumerate(completions if explode else completions[:1]):
            for name, values in batch.items():
                if name == ROW_ID and explode:  # each sample is a row of its own, with its own seed downstream
                    out[name].append(values[i] * len(completions) + k)
                elif name not in written:
                    out[name].append(values[i])
            out[output_column].append(completion.text)
            out["finish_reason"].append(completion.finish_reason)
            out["prompt_tokens"].append(completion.prompt_tokens)
            out["completion_tokens"].append(completion.completion_tokens)
            if explode:
                out["sample_index"].append(k)
    return out
