"""How varied the generated texts are: figures for the dataset card that the peer tools do not report.

- distinct-n: unique word n-grams / all word n-grams over the texts (1.0: no n-gram repeats anywhere;
  a model that writes the same phrases again and again scores low). The n-grams are counted by their 64-bit
  hashes (`builders.dedup.shingles`, vectorised; two of 10 million n-grams share a hash with odds of about
  3e-6), a batch of texts per thread on `num_proc` threads.
- mean pairwise MinHash similarity: the estimated Jaccard similarity of the n-gram sets of two texts,
  averaged over every pair of a sample (0: no shared n-grams; the dedup threshold is an upper bound
  for any single pair that survived dedup). Same shingles and hashing as `builders/dedup/minhash.py`.

Both run on a deterministic sample (seeded), so the card of a rerun shows the same figures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from builders.dedup.minhash import band_keys, permutations
from builders.dedup.shingles import text_units
from builders.parallel import resolve_num_proc

DISTINCT_SAMPLE = 10_000
PAIRWISE_SAMPLE = 500
BATCH_TEXTS = 1_000  # texts per thread task


def diversity_figures(
    texts: list[str], seed: int, ngram: int = 5, num_perm: int = 128, num_proc: int | None = None
) -> dict[str, float]:
    """The card's diversity figures for `texts` (empty when there is nothing to measure)."""
    if not texts:
        return {}
    rng = np.random.default_rng(seed)
    sample = _sample(texts, DISTINCT_SAMPLE, rng)
    distinct = distinct_shares(sample, (1, 2, 3), num_proc)
    figures = {f"distinct-{n}": round(share, 4) for n, share in distinct.items()}
    pairs = _sample(texts, PAIRWISE_SAMPLE, rng)
    similarity = mean_pairwise_similarity(pairs, ngram=ngram, num_perm=num_perm, seed=seed)
    if similarity is not None:
        figures[f"mean pairwise MinHash similarity ({ngram}-grams, {len(pairs)} texts)"] = round(similarity, 4)
    return figures


def distinct_ngrams(texts: list[str], n: int, num_proc: int | None = None) -> float:
    """Unique word n-grams over all word n-grams (the words MinHash dedup compares: NFKC, lower-cased)."""
    return distinct_shares(texts, (n,), num_proc)[n]


def distinct_shares(texts: list[str], sizes: tuple[int, ...], num_proc: int | None = None) -> dict[int, float]:
    """`distinct_ngrams` for each n-gram size in `sizes`, the texts split into words once."""

    def hashes(batch: list[str]) -> list[np.ndarray]:
        units = text_units(batch, False)
        return [units.ngrams(n).hashes for n in sizes]

    batches = [texts[i : i + BATCH_TEXTS] for i in range(0, len(texts), BATCH_TEXTS)]
    workers = max(1, min(resolve_num_proc(num_proc), len(batches)))
    if workers == 1:
        parts = [hashes(batch) for batch in batches]
    else:  # numpy and pyarrow release the GIL: threads, no pickling
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(hashes, batches))
    shares = {}
    for k, n in enumerate(sizes):
        grams = np.concatenate([part[k] for part in parts]) if parts else np.empty(0, np.uint64)
        shares[n] = len(np.unique(grams)) / len(grams) if len(grams) else 0.0
    return shares


def mean_pairwise_similarity(texts: list[str], ngram: int = 5, num_perm: int = 128, seed: int = 42) -> float | None:
    """Mean estimated Jaccard similarity over all pairs of `texts` (texts too short to shingle are left out)."""
    grams = text_units(texts, "auto").ngrams(ngram)
    # One band of one row per permutation: the band keys are the MinHash signature values themselves.
    signatures = band_keys(grams, permutations(seed, num_perm), bands=num_perm, rows=1).T
    if len(signatures) < 2:
        return None
    sigs = signatures
    total = sum(float((sigs[i] == sigs[i + 1 :]).mean(axis=1).sum()) for i in range(len(sigs) - 1))
    return total / (len(sigs) * (len(sigs) - 1) / 2)


def _sample(texts: list[str], k: int, rng: np.random.Generator) -> list[str]:
    if len(texts) <= k:
        return list(texts)
    return [texts[i] for i in sorted(rng.choice(len(texts), size=k, replace=False))]
