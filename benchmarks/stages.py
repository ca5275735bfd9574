"""Every CPU stage's documents/s on one core and on every core, on the same real corpus; the quality stage
against datatrove's Gopher filters on the same documents.

    python benchmarks/stages.py                          # 20k documents, every stage, datatrove on 4k of them
    python benchmarks/stages.py --size 100000 --stages quality --peer_docs 0

The corpus: a quarter answers from data/alpaca_5000.json (at most its 5,000), the rest windows of
data/tinyshakespeare.txt (whole lines from a random line on, 100 to 450 words; about 275 words a window),
shuffled with a fixed seed. Each stage
runs twice on the same input, with `num_proc=1` and with `num_proc` = every core this process may use, and its
output must be the same both times (rows, order, reasons):
- quality: `apply_checks` with the default `quality_*` checks and `quality_language: en`
  (`recipes/dedup.py --quality_filters true --quality_language en`);
- generation checks: `generation_checks` (failed, empty, truncated, too short): a microsecond a row, no pool;
- decontamination: against the 5,000 Alpaca questions (instruction + input), every 50th document a copy;
- dedup: exact, then MinHash (threshold 0.7, 5-grams, 128 permutations), on threads;
- case2code execution: `observe` on functions harvested from the standard library, 10 inputs each;
- embedding: all-MiniLM-L6-v2 (embedded) on the first `--embed_docs` documents, torch's threads;
- diversity: the card's figures (distinct-1/2/3 on 10k texts, pairwise MinHash on 500).

The peer: datatrove's `GopherRepetitionFilter` then `GopherQualityFilter` (a document goes to the second
only when the first keeps it, as in its pipeline), on the first `--peer_docs` documents, on one core and on
every core (a pool of processes over contiguous shards, as its local executor runs tasks). It is for this
benchmark only (the library does not use it); install it with its English word tokenizer, spaCy:

    .venv/bin/python -m pip install datatrove==0.10.1 humanize==4.17.0 spacy==3.8.18
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
STAGES = ("quality", "generation_checks", "decontamination", "dedup", "case2code", "embedding", "diversity")
INSTALL = ".venv/bin/python -m pip install datatrove==0.10.1 humanize==4.17.0 spacy==3.8.18"


def corpus(size: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(documents, Alpaca questions): a quarter Alpaca answers (at most its 5,000), the rest Shakespeare windows,
    shuffled."""
    records = json.loads((DATA / "alpaca_5000.json").read_text())
    lines = (DATA / "tinyshakespeare.txt").read_text().splitlines()
    rng = random.Random(seed)
    docs = [r["output"] for r in records][: size // 4]
    while len(docs) < size:
        start, words, target, window = rng.randrange(len(lines)), 0, rng.randint(100, 450), []
        while words < target and start < len(lines):
            window.append(lines[start])
            words, start = words + len(lines[start].split()), start + 1
        docs.append("\n".join(window))
    rng.shuffle(docs)
    questions = [f"{r['instruction']} {r['input']}".strip() for r in records]
    return docs, questions


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def ceiling(processes: int, n: int = 10_000_000) -> float:
    """How much faster `processes` processes run a pure-Python loop each than one process runs them all, now:
    the most any stage can gain on this machine at this moment (other jobs take cores)."""
    import multiprocess

    began = time.perf_counter()
    for _ in range(processes):
        _spin(n)
    one = time.perf_counter() - began
    began = time.perf_counter()
    with multiprocess.get_context("fork").Pool(processes) as pool:
        pool.map(_spin, [n] * processes)
    return one / (time.perf_counter() - began)


def cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (pool workers, sandbox children)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, *args, **kwargs):
    cpu, began = cpu_seconds(), time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - began, cpu_seconds() - cpu


# ---------------------------------------------------------------------------------------------------------------
# our stages: each takes (docs, questions, num_proc) and returns (documents handled, an output to compare)


def quality_stage(docs, questions, num_proc):
    from datasets import Dataset

    from builders.config import RecipeConfig
    from builders.filters.checks import REASON, apply_checks
    from builders.filters.quality import quality_checks

    checks = quality_checks(RecipeConfig(quality_language="en"), "text")
    kept, rejected, counts = apply_checks(Dataset.from_dict({"text": docs}), checks, "quality", num_proc=num_proc)
    return len(docs), (len(kept), list(rejected[REASON]), dict(counts))


