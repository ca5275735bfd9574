"""Why builders.dedup.minhash does not build its MinHash on text-dedup's helpers: the two costly steps, step by step.

    python benchmarks/dedup_steps.py                             # 4,000 documents of 200 words, 200k pairs
    python benchmarks/dedup_steps.py --docs 20000 --pairs 1000000

`text_dedup.minhash` (its per-row `embed_func` and its CLI) cannot be imported in a vLLM process (it forces the
`fork` start method), so what a recipe could call is `text_dedup.utils`: `ngrams`, the hash functions,
`UnionFind`, `optimal_param`. This measures, on one thread and the same input, the steps built on them
against builders' own:

- signatures: per row, `ngrams` of the words (split on non-word characters, lower case), `xxh3_32hash` of each
  n-gram (text-dedup's faster hash), text-dedup's permutations `(a * x + b) mod (2^61 - 1)` and the minimum per
  permutation, bands as bytes; against `builders.dedup.shingles.text_units(...).ngrams(5)` and
  `builders.dedup.minhash.band_keys` on batches of 2,048 rows;
- clusters: `UnionFind.union` over random pairs, then `find` for every row; against
  `builders.dedup.minhash.cluster_first_rows` (scipy's connected components).

The documents are windows of the Alpaca answers in `data/`. The end-to-end comparison with the
text-dedup CLI (and datasketch) is `benchmarks/dedup.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ALPACA = REPO / "data" / "alpaca_5000.json"
NON_WORD = re.compile(r"\W", re.UNICODE)


def documents(count: int, words: int) -> list[str]:
    pool = " ".join(r["output"] for r in json.loads(ALPACA.read_text())).split()
    return [" ".join(pool[(i * 137) % (len(pool) - words) :][:words]) for i in range(count)]


def text_dedup_signatures(docs: list[str], ngram: int, bands: int, rows: int) -> list[list[bytes]]:
    from text_dedup.utils import ngrams, xxh3_32hash

    rng = np.random.RandomState(42)
    prime, max_hash = np.uint64((1 << 61) - 1), np.uint64((1 << 32) - 1)
    a = rng.randint(1, prime, size=bands * rows, dtype=np.uint64)
    b = rng.randint(0, prime, size=bands * rows, dtype=np.uint64)
    out = []
    for text in docs:
        grams = {" ".join(g).encode() for g in ngrams(NON_WORD.split(text.lower()), ngram, ngram)}
        x = np.array([xxh3_32hash(g) for g in grams], dtype=np.uint64).reshape(-1, 1)
        sig = (((x * a + b) % prime) & max_hash).min(axis=0)
        out.append([bytes(sig[s : s + rows].byteswap().data) for s in range(0, bands * rows, rows)])
    return out


def builders_signatures(docs: list[str], ngram: int, bands: int, rows: int) -> list[np.ndarray]:
    from builders.dedup.minhash import BATCH_SIZE, band_keys, permutations
    from builders.dedup.shingles import text_units

    multipliers = permutations(42, bands * rows)
    return [
        band_keys(
            text_units(pa.array(docs[s : s + BATCH_SIZE], pa.large_string()), "auto").ngrams(ngram),
            multipliers,
            bands,
            rows,
        )
        for s in range(0, len(docs), BATCH_SIZE)
    ]


def best_of(repeat: int, *calls) -> list[float]:
    """The fastest of `repeat` timings of each (fn, *args), taken in turns so that both sides see the same load."""
    best = [float("inf")] * len(calls)
    for _ in range(repeat):
        for i, (fn, *args) in enumerate(calls):
            start = time.perf_counter()
            fn(*args)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=4000, help="documents to sign")
    parser.add_argument("--words", type=int, default=200, help="words per document")
    parser.add_argument("--pairs", type=int, default=200_000, help="random pairs to cluster (over as many rows)")
    parser.add_argument("--repeat", type=int, default=3, help="timings of each step (the fastest is reported)")
    args = parser.parse_args()

    from text_dedup.utils import optimal_param
    from text_dedup.utils.union_find import UnionFind

    from builders.dedup.minhash import cluster_first_rows

    docs = documents(args.docs, args.words)
    bands, rows = optimal_param(0.7, 128)
    theirs, ours = best_of(
        args.repeat, (text_dedup_signatures, docs, 5, bands, rows), (builders_signatures, docs, 5, bands, rows)
    )

    pairs = np.sort(np.random.default_rng(0).integers(0, args.pairs, size=(args.pairs, 2)), axis=1)

    def union_find() -> None:
        uf = UnionFind()
        for x, y in pairs.tolist():
            uf.union(x, y)
        [uf.find(i) for i in range(args.pairs)]

    uf_s, scipy_s = best_of(args.repeat, (union_find,), (cluster_first_rows, args.pairs, pairs))

    print(
        f"one thread, best of {args.repeat}; {args.docs} documents of {args.words} words; 5-grams, {bands} bands x {rows} rows"
    )
    print("| step | text_dedup.utils | builders | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| signatures (docs/s) | {args.docs / theirs:,.0f} | {args.docs / ours:,.0f} | {theirs / ours:.1f}x |")
    print(f"| clusters of {args.pairs:,} pairs (s) | {uf_s:.2f} | {scipy_s:.2f} | {uf_s / scipy_s:.1f}x |")
    print(f"load average: {os.getloadavg()[0]:.1f} (other work on the machine slows both sides)")


if __name__ == "__main__":
    main()
