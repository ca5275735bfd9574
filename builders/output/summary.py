"""What a finished run tells its user: the engines' throughput (for stats.json and the card) and the console
summary (the funnel, rows kept, tokens/s, where the output is, a sample)."""

from __future__ import annotations

import time
from pathlib import Path

from datasets import Dataset

from builders.output.funnel import Funnel


def throughput(reports: list[dict], requests_retried: int) -> dict:
    """What the engines did, summed over the processes; tokens/s adds up the processes' own rates.

    `requests_retried` is the main process's engine's count (an OpenAI-compatible server retries per request).
    """
    total = {name: sum(r[name] for r in reports) for name in reports[0]}
    rates = [r["completion_tokens"] / r["engine_seconds"] for r in reports if r["engine_seconds"]]
    out = {
        "batches_generated": total["chunks_generated"],
        "batches_resumed": total["chunks_resumed"],
        "batches_retried": total["chunks_retried"],
        "requests_retried": requests_retried,
        "completion_tokens_generated": total["completion_tokens"],
        "engine_seconds": round(total["engine_seconds"], 2),
        "tokens_per_s": round(sum(rates), 1) if rates else None,
    }
    if len(reports) > 1:
        out["processes"] = len(reports)
        out["batches_generated_per_process"] = [r["chunks_generated"] for r in reports]
    return out


def print_summary(funnel: Funnel, ds: Dataset, output_dir: Path, text_column: str) -> None:
    t = funnel.extra["generation"]
    print()
    print(funnel.table())
    print()
    line = f"rows kept: {len(ds)}   elapsed: {time.time() - funnel.started:.0f}s"
    if t["tokens_per_s"] is not None or t["batches_resumed"]:  # a recipe that generates nothing shows none
        speed = f"{t['tokens_per_s']} tokens/s" if t["tokens_per_s"] is not None else "- tokens/s"
        line += (
            f"   generation: {t['completion_tokens_generated']} tokens at {speed} "
            f"({t['batches_resumed']} batches resumed from checkpoints)"
        )
    print(line)
    print(f"output: {output_dir.resolve()}")
    if len(ds):
        sample = str(ds[0].get(text_column, ds[0]))
        print(f"sample {text_column}: {sample[:400]}{' ...' if len(sample) > 400 else ''}")