def generation_stage(docs, questions, num_proc):
    from datasets import Dataset

    from builders.filters.checks import REASON, apply_checks, generation_checks

    n = len(docs)
    ds = Dataset.from_dict(
        {
            "text": docs,
            "finish_reason": ["length" if i % 17 == 0 else "stop" for i in range(n)],
            "completion_tokens": [len(d.split()) for d in docs],
        }
    )
    checks = generation_checks("text", min_tokens=60, drop_truncated=True)
    kept, rejected, counts = apply_checks(ds, checks, "generation", num_proc=num_proc)
    return n, (len(kept), list(rejected[REASON]))


def decontamination_stage(docs, questions, num_proc):
    from datasets import Dataset

    from builders.filters.decontaminate import Benchmark, decontaminate

    rows = [f"{d}\n{questions[i % len(questions)]}" if i % 50 == 0 else d for i, d in enumerate(docs)]
    kept, removed, counts = decontaminate(
        Dataset.from_dict({"text": rows}), "text", [Benchmark("alpaca", questions)], num_proc=num_proc
    )
    return len(docs), (len(kept), counts)


def dedup_stage(docs, questions, num_proc):
    from datasets import Dataset

    from builders.dedup.stages import DedupSettings, dedup_rows

    with tempfile.TemporaryDirectory() as scratch:
        result = dedup_rows(Dataset.from_dict({"text": docs}), "text", DedupSettings(num_proc=num_proc), scratch)
    return len(docs), (len(result.kept), result.dropped)


