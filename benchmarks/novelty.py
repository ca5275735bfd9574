"""Benchmark: the ROUGE-L novelty filter, `builders.methods.self_instruct.novelty.RougeLNovelty` against Stanford Alpaca's way.

Alpaca (`generate_instruction.py`) scores each new instruction against the whole task pool with
`rouge_score.rouge_scorer._score_lcs` in a new `multiprocessing.Pool` per candidate, records the 10 most
similar pool instructions (`np.argsort`) and the mean score (`np.mean`), and rejects the candidate when any
score is above 0.7. The reference below does exactly that (our code, Alpaca's procedure).

Two parts, both on the real data in data/ (175 Self-Instruct seed tasks, 5,000 Alpaca records):

1. Exactness replay: the Alpaca instructions, in order, offered one by one to a pool that starts with the
   175 seeds and grows with every accepted one, through our filter and through rouge_score. Decisions,
   every score, `most_similar_instructions` and `avg_similarity_score` are compared. The reference scores
   come from rouge_score for every (candidate, earlier text) pair, computed in parallel up front; the
   sequential accept pass over them is Alpaca's.
2. Speed at pool sizes 1k, 5k and 10k: the last 500 Alpaca instructions are candidates; the pool is the
   first N texts of: the 175 seeds, then Alpaca instructions 1-4,500, then (to reach 10k, since only 5,000
   real Alpaca instructions are at hand) the first sentence of each Alpaca output (at most 40 words) --
   real model-written text, but not instructions. Ours runs all candidates; the reference, Alpaca's way,
   the first `--reference-samples` of them; their decisions and scores on that prefix are compared too.

    python benchmarks/novelty.py                  # replay of 1,500 instructions + speed table, a few minutes
    python benchmarks/novelty.py --replay 5000    # all 5,000 (the reference took 19 min on 2 busy cores)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from rouge_score import rouge_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from builders.methods.self_instruct.novelty import RougeLNovelty, rouge_tokens  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
THRESHOLD, TOP_K = 0.7, 10


# -- the reference: Alpaca's procedure ----------------------------------------------------------------------


def alpaca_select(pool_texts: list[str], scores, threshold: float = THRESHOLD) -> tuple[bool, dict[str, float], float]:
    """What Alpaca does with a candidate's list of scores (decision, most similar, average)."""
    most_similar = {pool_texts[i]: scores[i] for i in np.argsort(scores)[-TOP_K:][::-1]}
    return not max(scores) > threshold, most_similar, float(np.mean(scores))


def alpaca_add(instruction: str, pool_texts: list[str], pool_tokens: list[list[str]], processes: int):
    """One candidate, scored as Alpaca does: a new process pool, rouge_score's LCS against every pool entry."""
    tokens = rouge_tokens(instruction)
    with Pool(processes) as p:
        results = p.map(partial(rouge_scorer._score_lcs, tokens), pool_tokens)
    scores = [r.fmeasure for r in results]
    accepted, most_similar, avg = alpaca_select(pool_texts, scores)
    if accepted:
        pool_texts.append(instruction)
        pool_tokens.append(tokens)
    return accepted, most_similar, avg, scores


_TOKENS: list[list[str]] = []  # seeds then candidates; set before the worker pool forks


def _reference_row(i: int) -> np.ndarray:
    """rouge_score F of text i against every earlier text (np.asarray keeps int zeros as Alpaca's list has)."""
    target = _TOKENS[i]
    return np.asarray([rouge_scorer._score_lcs(target, _TOKENS[j]).fmeasure for j in range(i)])


# -- the two parts ------------------------------------------------------------------------------------------


def reference_rows(texts: list[str], first: int, processes: int) -> list[np.ndarray]:
    """For each text from index `first` on: rouge_score F against every earlier text (in parallel)."""
    global _TOKENS
    _TOKENS = [rouge_tokens(t) for t in texts]
    with Pool(processes) as p:
        return p.map(_reference_row, range(first, len(texts)), chunksize=8)


def replay(seeds: list[str], candidates: list[str], rows: list[np.ndarray], threshold: float) -> dict:
    """Offer the candidates in order to ours and to Alpaca's accept loop (over the reference rows)."""
    texts = seeds + candidates
    ours = RougeLNovelty(threshold, TOP_K)
    ours.extend(seeds)
    pool = list(range(len(seeds)))  # indices into texts, in pool order
    differ = {"decisions": 0, "score vectors": 0, "most_similar": 0, "avg_similarity": 0}
    max_diff, accepted = 0.0, 0
    for k, (candidate, row) in enumerate(zip(candidates, rows)):
        ref_scores = row[pool]
        ref_accepted, ref_similar, ref_avg = alpaca_select([texts[i] for i in pool], ref_scores, threshold)
        our_scores = ours.scores(candidate)
        our_accepted, our_similar, our_avg = ours.add(candidate)
        differ["decisions"] += our_accepted != ref_accepted
        differ["score vectors"] += not np.array_equal(our_scores, ref_scores)
        differ["most_similar"] += our_similar != list(ref_similar.items())
        differ["avg_similarity"] += our_avg != ref_avg
        max_diff = max(max_diff, float(np.abs(our_scores - ref_scores).max()))
        if ref_accepted:
            accepted += 1
            pool.append(len(seeds) + k)
    return {"accepted": accepted, "differ": differ, "max_diff": max_diff}


