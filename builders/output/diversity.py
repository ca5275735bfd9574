"""How varied the generated texts are: figures for the dataset card that the peer tools do not report.

- distinct-n: unique word n-grams / all word n-grams over the texts (1.0: no n-gram repeats anywhere;
  a model that writes the same phrases again and again scores low).
- mean pairwise MinHash similarity: the estimated Jaccard similarity of the n-gram sets of two texts,
  averaged over every pair of a sample (0: no shared n-grams; the dedup threshold is an upper bound
  for any single pair that survived dedup). Same shingles and hashing as `builders/dedup/minhash.py`.

Both run on a deterministic sample (seeded), so the card of a rerun shows the same figures.
"""

from __future__ import annotations

import numpy as np

from builders.dedup.minhash import band_keys, permutations
from builders.dedup.shingles import reference_units, text_units

DISTINCT_SAMPLE = 10_000
PAIRWISE_SAMPLE = 500


def diversity_figures(texts: list[str], seed: int, ngram: int = 5, num_perm: int = 128) -> dict[str, float]:
    """The card's diversity figures for `texts` (empty when there is nothing to measure)."""
    if not texts:
        return {}
    rng = np.random.default_rng(seed)
    sample = _sample(texts, DISTINCT_SAMPLE, rng)
    figures = {f"distinct-{n}": round(distinct_ngrams(sample, n), 4) for n in (1, 2, 3)}
    pairs = _sample(texts, PAIRWISE_SAMPLE, rng)
    similarity = mean_pairwise_similarity(pairs, ngram=ngram, num_perm=num_perm, seed=seed)
    if similarity is not None:
        figures[f"mean pairwise MinHash similarity ({ngram}-grams, {len(pairs)} texts)"] = round(similarity, 4)
    return figures


def distinct_ngrams(texts: list[str], n: int) -> float:
    """Unique word n-grams over all word n-grams (the words MinHash dedup compares: NFKC, lower-cased)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = reference_units(text)
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


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
