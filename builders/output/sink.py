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

The final files are written to `.staging/` and then moved into place. Once every staged file is written,
`.staging/MANIFEST` lists them: that is the commit point. Moving them into place is idempotent, and a run
that starts on a folder with a manifest finishes the moves first (`recover`). So a crash before the
commit point leaves the old files as they were; a crash after it leaves the new ones (and the run marked
complete) as soon as the same command runs again. A half-written dataset never takes the place of a
good one, and `recipes/push.py` refuses a folder whose publish is not finished.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from datasets import Dataset

from builders.errors import UserError
from builders.files import write_atomically

RUN_FILE = "run.json"
STAGING, TRASH, MANIFEST = ".staging", ".trash", "MANIFEST"
FINAL_NAMES = ("data", "extra", "rejected", "images", "README.md", "config.yaml", "stats.json")
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
    write_atomically(output_dir / RUN_FILE, json.dumps(payload, indent=2, default=str))


def is_complete(output_dir: Path) -> bool:
    """True when the folder holds the final files of a run that finished (and no publish is half done)."""
    run_file = output_dir / RUN_FILE
    if (output_dir / STAGING / MANIFEST).exists() or not run_file.exists():
        return False
    return bool(json.loads(run_file.read_text()).get("complete"))


def staging_dir(output_dir: Path) -> Path:
    recover(output_dir)  # a publish that a crash interrupted is finished before a new one starts
    staging = output_dir / STAGING
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
    """Replace the final files of `output_dir` by the staged ones and mark the run complete, as one step.

    Writing the manifest is the commit point: before it, a crash leaves the old files in place (and the
    staging folder is discarded by the next run); after it, the moves are completed by `recover`.
    """
    run = json.loads((output_dir / RUN_FILE).read_text())
    write_atomically(staging / RUN_FILE, json.dumps({**run, "complete": True}, indent=2, default=str))
    names = [name for name in (*FINAL_NAMES, RUN_FILE) if (staging / name).exists()]
    _fsync_tree(staging)
    write_atomically(staging / MANIFEST, json.dumps(names))
    _roll_forward(output_dir)


def recover(output_dir: Path) -> bool:
    """Finish a publish that a crash interrupted after its commit point; returns True if there was one."""
    if not (output_dir / STAGING / MANIFEST).exists():
        return False
    _roll_forward(output_dir)
    return True


def _roll_forward(output_dir: Path) -> None:
    """Move each staged name into place (the old version to .trash); safe to repeat after a crash anywhere."""
    staging, trash = output_dir / STAGING, output_dir / TRASH
    names = json.loads((staging / MANIFEST).read_text())
    trash.mkdir(exist_ok=True)
    for name in FINAL_NAMES:  # names of the old version that the new one lacks go to .trash too
        staged, target = staging / name, output_dir / name
        if name in names and not staged.exists():
            continue  # moved already, before the crash
        if target.exists():
            _remove(trash / name)
            os.replace(target, trash / name)
        if staged.exists():
            os.replace(staged, target)
    if (staging / RUN_FILE).exists():
        os.replace(staging / RUN_FILE, output_dir / RUN_FILE)
    (staging / MANIFEST).unlink()
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _fsync_tree(folder: Path) -> None:
    """Flush the staged files to disk before the commit point, so a power cut cannot commit empty files."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
