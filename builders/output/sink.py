"""The output folder: guard it against mixing runs, and publish the final files atomically.

Layout of `output_dir/`:

    data/train-00000-of-0000N.parquet   the dataset (what `load_dataset(output_dir)` reads)
    rejected/*.parquet                  dropped rows with their stage and reason (keep_rejected: true)
    README.md                           the dataset card
    config.yaml                         the resolved config: rerun with `--config config.yaml`
    stats.json                          the funnel and token totals
    images/                             figures the card shows
    run.json                            which run this folder belongs to: recipe, config, input digests, and once
                                        it finished, every file it wrote with its size (never uploaded)
    .lock                               held by the run that works in the folder (output/lock.py)
    .checkpoints/<identity>/            finished generation chunks, for resume (never uploaded)

A run checks the folder before any work (`check_output_dir`, `guard_output_dir`: read only) and claims it only
once every up-front check passed (`claim_output_dir`, under the lock). The final files are written to `.staging/`
and then moved into place. Once every staged file is written, `.staging/MANIFEST` lists them: that is the commit
point. Moving them into place is idempotent, and a run that claims a folder with a manifest finishes the moves
first (`recover`). So a crash before the commit point leaves the old files as they were (and a finished run's
folder publishable, `--overwrite` or not); a crash after it leaves the new ones as soon as the same command runs
again. A half-written dataset never takes the place of a good one, and `recipes/push.py` refuses a folder whose
publish is not finished or whose files are not the ones its run wrote (`broken_files`).
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
from builders.output.lock import LOCK_NAME

RUN_FILE = "run.json"
STAGING, TRASH, MANIFEST = ".staging", ".trash", "MANIFEST"
FINAL_NAMES = ("data", "extra", "rejected", "images", "README.md", "config.yaml", "stats.json")
REQUIRED_NAMES = ("README.md", "config.yaml", "stats.json")
SHARD_BYTES = 500 * 1024**2  # parquet shards of ~500 MB, as the Hub's own conversion does


def check_output_dir(output_dir: Path) -> None:
    """`output_dir` must be a folder this user can write, or a path where one can be made. Reads only."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"output_dir '{output_dir}' is a file; choose a folder path for output_dir")
    existing = output_dir.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"output_dir '{output_dir}' cannot be made: '{existing}' is a file; choose another output_dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"output_dir '{output_dir}' cannot be written: '{existing}' is not writable by this user; choose another "
            "output_dir or fix its permissions"
        )


def read_run(output_dir: Path) -> dict | None:
    """The run record of the folder (the staged one while a publish is half done); None if it has none."""
    staged = output_dir / STAGING / RUN_FILE
    path = staged if (output_dir / STAGING / MANIFEST).exists() and staged.exists() else output_dir / RUN_FILE
    if not path.exists():
        return None
    try:
        run = json.loads(path.read_text())
    except (ValueError, OSError) as err:
        run = err
    if not isinstance(run, dict):
        raise UserError(
            f"output_dir '{output_dir}' holds a {RUN_FILE} that cannot be read ({str(run)[:100]}); pass --overwrite "
            "to replace what the folder holds, or choose another output_dir"
        )
    return run


def guard_output_dir(output_dir: Path, record: dict, overwrite: bool) -> dict | None:
    """Check that `output_dir` is free, holds this same run (its record is returned: a resume), or may be replaced.

    `record` is this run's {recipe, fingerprint_hash, config, inputs}. A UserError when the folder holds another
    run, foreign files or an unreadable run.json and `overwrite` is false, or when only the inputs changed (then
    the checkpoints belong to other rows). Nothing is written or deleted here: an error leaves the folder as it was.
    """
    if not output_dir.exists() or not any(p.name != LOCK_NAME for p in output_dir.iterdir()):
        return None
    try:
        previous = read_run(output_dir)
    except UserError:
        if overwrite:
            return None
        raise
    if previous is None:
        if overwrite:
            return None
        raise UserError(
            f"output_dir '{output_dir}' is not empty and was not written by builders; "
            "choose another output_dir or pass --overwrite to replace its contents"
        )
    same = (
        previous.get("fingerprint_hash") == record["fingerprint_hash"] and previous.get("recipe") == record["recipe"]
    )
    changed = [k for k, v in record.get("inputs", {}).items() if previous.get("inputs", {}).get(k, v) != v]
    if same and not changed:
        return previous
    if overwrite:
        return None
    if same:
        raise UserError(
            f"the input changed since the checkpoints in '{output_dir}' were written (the content of "
            f"{', '.join(changed)} differs); pass --overwrite to generate again from the new input, or restore the old one"
        )
    old, new = previous.get("config", {}), record["config"]
    differing = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if previous.get("recipe") != record["recipe"]:
        differing.insert(0, "recipe")
    shown = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in differing[:6])
    raise UserError(
        f"output_dir '{output_dir}' holds a different run (differs in {shown or 'its settings'}); "
        "pass --overwrite to start fresh, or choose another output_dir"
    )