def speed(stream: list[str], candidates: list[str], size: int, reference_samples: int, processes: int) -> dict:
    """Candidates/s of ours (all candidates) and of the reference (a prefix), from the same pool of `size`."""
    ours = RougeLNovelty(THRESHOLD, TOP_K)
    began = time.perf_counter()
    ours.extend(stream[:size])
    extend_seconds = time.perf_counter() - began
    mirror = RougeLNovelty(THRESHOLD, TOP_K)  # ours again, untimed, for the full score vectors of the prefix
    mirror.extend(stream[:size])
    began = time.perf_counter()
    our_results = [ours.add(c) for c in candidates]
    ours_rate = len(candidates) / (time.perf_counter() - began)

    pool_texts = list(stream[:size])
    pool_tokens = [rouge_tokens(t) for t in pool_texts]
    reference_seconds, differ, max_diff = 0.0, 0, 0.0
    for c, mine in zip(candidates[:reference_samples], our_results):
        our_scores = mirror.scores(c)
        mirror.add(c)
        began = time.perf_counter()
        accepted, most_similar, avg, scores = alpaca_add(c, pool_texts, pool_tokens, processes)
        reference_seconds += time.perf_counter() - began
        differ += (accepted, list(most_similar.items()), avg) != mine
        max_diff = max(max_diff, float(np.abs(our_scores - np.asarray(scores)).max()))
    return {
        "size": size,
        "mean_tokens": float(np.mean([len(rouge_tokens(t)) for t in stream[:size]])),
        "extend_s": extend_seconds,
        "ours": ours_rate,
        "reference": reference_samples / reference_seconds,
        "differ": differ,
        "max_diff": max_diff,
        "accepted": sum(r[0] for r in our_results),
    }


def first_sentence(text: str, max_words: int = 40) -> str:
    return " ".join(re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].split()[:max_words])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replay", type=int, default=1500, help="Alpaca instructions replayed for exactness")
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1000, 5000, 10000], help="pool sizes timed (none: skip)"
    )
    parser.add_argument("--candidates", type=int, default=500, help="candidates our filter scores per size")
    parser.add_argument("--reference-samples", type=int, default=30, help="candidates the reference scores")
    parser.add_argument("--processes", type=int, default=os.cpu_count(), help="Alpaca's num_cpus")
    args = parser.parse_args(argv)

    seeds = [json.loads(line)["instruction"] for line in (DATA / "seed_tasks.jsonl").read_text().splitlines()]
    records = json.loads((DATA / "alpaca_5000.json").read_text())
    instructions = [r["instruction"] for r in records]
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print(
        f"data: {len(seeds)} seed instructions, {len(instructions)} Alpaca instructions (data/); "
        f"reference: rouge_score {args.processes} processes; threshold {THRESHOLD}, top {TOP_K}"
    )

    print(f"\n1. exactness: the first {args.replay} Alpaca instructions, in order, offered to a pool of the seeds")
    began = time.perf_counter()
    rows = reference_rows(seeds + instructions[: args.replay], len(seeds), args.processes)
    print(f"   rouge_score scored every (candidate, earlier text) pair in {time.perf_counter() - began:.0f}s")
    for threshold in (THRESHOLD, 0.5):  # 0.5 as well: at 0.7 nearly every real Alpaca instruction is novel
        r = replay(seeds, instructions[: args.replay], rows, threshold)
        differing = ", ".join(f"{k} {v}" for k, v in r["differ"].items())
        print(
            f"   threshold {threshold}: accepted {r['accepted']}, rejected {args.replay - r['accepted']}; "
            f"differing: {differing}; max |score difference| {r['max_diff']:.1e}"
        )

    if not args.sizes:
        return
    held_out = len(instructions) - args.candidates
    stream = seeds + instructions[:held_out] + [first_sentence(r["output"]) for r in records]
    candidates = instructions[held_out:]
    print(
        f"\n2. speed: candidates = Alpaca instructions {held_out + 1}-{len(instructions)}; pool = the first N of "
        f"{len(seeds)} seeds + Alpaca instructions 1-{held_out} + first sentences of Alpaca outputs (<= 40 words; "
        "real text, not instructions, to reach 10k)"
    )
    print(
        "\n| pool | mean tokens | ours cand/s | reference cand/s | ratio | decisions+records differ | "
        "max score diff | timed (ours / reference) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for size in args.sizes:
        s = speed(stream, candidates, size, args.reference_samples, args.processes)
        print(
            f"| {size:,} | {s['mean_tokens']:.1f} | {s['ours']:,.0f} | {s['reference']:.2f} | "
            f"{s['ours'] / s['reference']:,.0f}x | {s['differ']} | {s['max_diff']:.1e} | "
            f"{len(candidates)} / {args.reference_samples} |",
            flush=True,
        )
    print(f"\nload average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
