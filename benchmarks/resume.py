"""What a crash costs: a run killed (SIGKILL) about half-way and resumed, against the same run uninterrupted.

Three real processes of the Cosmopedia recipe with the same config: one runs through; one is killed with
SIGKILL once `--kill_at` of its batches are checkpointed; then the same command is run again on the killed
run's folder. Prints wall time and generation time of each, their ratio, how many rows the resumed run
generated and how many of those had already been finished before the kill (should be 0), and checks the
resumed dataset equals the uninterrupted one.

    python benchmarks/resume.py                                  # SmolLM2-135M, 78 texts, batches of 8
    python benchmarks/resume.py --model tiny-random --dtype float32 --max_new_tokens 48
    python benchmarks/resume.py --prompts_per_seed 4 --max_new_tokens 512 --kill_at 0.3

There is no peer to compare with: the peers either redo the whole run (Stanford Alpaca, Cosmopedia's
llm-swarm scripts) or keep their own per-batch cache (distilabel, Curator); the figure that matters is
resumed / uninterrupted, which should be about 1 - kill_at plus the start-up cost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


def recipe_command(args, output_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(REPO / "recipes" / "cosmopedia.py"),
        "--config",
        str(REPO / "configs" / "cosmopedia" / "demo.yaml"),
        "--model",
        args.model,
        "--dtype",
        args.dtype,
        "--prompts_per_seed",
        str(args.prompts_per_seed),
        "--max_new_tokens",
        str(args.max_new_tokens),
        "--batch_size",
        str(args.batch_size),
        "--min_text_tokens",
        "1",
        "--output_dir",
        str(output_dir),
    ]


def timed_run(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def killed_run(command: list[str], output_dir: Path, kill_after: int) -> tuple[float, list[Path]]:
    """Start the run and SIGKILL it once `kill_after` batches are checkpointed; returns (seconds, finished chunks)."""
    began = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = output_dir / ".checkpoints"
    while len(list(chunks.rglob("*.parquet"))) < kill_after:
        if proc.poll() is not None:
            raise SystemExit("the run ended before the kill; use more rows or a smaller --kill_at")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - began, sorted(chunks.rglob("*.parquet"))


def rows(output_dir: Path) -> list[dict]:
    return pq.read_table(sorted((output_dir / "data").glob("*.parquet"))).to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--prompts_per_seed", type=int, default=2, help="39 seeds x this = rows")
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=8, help="also the checkpoint granularity")
    parser.add_argument("--kill_at", type=float, default=0.5, help="share of the batches done when the kill lands")
    parser.add_argument("--workdir", default=None, help="where the three output folders go (default: a temp dir)")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-resume-"))
    full, killed = work / "uninterrupted", work / "killed"
    for folder in (full, killed):
        shutil.rmtree(folder, ignore_errors=True)
    num_rows = 39 * args.prompts_per_seed
    num_batches = -(-num_rows // args.batch_size)
    kill_after = max(1, round(num_batches * args.kill_at))

    full_s = timed_run(recipe_command(args, full))
    kill_s, finished = killed_run(recipe_command(args, killed), killed, kill_after)
    resumed_s = timed_run(recipe_command(args, killed))

    full_stats = json.loads((full / "stats.json").read_text())["generation"]
    resumed_stats = json.loads((killed / "stats.json").read_text())["generation"]
    finished_rows = sum(pq.read_metadata(p).num_rows for p in finished)
    generated_rows = num_rows - finished_rows
    identical = rows(killed) == rows(full)

    print(f"model {args.model}, {num_rows} rows in {num_batches} batches of {args.batch_size}, ")
    print(f"max_new_tokens {args.max_new_tokens}; killed with SIGKILL after {len(finished)} of {num_batches} batches")
    print()
    print("| run | wall s | generation s | batches generated | batches from checkpoints |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| uninterrupted | {full_s:.1f} | {full_stats['engine_seconds']:.1f} | {full_stats['batches_generated']} | 0 |"
    )
    print(f"| killed (until the kill) | {kill_s:.1f} | - | {len(finished)} finished | - |")
    print(
        f"| resumed | {resumed_s:.1f} | {resumed_stats['engine_seconds']:.1f} | "
        f"{resumed_stats['batches_generated']} | {resumed_stats['batches_resumed']} |"
    )
    print()
    wall_ratio = resumed_s / full_s
    generation_ratio = resumed_stats["engine_seconds"] / full_stats["engine_seconds"]
    print(f"resumed / uninterrupted: wall {wall_ratio:.2f}, generation {generation_ratio:.2f}")
    print(f"rows generated by the resumed run: {generated_rows} of {num_rows} (those not checkpointed at the kill)")
    print(
        f"rows regenerated: finished batches generated again {len(finished) - resumed_stats['batches_resumed']}; "
        f"work lost at the kill: the batch in flight ({min(args.batch_size, generated_rows)} rows)"
    )
    print(f"resumed dataset identical to the uninterrupted one: {identical}")


if __name__ == "__main__":
    main()
