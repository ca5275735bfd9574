"""The output folder: guard it against mixing runs, and publish the final files atomically.

Layout of `output_dir/`:

    data/train-00000-of-0000N.parquet   the dataset (what `load_dataset(output_dir)` reads)
    rejected/*.parquet                  dropped rows with their stage and reason (keep_rejected: true)
    README.md                           the dataset card
    config.yaml                         the resolved config: rerun with `--config config.yaml`
    stats.json                          the funnel and token totals
    images/                             figures the card shows
    run.json                            which run this folder belongs to (never uploaded)
    .checkpoints/<fingerprint>/         finished generation chunks, for resume (never uploaded)

The final files are written to `.staging/` and then moved into place: a crash leaves either the old
files or the new ones, never a half-written dataset.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from datasets import Dataset

from builders.errors import UserError

RUN_FILE = "run.json"
FINAL_NAMES = ("data", "rejected", "images", "README.md", "config.yaml", "stats.json")
SHARD_BYTES = 500 * 1024**2  # parquet shards of ~500 MB, as the Hub's own conversion does


def guard_output_dir(output_dir: Path, recipe: str, fingerprint: dict, fingerprint_hash: str, overwrite: bool) -> bool:
    """Check that `output_dir` is free, or holds this same run (returns True: resume), or may be replaced.

    Raises a UserError when it holds another run or foreign files and `overwrite` is false. Nothing is
    written or deleted here: an error leaves the folder as it was.
    """
    if not output_dir.exists() or not any(output_dir.iterdir()):
        return False
    run_file = output_dir / RUN_FILE
    if not run_file.exists():
        if overwrite:
            return False
        raise UserError(
            f"output_dir '{output_dir}' is not empty and was not written by builders; "
            "choose another output_dir or pass --overwrite to replace its contents"
        )
    previous = json.loads(run_file.read_text())
    if previous.get("fingerprint_hash") == fingerprint_hash and previous.get("recipe") == recipe:
        return True
    if overwrite:
        return False
    old = previous.get("config", {})
    differing = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
    if previous.get("recipe") != recipe:
        differing.insert(0, "recipe")
    shown = ", ".join(f"{k} ({old.get(k)!r} -> {fingerprint.get(k)!r})" for k in differing[:6])
    raise UserError(
        f"output_dir '{output_dir}' holds a different run (differs in {shown or 'its settings'}); "
        "pass --overwrite to start fresh, or choose another output_dir"
    )


def claim_output_dir(output_dir: Path, recipe: str, fingerprint: dict, fingerprint_hash: str) -> None:
    """Record which run owns the folder (called once the inputs were checked)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {"recipe": recipe, "fingerprint_hash": fingerprint_hash, "config": fingerprint, "complete": False}
    _write_text_atomically(output_dir / RUN_FILE, json.dumps(payload, indent=2, default=str))


def mark_complete(output_dir: Path) -> None:
    run_file = output_dir / RUN_FILE
    payload = json.loads(run_file.read_text())
    payload["complete"] = True
    _write_text_atomically(run_file, json.dumps(payload, indent=2, default=str))


def staging_dir(output_dir: Path) -> Path:
    staging = output_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def write_parquet_shards(ds: Dataset, folder: Path, split: str = "train") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    num_shards = max(1, math.ceil(ds.data.nbytes / SHARD_BYTES))
    paths = []
    for i in range(num_shards):
        path = folder / f"{split}-{i:05d}-of-{num_shards:05d}.parquet"
        ds.shard(num_shards, i, contiguous=True).to_parquet(str(path))
        paths.append(path)
    return paths


def publish(staging: Path, output_dir: Path) -> None:
    """Move every staged file into place; the previous version goes to .trash first, then is deleted."""
    trash = output_dir / ".trash"
    shutil.rmtree(trash, ignore_errors=True)
    trash.mkdir()
    for name in FINAL_NAMES:
        target = output_dir / name
        if target.exists():
            os.replace(target, trash / name)
        if (staging / name).exists():
            os.replace(staging / name, target)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
