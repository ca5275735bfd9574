"""MinHash near-dedup: builders vs the text-dedup CLI vs datasketch, on one corpus with known ground truth.

    python benchmarks/dedup.py                                   # 20k documents of ~200 words, every tool
    python benchmarks/dedup.py --size 100000 --words 100         # scaling runs
    python benchmarks/dedup.py --size 1000000 --words 100 --tools builders
    python benchmarks/dedup.py --size 100000 --words 100 --tools builders,spark   # Spark (local[*]) vs in memory
    python benchmarks/dedup.py --tools builders,text-dedup,text-dedup-engine      # ours, its CLI, its engine here

The corpus (`benchmarks/dedup_corpus.py`): base documents made of random lines of real text (Shakespeare,
Alpaca instructions and answers, cut to at most 15 words), then, for a quarter of them, one to three copies:
exact, re-cased/re-punctuated, or near copies with a controlled share of word edits (substitutions, deletions,
insertions, swaps). The true Jaccard similarity of every pair in a group (word 5-grams of the NFKC, lower-cased text split on non-word characters) is computed
exactly; documents of different groups share no lines by construction (up to chance).

Every tool runs in its own subprocess on the same corpus and parameters (threshold 0.7, 5-grams, 128
permutations, seed 42), and reports wall time, CPU time (all its threads and processes) and peak memory: the
peak RSS of the process during the timed call, with the corpus already in memory (Linux's VmHWM, reset just
before), or, for the text-dedup CLI, the largest RSS of its processes over their whole life:
- builders: `builders.dedup.minhash.minhash_dedup` on an in-memory Dataset, threads on `--cores` cores;
- text-dedup: `python -m text_dedup.minhash` (its CLI) on a saved copy of the corpus, `--num_proc --cores`,
  `--hash_func xxh3` (its faster hash); time is the CLI's own "Total" timer (interpreter start-up excluded);
- datasketch: `MinHash.bulk` + `MinHashLSH` (one process: it has no parallel mode), keeping the first of
  each duplicate group as it streams.
- spark: `builders.dedup.spark.spark_dedup` (exact pass off, as for builders) in a `local[*]` session with
  `--cores` cores, started before the timer (its start-up is printed apart); the time includes writing the
  column to Parquet for Spark. CPU time and peak RSS cover the whole process tree (the JVM and the Python
  workers), sampled every 0.2 s. Its kept rows must equal builders' exactly.
- text-dedup-engine: `builders.dedup.textdedup.text_dedup` (`dedup_engine: text-dedup`: text-dedup's own
  commands in a child process; exact pass off, `hash_func="xxh3"` as for the CLI run); the time includes
  saving the column for the child and the child's start-up. Its kept rows must equal the CLI's exactly.

Metrics: precision = share of removed documents that have a true duplicate (Jaccard >= threshold) in the
corpus; recall = share of planted pairs with Jaccard >= threshold + 0.1 of which at most one document survives.
Agreement, for every two tools: documents removed by both, by the first only, by the second only; and, since
text-dedup keeps an arbitrary member of a cluster (so "which row" differs where "how many" agrees), the planted
groups from which both removed the same number of documents, or the first or the second more.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from dedup_corpus import NON_ALPHA, build_corpus, evaluate, ideal_removals

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("builders", "text-dedup", "datasketch", "spark", "text-dedup-engine")


# ---------------------------------------------------------------------------------------------------------------
# the tools, each in its own process (peak memory per tool)


def run_builders(corpus: Path, args) -> dict:
    from datasets import Dataset

    from builders.dedup.minhash import minhash_dedup

    ds = Dataset.from_file(str(corpus))  # memory-mapped, as `load_dataset` gives it
    before, cpu = _rss_mb(), _cpu_seconds()
    _reset_peak_rss()
    start = time.perf_counter()
    kept, stats = minhash_dedup(
        ds, "text", args.threshold, args.ngram, args.num_perm, seed=42, num_proc=args.cores, tokenizer="word"
    )
    seconds = time.perf_counter() - start
    cpu, peak = _cpu_seconds() - cpu, _peak_rss_mb()
    kept = kept["id"][:]
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "kept": kept,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "stats": stats,
    }


def run_text_dedup(corpus: Path, args) -> dict:
    from datasets import Dataset

    work = Path(tempfile.mkdtemp(prefix="text-dedup-", dir=args.tmp))
    Dataset.from_file(str(corpus)).save_to_disk(str(work / "input"))
    cmd = [
        sys.executable,
        "-m",
        "text_dedup.minhash",
        "--path",
        str(work / "input"),
        "--local",
        "--output",
        str(work / "output"),
        "--cache_dir",
        str(work / "cache"),
        "--column",
        "text",
        "--threshold",
        str(args.threshold),
        "--ngram",
        str(args.ngram),
        "--num_perm",
        str(args.num_perm),
        "--seed",
        "42",
        "--hash_func",
        "xxh3",
        "--num_proc",
        str(args.cores),
    ]
    start, cpu = time.perf_counter(), _cpu_seconds()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    if proc.returncode:
        raise SystemExit(f"text-dedup failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    log = proc.stdout + proc.stderr
    total = re.search(r"Total\s*:\s*([\d.]+)", log)
    from datasets import load_from_disk

    kept = load_from_disk(str(work / "output"))["id"][:]
    seconds = float(total.group(1)) if total else wall
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the CLI's largest process, all its life
    return {"seconds": seconds, "wall_seconds": wall, "cpu_s": cpu, "kept": kept, "peak_rss_mb": peak}


def run_datasketch(corpus: Path, args) -> dict:
    from datasets import Dataset
    from datasketch import MinHash, MinHashLSH

    table = Dataset.from_file(str(corpus)).data
    texts, ids = table.column("text").to_pylist(), table.column("id").to_pylist()
    before, cpu = _rss_mb(), _cpu_seconds()
    _reset_peak_rss()
    start = time.perf_counter()
    n = args.ngram

    def shingles(text):
        w = [t for t in NON_ALPHA.split(text.lower()) if t]
        return {" ".join(w[i : i + n]).encode() for i in range(len(w) - n + 1)}

    lsh = MinHashLSH(threshold=args.threshold, num_perm=args.num_perm)
    kept = []
    signatures = MinHash.generator((shingles(t) for t in texts), num_perm=args.num_perm, seed=42)
    for doc_id, m in zip(ids, signatures):
        if lsh.query(m):
            continue
        lsh.insert(doc_id, m)
        kept.append(doc_id)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()
    return {
        "seconds": seconds,
        "cpu_s": _cpu_seconds() - cpu,
        "kept": kept,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
    }


def run_spark(corpus: Path, args) -> dict:
    import threading

    import psutil
    from datasets import Dataset

    from builders.dedup.spark import spark_dedup, spark_session

    ds = Dataset.from_file(str(corpus))
    start = time.perf_counter()
    spark_session(f"local[{args.cores}]").range(1).count()
    started = time.perf_counter() - start
    me = psutil.Process()

    def tree():
        procs = [me] + me.children(recursive=True)
        rss = cpu = 0.0
        for p in procs:
            try:
                rss += p.memory_info().rss
                t = p.cpu_times()
                cpu += t.user + t.system
            except psutil.Error:
                pass
        return rss / 2**20, cpu

    peak, done = [tree()[0]], threading.Event()

    def sample():
        while not done.wait(0.2):
            peak.append(tree()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    before, cpu = tree()
    sampler.start()
    start = time.perf_counter()
    result = spark_dedup(
        ds,
        "text",
        args.threshold,
        args.ngram,
        args.num_perm,
        seed=42,
        tokenizer="word",
        exact=False,
        master=f"local[{args.cores}]",
        work_dir=args.tmp,
    )
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    after, cpu_after = tree()
    kept = np.flatnonzero(result.near_first == np.arange(len(ds))).tolist()  # ids are row numbers
    return {
        "seconds": seconds,
        "cpu_s": cpu_after - cpu,
        "kept": kept,
        "rss_before_mb": before,
        "peak_rss_mb": max(peak + [after]),
        "stats": result.near_stats,
        "start_s": started,
    }


def run_text_dedup_engine(corpus: Path, args) -> dict:
    from datasets import Dataset

    from builders.dedup.textdedup import KEPT, text_dedup

    ds = Dataset.from_file(str(corpus))
    start, cpu = time.perf_counter(), _cpu_seconds()
    decisions = text_dedup(
        ds, "text", args.threshold, args.ngram, args.num_perm, 42, exact=False, hash_func="xxh3", num_proc=args.cores
    )
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    kept = np.asarray(ds["id"])[decisions.fate == KEPT].tolist()
    peak = max(_peak_rss_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return {"seconds": seconds, "cpu_s": cpu, "kept": kept, "peak_rss_mb": peak, "stats": decisions.stats}


RUNNERS = {
    "builders": run_builders,
    "text-dedup": run_text_dedup,
    "datasketch": run_datasketch,
    "spark": run_spark,
    "text-dedup-engine": run_text_dedup_engine,
}


def print_agreement(kept: dict[str, list], groups: np.ndarray) -> None:
    """For every two tools: the documents both removed and those only one removed; and, as text-dedup keeps an
    arbitrary member of a cluster, the planted groups from which both removed as many documents."""
    removed, per_group = {}, {}
    for tool, ids in kept.items():
        removed[tool] = np.ones(len(groups), dtype=bool)
        removed[tool][np.asarray(ids, dtype=np.int64)] = False
        per_group[tool] = np.bincount(groups[removed[tool]], minlength=groups.max() + 1)
    tools = list(removed)
    print()
    print("| tools A / B | removed by both | by A only | by B only | groups: same count removed | A more | B more |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for i, a in enumerate(tools):
        for b in tools[i + 1 :]:
            both = int((removed[a] & removed[b]).sum())
            only_a, only_b = int((removed[a] & ~removed[b]).sum()), int((removed[b] & ~removed[a]).sum())
            ga, gb = per_group[a], per_group[b]
            touched = (ga > 0) | (gb > 0)
            same, more_a, more_b = ((ga == gb) & touched).sum(), (ga > gb).sum(), (gb > ga).sum()
            print(f"| {a} / {b} | {both} | {only_a} | {only_b} | {same} | {more_a} | {more_b} |")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> None:
    """Start the kernel's peak-RSS counter (VmHWM) afresh: the peak then covers the timed call only."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def worker(args) -> None:
    result = RUNNERS[args.worker](Path(args.corpus), args)
    Path(args.result).write_text(json.dumps(result))


