"""Near-duplicate removal by embedding similarity, blocked so that it never holds an n x n matrix.

Rows are visited in order and a row is dropped when a row kept before it has cosine similarity >= `threshold`
with it; otherwise it is kept. The first row of a group of paraphrases survives, like in `dedup.minhash_dedup`,
and the result does not depend on the block sizes. (The rule is greedy: a row similar only to a row that was
itself dropped is kept, since nothing kept stands for it.)

Memory and time at scale: docs/persona_hub.md, "How embedding dedup scales".
"""

from __future__ import annotations

import time

import numpy as np
from datasets import Dataset, Value

from builders.dedup.embeddings import EMBEDDED_MINILM, embed

BLOCK_ROWS = 2048
KEPT_BLOCK_ROWS = 16384


def near_duplicates(
    vectors: np.ndarray,
    threshold: float = 0.9,
    block_size: int = BLOCK_ROWS,
    kept_block_size: int = KEPT_BLOCK_ROWS,
) -> np.ndarray:
    """For unit-length `vectors` (n x d), the index of the kept row each row duplicates, or -1 if it is kept.

    A dropped row points to the most similar row kept before its block, or to the first row of its own block
    that made it a duplicate.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    duplicate_of = np.full(n, -1, dtype=np.int64)
    kept = np.empty((min(n, block_size), dim), dtype=np.float32)  # the kept rows, in order; grows by doubling
    kept_ids = np.empty(len(kept), dtype=np.int64)
    num_kept = 0

    for start in range(0, n, block_size):
        block = vectors[start : start + block_size]
        # 1. Against every row kept in earlier blocks, c kept rows at a time.
        best = np.full(len(block), -np.inf, dtype=np.float32)
        best_at = np.full(len(block), -1, dtype=np.int64)
        for k0 in range(0, num_kept, kept_block_size):
            k1 = min(k0 + kept_block_size, num_kept)
            sims = block @ kept[k0:k1].T
            j = sims.argmax(axis=1)
            top = sims[np.arange(len(block)), j]
            better = top > best
            best[better] = top[better]
            best_at[better] = kept_ids[k0 + j[better]]
        alive = best < threshold
        duplicate_of[start : start + len(block)][~alive] = best_at[~alive]

        # 2. Within the block, in order: a surviving row removes the later rows similar to it.
        close = np.triu(block @ block.T >= threshold, k=1)
        for i in np.flatnonzero(close.any(axis=1)):
            if alive[i]:
                later = np.flatnonzero(close[i] & alive)
                alive[later] = False
                duplicate_of[start + later] = start + i

        # 3. The block's survivors join the kept rows.
        survivors = np.flatnonzero(alive)
        if num_kept + len(survivors) > len(kept):
            size = max(2 * len(kept), num_kept + len(survivors))
            kept = np.resize(kept, (size, dim))  # rows past num_kept are overwritten below
            kept_ids = np.resize(kept_ids, size)
        kept[num_kept : num_kept + len(survivors)] = block[survivors]
        kept_ids[num_kept : num_kept + len(survivors)] = start + survivors
        num_kept += len(survivors)
    return duplicate_of


def embedding_dedup(
    ds: Dataset,
    column: str,
    threshold: float = 0.9,
    model: str = EMBEDDED_MINILM,
    batch_size: int | None = None,
    block_size: int = BLOCK_ROWS,
    return_removed: bool = False,
    num_threads: int | None = None,
):
    """Drop rows of `ds` whose `column` embeds within cosine `threshold` of an earlier kept row.

    Returns `(kept, stats)`, or `(kept, stats, removed)` with `return_removed=True`; `removed` has a
    `duplicate_of` column (the index in `ds` of the kept row it repeats). `stats` holds `removed` and the seconds
    spent embedding and deduplicating. `num_threads`: torch's threads on the CPU (None: every core this process
    may use).
    """
    if len(ds) == 0:
        stats = {"removed": 0, "embedding_seconds": 0.0, "dedup_seconds": 0.0}
        return (ds, stats, _removed_rows(ds, [], [])) if return_removed else (ds, stats)
    began = time.perf_counter()
    vectors = embed([t or "" for t in ds[column]], model=model, batch_size=batch_size, num_threads=num_threads)
    embedded = time.perf_counter()
    duplicate_of = near_duplicates(vectors, threshold, block_size=block_size)
    done = time.perf_counter()

    kept = ds.select(np.flatnonzero(duplicate_of < 0))
    removed_idx = np.flatnonzero(duplicate_of >= 0)
    stats = {
        "removed": len(removed_idx),
        "model": model,
        "threshold": threshold,
        "embedding_seconds": round(embedded - began, 2),
        "dedup_seconds": round(done - embedded, 2),
    }
    if not return_removed:
        return kept, stats
    return kept, stats, _removed_rows(ds, removed_idx, duplicate_of[removed_idx].tolist())


def _removed_rows(ds: Dataset, idx, duplicate_of: list[int]) -> Dataset:
    if len(idx) == 0:  # add_column fails on an empty selection of a concatenated dataset
        features = ds.features.copy()
        features["duplicate_of"] = Value("int64")
        return Dataset.from_dict({name: [] for name in features}, features=features)
    return ds.select(idx).add_column("duplicate_of", duplicate_of)


def nearest_neighbours(
    vectors: np.ndarray, distance: float, block_size: int = BLOCK_ROWS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For unit-length `vectors` (n x d), each row's nearest other row, Magpie's way (its exp/gen_dis.py).

    Distances are squared L2, what FAISS's flat L2 index returns and Magpie writes: for unit vectors
    |a - b|^2 = 2 - 2 cos(a, b), so 0 is the same direction and 4 the opposite. Returns, per row:
    the distance to the nearest other row (NaN when there is none), how many other rows lie closer than
    `distance` (its repeats), and the index of the first row of its group of repeats (itself when it comes
    first; -1 without repeats). Blocked: block_size x block_size similarities at a time, never n x n.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    nearest = np.full(n, np.inf, dtype=np.float64)
    repeats = np.zeros(n, dtype=np.int64)
    first = np.arange(n, dtype=np.int64)
    for start in range(0, n, block_size):
        rows = vectors[start : start + block_size]
        own = np.arange(start, start + len(rows))
        for other in range(0, n, block_size):
            columns = np.arange(other, min(other + block_size, n))
            dist = np.maximum(2.0 - 2.0 * (rows @ vectors[columns].T), 0.0).astype(np.float64)
            dist[own[:, None] == columns[None, :]] = np.inf  # a row is not its own neighbour
            nearest[own] = np.minimum(nearest[own], dist.min(axis=1))
            close = dist < distance
            repeats[own] += close.sum(axis=1)
            earliest = np.where(close, columns[None, :], n).min(axis=1)
            first[own] = np.minimum(first[own], earliest)
    nearest[np.isinf(nearest)] = np.nan
    first[repeats == 0] = -1
    return nearest, repeats, first