def claim_output_dir(output_dir: Path, record: dict) -> None:
    """Record which run owns the folder; the caller holds its lock and has passed every up-front check.

    A publish that a crash interrupted is finished first. A folder that holds a finished run keeps its record
    (and stays publishable) until this run publishes its own files: `--overwrite` replaces nothing before then.
    """
    recover(output_dir)
    try:
        current = read_run(output_dir)
    except UserError:  # unreadable: guard_output_dir let it through because of --overwrite
        current = None
    if current is None or not current.get("complete"):
        write_atomically(output_dir / RUN_FILE, json.dumps({**record, "complete": False}, indent=2, default=str))


def discard_claim(output_dir: Path) -> None:
    """Remove a folder this run made, if it holds nothing but its claim (run.json, the lock file, empty folders):
    a run that could generate nothing leaves no folder behind. The caller has released the lock."""
    if not any(p.is_file() and p.name not in (RUN_FILE, LOCK_NAME) for p in output_dir.rglob("*")):
        shutil.rmtree(output_dir, ignore_errors=True)


def is_complete(output_dir: Path) -> bool:
    """True when the folder holds the final files of a run that finished (and no publish is half done)."""
    if (output_dir / STAGING / MANIFEST).exists() or not (output_dir / RUN_FILE).exists():
        return False
    try:
        return bool(read_run(output_dir).get("complete"))
    except UserError:
        return False


def broken_files(output_dir: Path) -> str | None:
    """What keeps a finished run's folder from being whole, or None: every file its run.json lists is there with the
    size it was written with, and parses (parquet footers, JSON, YAML, the card's header)."""
    run = read_run(output_dir)
    if run is None:
        return f"no {RUN_FILE}: a recipe did not write it"
    files = dict(run.get("files") or {})  # folders of earlier versions list none: their required files then
    names = set(files) | {n for n in REQUIRED_NAMES if n not in files}
    if not any(n.startswith("data/") for n in files) and not list((output_dir / "data").glob("*.parquet")):
        return "data/ holds no parquet file"
    names |= {p.relative_to(output_dir).as_posix() for p in (output_dir / "data").glob("*.parquet")}
    for name in sorted(names):
        path = output_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if name in files and path.stat().st_size != files[name]:
            return f"{name} has {path.stat().st_size} bytes, not the {files[name]} its run wrote"
        problem = _unreadable(path)
        if problem:
            return f"{name} does not parse ({problem})"
    return None


def _unreadable(path: Path) -> str | None:
    import pyarrow.parquet as pq
    import yaml

    try:
        if path.suffix == ".parquet":
            pq.read_metadata(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix in (".yaml", ".md"):
            text = path.read_text()
            if path.suffix == ".md":  # the card: its YAML header
                text = text.split("---")[1] if text.startswith("---") else ""
            yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001 - any failure to read is the finding
        return f"{type(err).__name__}: {str(err).splitlines()[0][:100] if str(err) else ''}"
    return None


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


def publish(staging: Path, output_dir: Path, record: dict) -> None:
    """Replace the final files of `output_dir` by the staged ones and mark the run `record` complete, as one step.

    The run record lists every staged file and its size, which `check_complete` verifies before a push. Writing
    the manifest is the commit point: before it, a crash leaves the old files in place (and the staging folder is
    discarded by the next run); after it, the moves are completed by `recover`.
    """
    files = {p.relative_to(staging).as_posix(): p.stat().st_size for p in sorted(staging.rglob("*")) if p.is_file()}
    run = {**record, "complete": True, "files": files}
    write_atomically(staging / RUN_FILE, json.dumps(run, indent=2, default=str))
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
