"""Near-duplicate removal with MinHash + LSH, on an in-memory `Dataset`, built on text-dedup's machinery.

From text-dedup we take the band/row choice that minimises false positives + negatives
(`optimal_param`), the 32-bit xxh3 shingle hash, and the union-find. We import them from
`text_dedup.utils`, never `text_dedup.minhash`: importing the latter forces the `fork` start method on
the whole process, which breaks vLLM (it needs `spawn`).

Unlike text-dedup's CLI: the first row of every duplicate cluster survives (deterministic); documents
too short to shingle are skipped by dedup but kept in the output; text without spaces (Chinese,
Japanese) is shingled by characters.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict

import numpy as np
from datasets import Dataset
from text_dedup.utils import UnionFind, optimal_param, xxh3_32hash

NON_ALPHA = re.compile(r"\W+", re.UNICODE)
MERSENNE_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)


def exact_dedup(ds: Dataset, column: str = "text") -> tuple[Dataset, dict]:
    """Drop rows whose normalised text (case, whitespace, punctuation folded) was seen earlier."""
    seen: set[bytes] = set()
    keep = []
    for text in ds[column]:
        digest = hashlib.blake2b(normalize(text).encode(), digest_size=16).digest()
        keep.append(digest not in seen)
        seen.add(digest)
    kept_idx = [i for i, k in enumerate(keep) if k]
    return ds.select(kept_idx), {"removed": len(ds) - len(kept_idx)}


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").lower()
    return " ".join(NON_ALPHA.sub(" ", text).split())


def shingles(text: str, ngram: int, tokenizer: str) -> set[bytes]:
    """Word n-grams (text-dedup's tokenisation) or character n-grams for text without spaces."""
    if tokenizer == "auto":
        tokenizer = "char" if _mostly_unspaced(text) else "word"
    if tokenizer == "char":
        units = [c for c in normalize(text) if not c.isspace()]
        joiner = ""
    else:
        units = [t for t in NON_ALPHA.split(text.lower()) if t]
        joiner = " "
    if len(units) < ngram:
        return set()
    return {joiner.join(units[i : i + ngram]).encode() for i in range(len(units) - ngram + 1)}


def _mostly_unspaced(text: str) -> bool:
    letters = sum(1 for c in text if c.isalpha())
    return letters > 0 and text.count(" ") < letters / 20


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
):
    """Remove near duplicates of `column`; the first row of each cluster survives.

    Returns `(kept, stats)` with `stats = {"removed", "clusters", "bands", "rows_per_band", "skipped_short"}`;
    with `return_removed=True`, `(kept, stats, removed)`. `cluster_column` adds the cluster id (the index of
    the cluster's first row) to the kept rows.
    """
    bands, rows = optimal_param(threshold, num_perm, false_positive_weight=0.5, false_negative_weight=0.5)
    rng = np.random.RandomState(seed)
    a = rng.randint(1, MERSENNE_PRIME, size=num_perm, dtype=np.uint64)
    b = rng.randint(0, MERSENNE_PRIME, size=num_perm, dtype=np.uint64)

    def signatures(batch: dict[str, list]) -> dict[str, list]:
        out = []
        for text in batch[column]:
            grams = shingles(text or "", ngram, tokenizer)
            if not grams:
                out.append(None)
                continue
            h = np.fromiter((xxh3_32hash(g) for g in grams), dtype=np.uint64, count=len(grams))
            sig = ((np.outer(h, a) + b) % MERSENNE_PRIME & MAX_HASH).min(axis=0).astype(np.uint32)
            out.append(sig.tobytes())
        return {"_sig": out}

    sigs = ds.select_columns([column]).map(signatures, batched=True, num_proc=num_proc, desc="MinHash signatures")[
        "_sig"
    ]

    uf = UnionFind()
    tables = [defaultdict(list) for _ in range(bands)]
    skipped = 0
    for idx, sig in enumerate(sigs):
        if sig is None:
            skipped += 1
            continue
        values = np.frombuffer(sig, dtype=np.uint32)
        for band, table in enumerate(tables):
            key = values[band * rows : (band + 1) * rows].tobytes()
            bucket = table[key]
            if bucket:
                uf.union(bucket[0], idx)
            else:
                bucket.append(idx)

    # The survivor of a cluster is its smallest index, whatever root the union-find chose.
    first_of_root: dict[int, int] = {}
    cluster_of = []
    for idx in range(len(sigs)):
        root = uf.find(idx) if idx in uf.parent else idx
        first_of_root.setdefault(root, idx)
        cluster_of.append(first_of_root[root])
    keep = [i for i, c in enumerate(cluster_of) if c == i]
    sizes: dict[int, int] = defaultdict(int)
    for c in cluster_of:
        sizes[c] += 1
    clusters = sum(1 for size in sizes.values() if size > 1)

    kept = ds.select(keep)
    if cluster_column:
        kept = kept.add_column(cluster_column, [cluster_of[i] for i in keep])
    stats = {
        "removed": len(ds) - len(keep),
        "clusters": clusters,
        "bands": bands,
        "rows_per_band": rows,
        "skipped_short": skipped,
    }
    if return_removed:
        removed_idx = [i for i, c in enumerate(cluster_of) if c != i]
        removed = ds.select(removed_idx).add_column("duplicate_of", [cluster_of[i] for i in removed_idx])
        return kept, stats, removed
    return kept, stats
