"""Seed curation: time to embed and to cluster N texts, ours (fit on a sample, assign the rest) against a plain
k-means on every vector (scikit-learn `KMeans` with its defaults, what a one-off script does).

    python benchmarks/curate_seeds.py                                  # 10k texts, 145 clusters
    python benchmarks/curate_seeds.py --sizes 10000 100000             # the figures of docs/curate_seeds.md
    python benchmarks/curate_seeds.py --sizes 100000 --fit_sample_size 20000
    python benchmarks/curate_seeds.py --sizes 10000 --jittered 100000 --hdbscan   # what a busy 2-core box allows

The texts are built from the reference data (Alpaca answers, Shakespeare speeches, the Cosmopedia seeds): the
real texts first, then variations (sentences rotated, one sentence borrowed from another text) up to N. Both
sides cluster the same vectors, so embedding is timed once; the peer's k-means is fitted on all of them, ours on
`fit_sample_size` rows (k-means up to 20k rows, mini-batch k-means above), after which every row goes to its
nearest centroid in blocks. ARI compares the two partitions (1.0: the same clusters).

`--jittered N` times the clustering alone on N vectors made from the last embedded set (each a copy of one of
its vectors with Gaussian noise, renormalised), for sizes whose embedding the machine cannot afford; those rows
say so. `--hdbscan` adds the density-based option's time on the fit sample (embedded rows only).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from builders.dedup.embeddings import embed, load_embedder  # noqa: E402
from builders.methods.curate_seeds.clustering import MINIBATCH_ABOVE, clip, fit_clusters, fit_sample, nearest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


def reference_texts() -> list[str]:
    alpaca = json.loads((DATA / "alpaca_5000.json").read_text())
    answers = [r["output"] for r in alpaca if len(r["output"]) >= 100]
    speeches = [p for p in (DATA / "tinyshakespeare.txt").read_text().split("\n\n") if len(p) >= 100]
    seeds = [json.loads(line)["text"] for line in (REPO / "configs/cosmopedia/seeds.jsonl").read_text().splitlines()]
    return answers + speeches + seeds


def build_texts(n: int, seed: int = 0) -> list[str]:
    """The reference texts, then variations of them, n in all."""
    base = reference_texts()
    sentences = [re.split(r"(?<=[.!?:;])\s+", t) for t in base]
    rng = random.Random(seed)
    texts = base[:n]
    while len(texts) < n:
        i = len(texts) % len(base)
        own, other = sentences[i], sentences[rng.randrange(len(base))]
        shift = rng.randrange(len(own))
        texts.append(" ".join(own[shift:] + own[:shift] + [rng.choice(other)]))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--num_clusters", type=int, default=145)
    parser.add_argument("--fit_sample_size", type=int, default=100_000, help="the recipe's default")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the library's (16 on the CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jittered", type=int, nargs="*", default=[], help="clustering-only sizes (see above)")
    parser.add_argument("--hdbscan", action="store_true", help="also time HDBSCAN on the fit sample")
    parser.add_argument("--min_cluster_size", type=int, default=25)
    args = parser.parse_args()

    from threadpoolctl import threadpool_info

    load_embedder("all-minilm-l6-v2")
    import torch

    threads = {"torch": torch.get_num_threads(), **{i["internal_api"]: i["num_threads"] for i in threadpool_info()}}
    print(f"cores: {os.cpu_count()}  threads: {threads}  clusters: {args.num_clusters}")
    rows = []
    vectors = None
    for n in args.sizes:
        texts = build_texts(n, args.seed)
        began = time.perf_counter()
        vectors = embed(clip(texts), "all-minilm-l6-v2", batch_size=args.batch_size, progress=True)
        rows.append(compare(vectors, args, embed_s=time.perf_counter() - began))
        print(f"{n} texts done", flush=True)
    for n in args.jittered:
        rng = np.random.default_rng(args.seed)
        copies = vectors[rng.integers(len(vectors), size=n)] + rng.normal(0, 0.02, (n, vectors.shape[1]))
        copies = (copies / np.linalg.norm(copies, axis=1, keepdims=True)).astype(np.float32)
        rows.append(compare(copies, args, embed_s=None))
        print(f"{n} jittered vectors done", flush=True)

    print()
    print(
        "| texts | embedding s (texts/s) | vectors MB | ours: fit rows, method | ours: fit s | ours: fit + assign s "
        "| peer: KMeans on all s | peer / ours | ARI ours vs peer |"
        + (" hdbscan on the fit sample s (clusters) |" if args.hdbscan else "")
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|" + ("---:|" if args.hdbscan else ""))
    for r in rows:
        embedded = (
            f"{r['embed_s']:.1f} ({r['texts'] / r['embed_s']:.0f})" if r["embed_s"] else "not embedded: jittered"
        )
        print(
            f"| {r['texts']} | {embedded} | {r['vectors_mb']:.0f} "
            f"| {r['fit_rows']}, {r['method']} | {r['ours_fit_s']:.1f} | {r['ours_s']:.1f} | {r['peer_s']:.1f} "
            f"| {r['peer_s'] / r['ours_s']:.2f}x | {r['ari']:.2f} |"
            + (
                (f" {r['hdbscan_s']:.1f} ({r['hdbscan_clusters']}) |" if "hdbscan_s" in r else " - |")
                if args.hdbscan
                else ""
            )
        )


def compare(vectors: np.ndarray, args, embed_s: float | None) -> dict:
    """Ours (sample fit + blocked assignment) and the peer (KMeans on every vector) on the same vectors."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    n = len(vectors)
    began = time.perf_counter()
    sample = fit_sample(n, args.fit_sample_size, args.seed)
    centroids = fit_clusters(vectors[sample], "kmeans", args.num_clusters, args.seed)
    fit_s = time.perf_counter() - began
    ours, _ = nearest(vectors, centroids)
    ours_s = time.perf_counter() - began

    began = time.perf_counter()
    peer = KMeans(args.num_clusters, random_state=args.seed).fit(vectors).labels_
    peer_s = time.perf_counter() - began
    row = {
        "texts": n,
        "embed_s": embed_s,
        "vectors_mb": vectors.nbytes / 2**20,
        "fit_rows": len(sample),
        "method": "minibatch" if len(sample) > MINIBATCH_ABOVE else "kmeans",
        "ours_fit_s": fit_s,
        "ours_s": ours_s,
        "peer_s": peer_s,
        "ari": adjusted_rand_score(peer, ours),
    }
    if args.hdbscan and embed_s is not None:  # jittered copies form dense knots: no density to measure
        began = time.perf_counter()
        found = fit_clusters(vectors[sample], "hdbscan", 0, args.seed, min_cluster_size=args.min_cluster_size)
        row.update(hdbscan_s=time.perf_counter() - began, hdbscan_clusters=len(found))
    return row


if __name__ == "__main__":
    main()