def run_tool(tool: str, corpus: Path, args, tmp: str) -> dict:
    result = Path(tmp) / f"{tool}.json"
    cmd = [sys.executable, __file__, "--worker", tool, "--corpus", str(corpus), "--result", str(result), "--tmp", tmp]
    for key in ("threshold", "ngram", "num_perm", "cores"):
        cmd += [f"--{key}", str(getattr(args, key))]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run(cmd, check=True, env=env)
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20_000, help="documents in the corpus")
    parser.add_argument("--words", type=int, default=200, help="words per base document")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated: " + ", ".join(TOOLS))
    parser.add_argument("--cores", type=int, default=2, help="processes (text-dedup) or threads (builders)")
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--num_perm", type=int, default=128)
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if unknown := set(tools) - set(TOOLS):
        parser.error(f"unknown tools {sorted(unknown)}; choose from {', '.join(TOOLS)}")

    import pyarrow as pa

    start = time.perf_counter()
    corpus = build_corpus(args.size, args.words)
    j, thr = corpus.jaccard, args.threshold
    mean_words = sum(len(t.split()) for t in corpus.texts) / len(corpus.texts)
    print(
        f"corpus: {len(corpus.texts)} documents, {mean_words:.0f} words on average, built in "
        f"{time.perf_counter() - start:.0f}s; planted pairs: {(j >= thr + 0.1).sum()} with Jaccard >= {thr + 0.1:.1f}, "
        f"{((j >= thr) & (j < thr + 0.1)).sum()} in [{thr}, {thr + 0.1:.1f}), {(j < thr).sum()} below {thr}"
    )
    print(
        f"parameters: threshold {thr}, {args.ngram}-grams, {args.num_perm} permutations, "
        f"{args.cores} cores; load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as tmp:
        path = Path(tmp) / "corpus.arrow"
        table = pa.table({"id": np.arange(len(corpus.texts)), "kind": corpus.kinds, "text": corpus.texts})
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=10_000)  # an Arrow stream, like datasets' cache files
        del table
        corpus.texts = [None] * len(corpus.texts)  # the tools read the file; free the memory they need
        results = {}
        kept = {}
        for tool in tools:
            results[tool] = run_tool(tool, path, args, tmp)
            kept[tool] = results[tool].pop("kept")
            results[tool].update(evaluate(kept[tool], corpus, thr))
        n_docs = len(corpus.texts)

    print()
    print("| tool | seconds | docs/s | CPU seconds | removed | precision | recall (J >= thr + 0.1) | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for tool, r in results.items():
        r["docs_per_s"] = n_docs / r["seconds"]
        print(
            f"| {tool} | {r['seconds']:.1f} | {r['docs_per_s']:,.0f} | {r['cpu_s']:.1f} | {r['removed']} "
            f"| {r['precision']:.4f} | {r['recall']:.4f} | {r['peak_rss_mb']:,.0f} |"
        )
    if "builders" in results:
        ours = results["builders"]
        print()
        for tool, r in results.items():
            if tool != "builders":
                print(f"builders / {tool}: {ours['docs_per_s'] / r['docs_per_s']:.2f}x docs/s")
        print(f"builders stats: {ours['stats']}; RSS before the call: {ours['rss_before_mb']:,.0f} MB")
    if "spark" in results:
        r = results["spark"]
        print(f"spark stats: {r['stats']}; session start-up (not timed): {r['start_s']:.1f}s")
        if "builders" in results:
            same = sorted(kept["spark"]) == sorted(kept["builders"])
            print(f"spark kept exactly the rows builders kept: {same}")
    if "text-dedup-engine" in results:
        print(f"text-dedup-engine stats: {results['text-dedup-engine']['stats']}")
        if "text-dedup" in results:
            same = sorted(kept["text-dedup-engine"]) == sorted(kept["text-dedup"])
            print(f"text-dedup-engine kept exactly the rows the text-dedup CLI kept: {same}")
    if len(kept) > 1:
        print_agreement(kept, corpus.groups)
    expected = ideal_removals(corpus, thr)
    print(f"a perfect dedup removes {expected} documents (all but one of each group joined by Jaccard >= threshold)")
    if "text-dedup" in results:
        wall = results["text-dedup"]["wall_seconds"]
        print(f"text-dedup CLI wall time including interpreter start-up and imports: {wall:.1f}s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine slows every tool)")


if __name__ == "__main__":
    main()
