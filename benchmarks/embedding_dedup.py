"""Embedding dedup of personas: our blocked scan vs the naive n x n similarity matrix, on the same embeddings.

    python benchmarks/embedding_dedup.py                         # 10k personas
    python benchmarks/embedding_dedup.py --sizes 10000,100000    # the naive matrix is skipped where it does not fit

The personas are synthetic but realistic: "A {trait} {occupation} {place} who {activity} and {detail}." drawn
combinatorially from hand-written lists (about 30-60 choices per slot, so many pairs share most of their words
and some land above the 0.9 cosine threshold), each string unique. They are embedded once with the embedded
all-MiniLM-L6-v2 (sentence-transformers, batch 256, on `--threads` threads), and both dedups run on the same
unit vectors with the same rule (a row is dropped when a row kept before it has cosine >= 0.9):

- builders: `builders.dedup.embedding.near_duplicates` (row blocks of 2,048 against kept blocks of 16,384);
- naive: `vectors @ vectors.T` (n x n float32), then the same ordered scan over the full matrix; run only when
  the matrix fits in `--naive-max-gb`.

Reported: embedding time, dedup time, peak memory of the dedup step (tracemalloc, which sees numpy's buffers;
the embeddings themselves are excluded), the kept count, and whether both kept exactly the same rows.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRAITS = """retired young self-taught semi-retired newly qualified part-time award-winning bilingual veteran
ambitious soft-spoken meticulous curious outspoken patient energetic reclusive second-generation first-time
former volunteer overworked cheerful""".split()
OCCUPATIONS = [
    "structural engineer",
    "paediatric nurse",
    "primary school teacher",
    "beekeeper",
    "tax accountant",
    "marine biologist",
    "jazz pianist",
    "long-haul truck driver",
    "emergency room doctor",
    "librarian",
    "wedding photographer",
    "organic farmer",
    "software developer",
    "pastry chef",
    "museum conservator",
    "air traffic controller",
    "social worker",
    "bicycle mechanic",
    "translator",
    "data analyst",
    "high school chemistry teacher",
    "veterinary nurse",
    "furniture restorer",
    "sports physiotherapist",
    "urban planner",
    "investigative journalist",
    "hospice chaplain",
    "ferry captain",
    "landscape architect",
    "speech therapist",
    "civil rights lawyer",
    "crossword setter",
    "locksmith",
    "glassblower",
    "wildlife ranger",
    "quantity surveyor",
    "puppeteer",
    "midwife",
    "seismologist",
    "tailor",
    "stand-up comedian",
    "orchestra conductor",
    "game designer",
    "dairy farmer",
    "fire fighter",
    "sommelier",
    "radio presenter",
    "archaeologist",
    "cartographer",
    "violin maker",
]
PLACES = [
    "in rural Iowa",
    "in a coastal town in Maine",
    "in central Tokyo",
    "on a Scottish island",
    "in suburban Melbourne",
    "in Lagos",
    "in a mountain village in the Alps",
    "in Montreal",
    "in Nairobi",
    "in a small town in Andalusia",
    "in Buenos Aires",
    "in the outskirts of Lyon",
    "in Reykjavik",
    "in a Texas border town",
    "in Kraków",
    "in Hyderabad",
    "in a fishing port in Norway",
    "in Cape Town",
    "in the Scottish Highlands",
    "in downtown Chicago",
    "in a village in Kerala",
    "in Vancouver",
    "in Naples",
    "in rural Saskatchewan",
    "in Seoul",
    "in a Welsh valley",
    "in Marseille",
    "in Tasmania",
    "in the Peak District",
    "in Santiago",
]
ACTIVITIES = [
    "restores old wooden sailing boats",
    "runs a weekly reading club for children",
    "coaches the local youth football team",
    "volunteers at a food bank",
    "writes a blog about local history",
    "trains rescue dogs",
    "grows rare heirloom tomatoes",
    "builds model railways",
    "teaches evening classes",
    "collects vintage maps",
    "sings in a community choir",
    "repairs neighbours' bicycles",
    "organises a monthly repair café",
    "studies medieval manuscripts",
    "keeps a detailed birdwatching log",
    "brews cider from local apples",
    "mentors first-generation university students",
    "plays the cello",
    "runs ultramarathons",
    "translates poetry",
    "bakes sourdough for the farmers' market",
    "maps hiking trails",
    "fosters elderly cats",
    "tutors refugees in maths",
    "designs board games",
    "photographs abandoned factories",
    "campaigns for cycle lanes",
    "keeps bees on the roof",
    "restores vintage radios",
    "writes crime novels at night",
]
DETAILS = [
    "worries about rising rents",
    "is learning Japanese",
    "cares for an ageing parent",
    "has three teenage children",
    "never misses a chess tournament",
    "is saving to open a café",
    "recently moved from abroad",
    "distrusts new technology",
    "loves spreadsheets",
    "is training for a marathon",
    "keeps a large vegetable garden",
    "reads every book on the Booker shortlist",
    "is afraid of flying",
    "dreams of sailing around the world",
    "follows every cycling race",
    "is a keen amateur astronomer",
    "struggles with chronic back pain",
    "is writing a family history",
    "collects jazz records",
    "is studying for a part-time degree",
]


def synthetic_personas(n: int, seed: int = 0) -> list[str]:
    """n distinct persona strings drawn from the lists above."""
    slots = (TRAITS, OCCUPATIONS, PLACES, ACTIVITIES, DETAILS)
    total = 1
    for slot in slots:
        total *= len(slot)
    rng = random.Random(seed)
    out = []
    for code in rng.sample(range(total), n):  # distinct combinations
        picks = []
        for slot in slots:
            code, i = divmod(code, len(slot))
            picks.append(slot[i])
        trait, job, place, activity, detail = picks
        article = "An" if trait[0] in "aeiou" else "A"
        out.append(f"{article} {trait} {job} {place} who {activity} and {detail}.")
    return out


def naive_near_duplicates(vectors, threshold):
    """The full n x n similarity matrix, then the same ordered rule."""
    import numpy as np

    close = (vectors @ vectors.T) >= threshold
    alive = np.ones(len(vectors), dtype=bool)
    for i in range(len(vectors)):
        if alive[i]:
            alive[i + 1 :] &= ~close[i, i + 1 :]
    return np.where(alive, -1, 0)


def measured(fn, *args):
    tracemalloc.start()
    began = time.perf_counter()
    result = fn(*args)
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated persona counts")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads")
    parser.add_argument("--naive-max-gb", type=float, default=4.0, help="skip the naive matrix above this size")
    parser.add_argument("--cache", default=None, help="folder to keep embeddings in between runs (.npy)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from builders.dedup.embedding import near_duplicates
    from builders.dedup.embeddings import embed, load_embedder

    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    load_embedder("all-minilm-l6-v2")
    print(f"model loaded in {time.perf_counter() - began:.1f}s; torch threads: {torch.get_num_threads()}")

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        personas = synthetic_personas(n)
        cached = Path(args.cache) / f"personas-{n}.npy" if args.cache else None
        if cached and cached.exists():
            vectors, embed_s = np.load(cached), float("nan")
        else:
            began = time.perf_counter()
            vectors = embed(personas, model="all-minilm-l6-v2")
            embed_s = time.perf_counter() - began
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.save(cached, vectors)
        ours, ours_s, ours_mb = measured(near_duplicates, vectors, args.threshold)
        kept = int((ours < 0).sum())
        matrix_gb = n * n * 4 / 2**30
        if matrix_gb <= args.naive_max_gb:
            naive, naive_s, naive_mb = measured(naive_near_duplicates, vectors, args.threshold)
            same = "yes" if np.array_equal(naive < 0, ours < 0) else "NO"
            peer = f"{naive_s:.2f} | {naive_mb:,.0f} | {naive_s / ours_s:.2f}x | {naive_mb / ours_mb:.1f}x | {same}"
        else:
            peer = f"not run (needs {matrix_gb:.1f} GB for the matrix) | - | - | - | -"
        rows.append(
            f"| {n:,} | {embed_s:.1f} | {n / embed_s:,.0f} | {ours_s:.2f} | {ours_mb:,.0f} | {kept:,} | {peer} |"
        )
        print(f"{n}: done", flush=True)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(
        "| personas | embed s | embed rows/s | builders dedup s | builders peak MB | kept | naive dedup s | "
        "naive peak MB | time ratio (naive/builders) | memory ratio | same rows kept |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    print(f"\nprocess peak RSS: {rss:,.0f} MB (model, embeddings and both dedups); threshold {args.threshold}")


if __name__ == "__main__":
    main()
