"""Exact and MinHash near-duplicate removal on an in-memory `Dataset`, vectorised with numpy.

    kept, stats = exact_dedup(ds, "text")                       # same normalised text
    kept, stats = minhash_dedup(ds, "text", threshold=0.7)      # word 5-gram Jaccard >= 0.7

MinHash + LSH as in text-dedup, with its band/row choice (`optimal_param`), but no step loops over rows in
Python, nothing touches the multiprocessing start method (vLLM needs `spawn`), and candidate pairs are
verified by their true Jaccard. How it works, and why it is ours rather than text-dedup's functions (measured
step by step): docs/dedup.md, "How the MinHash stage works".
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from datasets import Dataset, Value
from datasets.utils import tqdm

from builders.dedup.shingles import Grams, reference_units, text_units

U64 = np.uint64
BATCH_SIZE = 2048
_BAND_MULTIPLIER = U64(0x9FB21C651E98DF25)
_HASH_BITS = 40  # n-gram hash bits kept for exact Jaccard; the rest of a 64-bit sort key numbers the pair


def normalize(text: str) -> str:
    """The normalised text that exact dedup compares: NFKC, lower case, punctuation and spacing folded."""
    return " ".join(reference_units(text))


def shingles(text: str, ngram: int, tokenizer: str = "word") -> set[tuple[str, ...]]:
    """The n-grams MinHash compares, in plain Python (the definition; the vectorised path hashes the same)."""
    char_mode = tokenizer == "char" or (tokenizer == "auto" and _mostly_unspaced(text))
    units = reference_units(text, char_mode)
    return {tuple(units[i : i + ngram]) for i in range(len(units) - ngram + 1)}


def jaccard(a: str, b: str, ngram: int = 5, tokenizer: str = "word") -> float:
    sa, sb = shingles(a, ngram, tokenizer), shingles(b, ngram, tokenizer)
    return len(sa & sb) / len(sa | sb) if sa or sb else 0.0


def _mostly_unspaced(text: str) -> bool:
    text = unicodedata.normalize("NFKC", text or "")
    letters = sum(1 for c in text if c.isalnum() or c == "_")
    return letters > 0 and text.count(" ") * 20 < letters


# ---------------------------------------------------------------------------------------------------------------
# exact


def exact_dedup(
    ds: Dataset,
    column: str = "text",
    min_length: int = 1,
    num_proc: int | None = None,
    return_removed: bool = False,
):
    """Drop rows whose normalised text (case, spacing, punctuation folded) was seen in an earlier row.

    Rows shorter than `min_length` words (characters for text without spaces) are kept, as MinHash keeps rows
    too short to shingle: two answers "Yes." to different questions are not duplicate rows. Returns
    `(kept, {"removed": n})`; with `return_removed=True`, `(kept, stats, removed)`, where `removed` has a
    `duplicate_of` column (the index of the earlier row with the same text).
    """
    n = len(ds)
    hashes = np.zeros((n, 2), dtype=U64)
    long_enough = np.zeros(n, dtype=bool)
    table = _arrow(ds, column)

    def batch(start: int, stop: int) -> None:
        units = text_units(_texts(table, column, start, stop), "auto")
        hashes[start:stop] = units.doc_hashes()
        long_enough[start:stop] = units.counts >= max(min_length, 1)

    _run_batches(batch, n, num_proc, desc="Exact dedup")
    rows = np.flatnonzero(long_enough)
    _, first, inverse = np.unique(hashes[rows], axis=0, return_index=True, return_inverse=True)
    first_of = np.arange(n)
    first_of[rows] = rows[first][inverse.ravel()]
    return _result(ds, first_of, {"removed": int((first_of != np.arange(n)).sum())}, None, return_removed)


# ---------------------------------------------------------------------------------------------------------------
# MinHash


def minhash_dedup(
    ds: Dataset,
    column: str = "text",
    threshold: float = 0.7,
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 42,
    num_proc: int | None = None,
    tokenizer: str = "auto",
    cluster_column: str | None = None,
    return_removed: bool = False,
    verify: bool = True,
    batch_size: int = BATCH_SIZE,
):
    """Remove near duplicates of `column`; the first row of each cluster survives.

    `tokenizer`: "word" (word n-grams), "char" (character n-grams, for Chinese or Japanese), or "auto" (per row:
    characters when the text has fewer than one space per 20 word characters). `num_proc`: threads (default:
    all cores). `verify`: check each candidate pair's true Jaccard (precision); off, LSH collisions decide alone.

    Returns `(kept, stats)`, with `stats = {"removed", "clusters", "bands", "rows_per_band", "skipped_short",
    "candidate_pairs", "duplicate_pairs"}`; with `return_removed=True`, `(kept, stats, removed)`, where
    `removed` has a `duplicate_of` column (the index of its cluster's first row). `cluster_column` adds that
    index to the kept rows (its own index for a row without duplicates).
    """
    if tokenizer not in ("auto", "word", "char"):
        raise ValueError(f"tokenizer must be 'auto', 'word' or 'char', got {tokenizer!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = len(ds)
    bands, rows = lsh_params(threshold, num_perm, verify)
    multipliers = permutations(seed, bands * rows)
    char_mode = {"word": False, "char": True, "auto": "auto"}[tokenizer]
    keys = np.empty((bands, n), dtype=U64)
    has_grams = np.zeros(n, dtype=bool)
    table = _arrow(ds, column)

    def signature_batch(start: int, stop: int) -> None:
        grams = text_units(_texts(table, column, start, stop), char_mode).ngrams(ngram)
        has = grams.counts > 0
        has_grams[start:stop] = has
        if has.any():
            keys[:, start:stop][:, has] = band_keys(grams, multipliers, bands, rows)

    _run_batches(signature_batch, n, num_proc, batch_size, desc="MinHash signatures")
    pairs = candidate_pairs(keys, np.flatnonzero(has_grams), num_proc)
    candidates = len(pairs)
    if verify and len(pairs):
        sure = np.zeros(len(pairs), dtype=bool)
        if threshold <= 0.9:  # every band agrees: Jaccard < 0.9 has a chance below 0.9 ** (bands * rows)
            sure = np.all(keys[:, pairs[:, 0]] == keys[:, pairs[:, 1]], axis=0)
        check = pairs[~sure]
        similar = pair_jaccard(table, column, check, ngram, char_mode, num_proc, batch_size) >= threshold
        pairs = np.concatenate((pairs[sure], check[similar]))

    first = cluster_first_rows(n, pairs)
    sizes = np.bincount(first, minlength=n)
    stats = {
        "removed": int((first != np.arange(n)).sum()),
        "clusters": int((sizes > 1).sum()),
        "bands": bands,
        "rows_per_band": rows,
        "skipped_short": int(n - has_grams.sum()),
        "candidate_pairs": int(candidates),
        "duplicate_pairs": int(len(pairs)),
    }
    return _result(ds, first, stats, cluster_column, return_removed)


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, verify: bool = True) -> tuple[int, int]:
    """(bands, rows): text-dedup's (and datasketch's) `optimal_param`; with verification, false negatives weigh 0.9."""
    weights = (0.1, 0.9) if verify else (0.5, 0.5)
    return optimal_param(threshold, num_perm, *weights)


def optimal_param(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """The (bands, rows) that minimise the weighted areas of false positives and false negatives.

    text_dedup.utils.optimal_param (from datasketch), computed for all (b, r) at once: the integrands are
    polynomials of degree b * r <= num_perm, which Gauss-Legendre quadrature with num_perm / 2 + 1 nodes
    integrates exactly (importing text_dedup.utils or scipy.integrate would cost 0.3 s a process).
    """
    b, r = zip(*[(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    b, r = np.array(b, dtype=float)[:, None], np.array(r, dtype=float)[:, None]
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def integral(f, lo: float, hi: float) -> np.ndarray:
        s = (nodes + 1) * (hi - lo) / 2 + lo
        return f(s[None, :]) @ weights * (hi - lo) / 2

    false_positive = integral(lambda s: 1 - (1 - s**r) ** b, 0.0, threshold)
    false_negative = integral(lambda s: (1 - s**r) ** b, threshold, 1.0)
    best = int(np.argmin(false_positive * false_positive_weight + false_negative * false_negative_weight))
    return int(b[best, 0]), int(r[best, 0])


def permutations(seed: int, count: int) -> np.ndarray:
    """Odd multipliers: x -> a * x mod 2^32 is then a bijection, a permutation of the 32-bit n-gram hashes."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << 32, size=count, dtype=np.uint32) | np.uint32(1)