def case2code_stage(docs, questions, num_proc, functions: int = 60, inputs: int = 10):
    from builders.methods.code.case2code import observe
    from builders.methods.code.harvest import harvest_functions
    from builders.methods.code.sources import stdlib_folder

    found = []
    for name in ("operator.py", "colorsys.py", "bisect.py", "string.py", "statistics.py", "fractions.py"):
        found += harvest_functions((stdlib_folder() / name).read_text(), name).functions
    rows = [
        {
            "function": f["code"],
            "name": f["name"],
            "inputs": [repr({p: k + i for i, p in enumerate(f["required"] or f["params"])}) for k in range(inputs)],
        }
        for f in (found * (1 + functions // len(found)))[:functions]
    ]
    kept, report = observe(rows, timeout_s=2.0, max_output_chars=200, min_examples=3, workers=num_proc)
    return len(rows), ([(r["name"], r["examples"]) for r in kept], dict(report.functions_dropped))


def embedding_stage(docs, questions, num_proc, count: int = 1000):
    from builders.dedup.embeddings import embed

    vectors = embed(docs[:count], num_threads=num_proc)
    return min(count, len(docs)), vectors.round(3).tobytes()


def diversity_stage(docs, questions, num_proc):
    from builders.output.diversity import DISTINCT_SAMPLE, diversity_figures

    return min(len(docs), DISTINCT_SAMPLE), diversity_figures(docs, seed=42, num_proc=num_proc)


RUNNERS = {
    "quality": quality_stage,
    "generation_checks": generation_stage,
    "decontamination": decontamination_stage,
    "dedup": dedup_stage,
    "case2code": case2code_stage,
    "embedding": embedding_stage,
    "diversity": diversity_stage,
}


def warm_up(stages: list[str]) -> None:
    """Load what a stage loads once per process (the embedding model, the sandbox's layers) before any timer."""
    if "embedding" in stages:
        from builders.dedup.embeddings import EMBEDDED_MINILM, load_embedder

        load_embedder(EMBEDDED_MINILM)  # the call `embed` makes (a cache keyed by its arguments)
    if "case2code" in stages:
        from builders.methods.code.sandbox import isolation_layers

        isolation_layers()


def best_of(repeat: int, runner, *args, **kwargs):
    """The fastest of `repeat` runs (other work on a shared machine only ever slows a run down)."""
    runs = [timed(runner, *args, **kwargs) for _ in range(repeat)]
    return min(runs, key=lambda run: run[1])


def run_stages(stages: list[str], docs, questions, cores: int, embed_docs: int, repeat: int) -> dict:
    print(
        f"| stage | documents | 1 core s | 1 core docs/s | {cores} cores s | {cores} cores docs/s | speed-up "
        "| CPU s (1 / all) | same output |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    figures = {}
    for stage in stages:
        runner = RUNNERS[stage]
        extra = {"count": embed_docs} if stage == "embedding" else {}
        (n, one), one_s, one_cpu = best_of(repeat, runner, docs, questions, 1, **extra)
        (_, many), many_s, many_cpu = best_of(repeat, runner, docs, questions, cores, **extra)
        figures[stage] = (n / one_s, n / many_s)
        print(
            f"| {stage} | {n:,} | {one_s:.2f} | {n / one_s:,.0f} | {many_s:.2f} | {n / many_s:,.0f} "
            f"| {one_s / many_s:.2f}x | {one_cpu:.1f} / {many_cpu:.1f} | {one == many} |",
            flush=True,
        )
    return figures


# ---------------------------------------------------------------------------------------------------------------
# the peer: datatrove's Gopher filters


def datatrove_verdicts(texts: list[str]) -> list[str | None]:
    """None for a kept document, else the first failing filter's reason (repetition first, as in a pipeline)."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter

    filters = (GopherRepetitionFilter(), GopherQualityFilter())
    out = []
    for i, text in enumerate(texts):
        doc, reason = Document(text=text, id=str(i)), None
        for f in filters:
            verdict = f.filter(doc)
            if verdict is not True:
                reason = verdict[1] if isinstance(verdict, tuple) else type(f).__name__
                break
        out.append(reason)
    return out


def datatrove_on(texts: list[str], processes: int) -> list[str | None]:
    if processes == 1:
        return datatrove_verdicts(texts)
    import multiprocess

    bounds = [len(texts) * k // processes for k in range(processes + 1)]
    with multiprocess.get_context("fork").Pool(processes) as pool:
        parts = pool.map(datatrove_verdicts, [texts[a:b] for a, b in zip(bounds, bounds[1:])])
    return [v for part in parts for v in part]


def against_datatrove(docs: list[str], questions: list[str], cores: int) -> None:
    datatrove_verdicts(docs[:2])  # loads spaCy's English tokenizer before the timer (forked workers inherit it)
    print("| tool | processes | seconds | docs/s | dropped | CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    speeds = {}
    for processes in sorted({1, cores}):
        (_, ours), ours_s, ours_cpu = timed(quality_stage, docs, questions, processes)
        peer, peer_s, peer_cpu = timed(datatrove_on, docs, processes)
        speeds[processes] = (len(docs) / ours_s, len(docs) / peer_s)
        print(
            f"| builders quality | {processes} | {ours_s:.2f} | {len(docs) / ours_s:,.0f} | "
            f"{len(ours[1])} | {ours_cpu:.1f} |"
        )
        print(
            f"| datatrove Gopher repetition + quality | {processes} | {peer_s:.2f} | {len(docs) / peer_s:,.0f} | "
            f"{sum(v is not None for v in peer)} | {peer_cpu:.1f} |",
            flush=True,
        )
    print()
    for processes, (ours, peer) in speeds.items():
        print(f"builders / datatrove, {processes} process{'es' if processes > 1 else ''}: {ours / peer:.2f}x docs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="documents in the corpus")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, of: " + ", ".join(STAGES))
    parser.add_argument("--embed_docs", type=int, default=1000, help="documents the embedding stage embeds")
    parser.add_argument("--peer_docs", type=int, default=4000, help="documents for datatrove (0: no peer)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each stage and core count; the fastest counts")
    args = parser.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    if unknown := set(stages) - set(STAGES):
        sys.exit(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    if args.peer_docs:
        try:
            import datatrove.pipeline.filters  # noqa: F401
        except ImportError as err:
            # `make bench` on a fresh clone has no datatrove (installed for this comparison only): say so, go on
            print(f"datatrove is not usable ({err}): the peer comparison is skipped; install it with `{INSTALL}`")
            args.peer_docs = 0

    import datasets

    from builders.parallel import available_cores

    datasets.disable_caching()  # as in a run
    datasets.disable_progress_bars()
    cores = available_cores()
    docs, questions = corpus(args.size)
    words = sum(len(d.split()) for d in docs) / len(docs)
    print(f"corpus: {len(docs):,} documents, {words:.0f} words on average (Alpaca answers, Shakespeare windows)")
    print(f"cores this process may use: {cores}; load average at start: {os.getloadavg()[0]:.1f}")
    print(f"ceiling now: {cores} processes of a pure-Python loop run {ceiling(cores):.2f}x one process")
    print()
    warm_up(stages)
    run_stages(stages, docs, questions, cores, args.embed_docs, args.repeat)
    if args.peer_docs:
        print()
        print(f"quality stage against datatrove on the first {min(args.peer_docs, len(docs)):,} documents:")
        print()
        against_datatrove(docs[: args.peer_docs], questions, cores)
    print(f"ceiling at the end: {cores} processes of a pure-Python loop run {ceiling(cores):.2f}x one process")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine slows every figure)")


if __name__ == "__main__":
    main()
