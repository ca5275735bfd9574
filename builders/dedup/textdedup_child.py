"""text-dedup's own commands on a saved dataset, in a process of their own (`builders.dedup.textdedup` starts it).

    python -m builders.dedup.textdedup_child WORK_DIR

Reads `WORK_DIR/spec.json` and the saved dataset `WORK_DIR/input` (the column to deduplicate and `__row__`, the
row numbers), runs `text_dedup.exact_hash` (when `exact`) and then `text_dedup.minhash` through their click
commands with their own defaults for whatever the spec does not set, and writes `WORK_DIR/result.npz`: the row
numbers of MinHash's input, each one's union-find root there, and the row numbers MinHash kept.

A process of its own because importing either module calls `multiprocessing.set_start_method("fork",
force=True)`, which must never happen in a process that runs vLLM. Exit status 3: a module is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROW = "__row__"


def run(work: Path) -> None:
    spec = json.loads((work / "spec.json").read_text())
    try:
        from datasets import load_from_disk
        from text_dedup import exact_hash, minhash
    except ImportError as error:
        print(f"missing module: {error.name}", file=sys.stderr)
        raise SystemExit(3) from error

    common = ["--local", "--column", spec["column"], "--num_proc", str(spec["num_proc"])]
    source = work / "input"
    if spec["exact"]:
        exact_hash.main.main([*common, "--path", str(source), "--output", str(work / "exact")], standalone_mode=False)
        source = work / "exact"
    # text-dedup 0.4.0 declares --seed but draws its permutations from this module-level generator (seeded 42)
    minhash.RNG = np.random.RandomState(spec["seed"])
    options = {k: spec[k] for k in ("threshold", "ngram", "num_perm", "min_length", "seed", "hash_func")}
    flags = [item for key, value in options.items() for item in (f"--{key}", str(value))]
    minhash.main.main([*common, *flags, "--path", str(source), "--output", str(work / "near")], standalone_mode=False)

    rows = np.asarray(load_from_disk(str(source))[ROW], dtype=np.int64)
    roots = np.array([minhash.uf.find(i) for i in range(len(rows))], dtype=np.int64)  # its __index__: positions
    kept = np.asarray(load_from_disk(str(work / "near"))[ROW], dtype=np.int64)
    np.savez(work / "result.npz", rows=rows, roots=roots, kept=kept)


if __name__ == "__main__":
    run(Path(sys.argv[1]))