def band_keys(grams: Grams, a: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """MinHash signatures of the documents that have n-grams, folded into one uint64 per band: (bands, docs)."""
    x = (grams.hashes >> U64(32)).astype(np.uint32)
    starts = grams.offsets[:-1][grams.counts > 0]
    t = np.empty_like(x)
    sig = np.empty((bands * rows, len(starts)), dtype=np.uint32)
    for k in range(bands * rows):
        np.multiply(x, a[k], out=t)
        np.minimum.reduceat(t, starts, out=sig[k])
    keys = np.empty((bands, len(starts)), dtype=U64)
    for band in range(bands):
        key = sig[band * rows].astype(U64)
        for r in range(1, rows):
            key *= _BAND_MULTIPLIER
            key += sig[band * rows + r]
        keys[band] = key
    return keys


def candidate_pairs(keys: np.ndarray, rows: np.ndarray, num_proc: int | None = None) -> np.ndarray:
    """Pairs of rows whose keys agree in some band, as (earlier, later) rows, each pair once.

    In a bucket of equal keys every member is paired with the bucket's first row and with the member before it
    in row order: enough to connect the bucket, and linear in its size; a stable sort makes the pairs a function
    of the buckets alone (`builders.dedup.spark` builds the same ones). Bands run on threads.
    """
    n = np.int64(keys.shape[1])

    def band_pairs(band: np.ndarray) -> np.ndarray:
        k = band[rows]
        order = np.argsort(k, kind="stable")  # `rows` ascend: a bucket's members in row order
        k, members = k[order], rows[order]
        same = k[1:] == k[:-1]
        run_start = np.concatenate(([True], ~same))
        first = np.minimum.reduceat(members, np.flatnonzero(run_start))[np.cumsum(run_start) - 1]
        later = np.flatnonzero(~run_start)
        codes = []
        for u, v in ((first[later], members[later]), (members[later - 1], members[later])):
            codes.append((np.minimum(u, v) * n + np.maximum(u, v))[u != v])
        return np.concatenate(codes)

    if len(rows) < 2:
        return np.empty((0, 2), dtype=np.int64)
    codes = np.unique(np.concatenate(_map_threads(band_pairs, list(keys), num_proc)))  # pair (u, v): u * n + v
    return np.stack((codes // n, codes % n), axis=1)


def pair_jaccard(
    table: Dataset,
    column: str,
    pairs: np.ndarray,
    ngram: int,
    char_mode,
    num_proc: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """Exact Jaccard similarity of the n-gram sets of each pair of rows (`table`: from `_arrow`)."""
    if len(pairs) == 0:
        return np.empty(0)
    docs = np.unique(pairs)
    sets: list[tuple[np.ndarray, np.ndarray]] = [None] * ((len(docs) + batch_size - 1) // batch_size)

    def batch(start: int, stop: int) -> None:
        grams = text_units(_texts(table, column, indices=docs[start:stop]), char_mode).ngrams(ngram)
        sets[start // batch_size] = _distinct_per_doc(grams)

    _run_batches(batch, len(docs), num_proc, batch_size, desc="Verifying candidate pairs")
    hashes = np.concatenate([h for h, _ in sets])
    counts = np.concatenate([c for _, c in sets])
    sets.clear()
    offsets = np.concatenate(([0], np.cumsum(counts)))
    u, v = np.searchsorted(docs, pairs[:, 0]), np.searchsorted(docs, pairs[:, 1])

    done = np.cumsum(counts[u] + counts[v])
    chunks, start = [], 0
    while start < len(pairs):  # chunks of about 2M n-gram hashes (about 100 MB of work arrays each)
        base = done[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(done, base + (1 << 21), side="right")))
        chunks.append((start, stop))
        start = stop

    def chunk(bounds: tuple[int, int]) -> np.ndarray:
        return _chunk_jaccard(hashes, offsets, counts, u[slice(*bounds)], v[slice(*bounds)])

    return np.concatenate(_map_threads(chunk, chunks, num_proc))


def _chunk_jaccard(hashes, offsets, counts, u, v) -> np.ndarray:
    pair = np.arange(len(u), dtype=U64)
    sides = []
    for side in (u, v):
        idx = _ranges(offsets[side], counts[side])
        sides.append((np.repeat(pair, counts[side]) << U64(_HASH_BITS)) | hashes[idx])
    merged = np.sort(np.concatenate(sides))
    equal = merged[1:] == merged[:-1]
    common = np.bincount((merged[1:][equal] >> U64(_HASH_BITS)).astype(np.int64), minlength=len(u))
    union = counts[u] + counts[v] - common
    return np.divide(common, union, out=np.zeros(len(u)), where=union > 0)


def _distinct_per_doc(grams: Grams) -> tuple[np.ndarray, np.ndarray]:
    """Each document's distinct n-gram hashes (truncated to 40 bits), sorted; and how many it has."""
    doc = np.repeat(np.arange(len(grams.counts), dtype=U64), grams.counts)
    key = np.sort((doc << U64(_HASH_BITS)) | (grams.hashes >> U64(64 - _HASH_BITS)))
    fresh = np.concatenate(([True], key[1:] != key[:-1])) if len(key) else np.empty(0, dtype=bool)
    key = key[fresh]
    counts = np.bincount((key >> U64(_HASH_BITS)).astype(np.int64), minlength=len(grams.counts))
    return key & U64((1 << _HASH_BITS) - 1), counts


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """concatenate(arange(s, s + l) for s, l in zip(starts, lengths)), without a Python loop."""
    out_starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) + np.repeat(starts - out_starts, lengths)


def cluster_first_rows(n: int, pairs: np.ndarray) -> np.ndarray:
    """For every row, the first (smallest) row of its cluster: connected components of the pairs."""
    if len(pairs) == 0:
        return np.arange(n)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels]


# ---------------------------------------------------------------------------------------------------------------
# batches


def _arrow(ds: Dataset, column: str) -> Dataset:
    """`ds` reduced to `column`, read as Arrow tables (honours a row selection such as `ds.select`)."""
    if column not in ds.column_names:
        raise KeyError(f"column {column!r} not in the dataset (columns: {', '.join(ds.column_names)})")
    return ds.select_columns([column]).with_format("arrow")


def _texts(table: Dataset, column: str, start: int = 0, stop: int | None = None, indices=None):
    rows = table[start:stop] if indices is None else table[indices.tolist()]
    return rows.column(column)


def _run_batches(
    fn: Callable[[int, int], None], n: int, num_proc: int | None, batch_size: int = BATCH_SIZE, desc: str = ""
) -> None:
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    workers = max(1, min(num_proc or os.cpu_count() or 1, len(bounds)))
    with tqdm(total=n, desc=desc, unit=" rows", leave=False) as bar:
        if workers == 1:
            for s, e in bounds:
                fn(s, e)
                bar.update(e - s)
            return
        with ThreadPoolExecutor(workers) as pool:
            for (s, e), _ in zip(bounds, pool.map(lambda se: fn(*se), bounds)):
                bar.update(e - s)


def _result(ds: Dataset, first: np.ndarray, stats: dict, cluster_column: str | None, return_removed: bool):
    """(kept, stats[, removed]) from the first row of each row's cluster."""
    own = first == np.arange(len(ds))
    survivors, removed_idx = np.flatnonzero(own), np.flatnonzero(~own)
    kept = _select(ds, survivors)
    if cluster_column:
        kept = kept.add_column(cluster_column, first[survivors].tolist())
    if not return_removed:
        return kept, stats
    if len(removed_idx) == 0:  # datasets cannot add a column to an empty selection
        features = ds.features.copy()
        features["duplicate_of"] = Value("int64")
        return kept, stats, Dataset.from_dict({name: [] for name in features}, features=features)
    removed = ds.select(removed_idx).add_column("duplicate_of", first[removed_idx].tolist())
    return kept, stats, removed


def _map_threads(fn: Callable, items: list, num_proc: int | None) -> list:
    """[fn(item) for item in items], on threads (the work is numpy, which releases the GIL)."""
    workers = max(1, min(num_proc or os.cpu_count() or 1, len(items)))
    if workers == 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def _select(ds: Dataset, rows: np.ndarray) -> Dataset:
    if len(rows) == len(ds):
        return ds
    return ds.select(rows)  # a numpy array: datasets fingerprints it fast, a list slowly
