"""One process vs a data-parallel launch of several: the same recipe job, wall time and output.

    python benchmarks/scale_out.py                                        # tiny-random, 1 vs 2 processes, CPU
    python benchmarks/scale_out.py --config configs/cosmopedia/demo.yaml  # SmolLM2-135M (slow on a busy machine)
    python benchmarks/scale_out.py --processes 8 --accelerate_config configs/accelerate/multi_gpu.yaml \
        --config configs/cosmopedia/default.yaml --num_samples 20000       # a GPU node

Runs the Cosmopedia recipe as a user does, in fresh processes: `python recipes/cosmopedia.py ...` (one engine;
on the CPU it takes every core), then `accelerate launch --num_processes N recipes/cosmopedia.py ...` (one engine
per process; on the CPU each takes its share of the cores, on GPUs its own GPUs). Both write to new output
folders; the wall time covers everything a user waits for (interpreter and engine start-up, generation,
filters, dedup, writing). The merged rows of the launch must equal the one-process rows.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], output_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    stats = json.loads((output_dir / "stats.json").read_text())
    import pyarrow.parquet as pq

    rows = [row for f in sorted((output_dir / "data").glob("*.parquet")) for row in pq.read_table(f).to_pylist()]
    return {"seconds": seconds, "stats": stats, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs/cosmopedia/smoke.yaml"))
    parser.add_argument("--num_samples", type=int, default=40)
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=4, help="rows per chunk: the unit processes share")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--accelerate_config", default=str(REPO / "configs/accelerate/cpu_two_processes.yaml"))
    args = parser.parse_args()

    recipe = str(REPO / "recipes" / "cosmopedia.py")
    job = ["--config", args.config, "--num_samples", str(args.num_samples)]
    job += ["--max_new_tokens", str(args.max_new_tokens), "--batch_size", str(args.batch_size)]
    print(f"job: {' '.join(job)}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        one = run([sys.executable, recipe, *job, "--output_dir", f"{tmp}/one"], Path(tmp, "one"))
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", args.accelerate_config]
        launch += ["--num_processes", str(args.processes), "--main_process_port", str(free_port())]
        many = run([*launch, recipe, *job, "--output_dir", f"{tmp}/many"], Path(tmp, "many"))

    print()
    print("| processes | wall seconds | rows out | completion tokens | engine tokens/s (summed over processes) |")
    print("|---:|---:|---:|---:|---:|")
    for count, r in ((1, one), (args.processes, many)):
        g = r["stats"]["generation"]
        print(
            f"| {count} | {r['seconds']:.1f} | {len(r['rows'])} | {g['completion_tokens_generated']} "
            f"| {g['tokens_per_s']} |"
        )
    print()
    print(f"{args.processes} processes / 1 process: {one['seconds'] / many['seconds']:.2f}x wall-time speed-up")
    print(f"merged rows equal the one-process rows: {many['rows'] == one['rows']}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine slows both runs)")


if __name__ == "__main__":
    main()
