"""What the integrity checks of a run cost, against the reads they guard, on the same input in one run.

- input digest (`builders.data.digest_path`, xxh3-128 over the bytes, in 4 MiB chunks) against reading the same
  JSONL with `datasets.load_dataset`, which every run does anyway; hashlib's sha256 over the same bytes for scale;
- the text checks of the input (`split_bad_text`: nulls, Arrow's UTF-8 validation of every string column) against
  the same read;
- a verified checkpoint read (`CheckpointStore.load` with the stage's check: row ids, prompts, columns) against a
  bare `pyarrow.parquet.read_table(...).to_pydict()` of the same chunks.

The input is the shipped Alpaca slice (data/alpaca_5000.json) repeated to `--megabytes`, as JSONL with a row id.

    python benchmarks/integrity.py                    # 200 MB
    python benchmarks/integrity.py --megabytes 50
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def best_of(repeats: int, work) -> float:
    """The fastest of `repeats` runs (the others paid for page cache and a busy machine)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def make_input(folder: Path, megabytes: int) -> Path:
    rows = json.loads((REPO / "data" / "alpaca_5000.json").read_text())
    path, written, i = folder / "input.jsonl", 0, 0
    with open(path, "w") as f:
        while written < megabytes * 1024**2:
            row = rows[i % len(rows)]
            line = json.dumps({"id": i, "text": f"{row['instruction']}\n\n{row['output']}"}, ensure_ascii=False)
            written += f.write(line + "\n")
            i += 1
    return path


def sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)


def checkpoints(folder: Path, ds, batch_size: int):
    """The stage's chunks of `ds` as a generation stage writes them, and a reader of each: (bare, verified)."""
    import pyarrow.parquet as pq

    from builders.data import ROW_ID
    from builders.generation.checkpoint import CheckpointStore
    from builders.generation.stage import _expected_chunk, _written_columns

    store, written = CheckpointStore(folder / "checkpoints"), _written_columns("completion", explode=False)
    batches = []
    for start in range(0, len(ds), batch_size):
        batch = ds[start : start + batch_size]
        batch[ROW_ID] = list(range(start, start + len(batch["text"])))
        out = {**batch, "completion": batch["text"], "finish_reason": ["stop"] * len(batch["text"])}
        out["prompt_tokens"] = out["completion_tokens"] = [1] * len(batch["text"])
        end = start + len(batch["text"])
        store.save("generate", start, end, out)
        batches.append((start, end, batch))

    def bare():
        for start, end, _ in batches:
            pq.read_table(store.path("generate", start, end)).to_pydict()

    def verified():
        for start, end, batch in batches:
            assert store.load("generate", start, end, _expected_chunk(batch, "text", written, 1)) is not None

    return bare, verified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk_rows", type=int, default=20_000, help="rows of the checkpoints read back")
    args = parser.parse_args()

    import datasets

    from builders.data import digest_path, split_bad_text

    datasets.disable_caching()
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_input(Path(tmp), args.megabytes)
        cache, size = Path(tmp) / "cache", path.stat().st_size

        def load():  # parsed again each time, as a run on a new or edited file does
            return datasets.load_dataset(
                "json", data_files=str(path), split="train", cache_dir=str(cache), download_mode="force_redownload"
            )

        ds = load()
        t_load = best_of(args.repeats, load)
        t_digest = best_of(args.repeats, lambda: digest_path(path))
        t_sha = best_of(args.repeats, lambda: sha256(path))
        t_text = best_of(args.repeats, lambda: split_bad_text(ds, ["text"], "input"))
        bare, verified = checkpoints(Path(tmp), ds.select(range(min(len(ds), args.chunk_rows))), 1024)
        t_bare, t_verified = best_of(args.repeats, bare), best_of(args.repeats, verified)

    print(f"input: {len(ds)} rows, {args.megabytes} MB of JSONL; checkpoints: {min(len(ds), args.chunk_rows)} rows")
    print(f"{'step':46s} {'seconds':>8s} {'MB/s':>8s}")
    for name, seconds in [
        ("datasets.load_dataset, parsing the JSONL", t_load),
        ("input digest, xxh3-128 (ours)", t_digest),
        ("input digest, sha256 (for scale)", t_sha),
        ("text checks: nulls + UTF-8 (ours)", t_text),
    ]:
        print(f"{name:46s} {seconds:8.3f} {size / 1024**2 / seconds:8.0f}")
    print(f"{'checkpoint read, bare pyarrow':46s} {t_bare:8.3f}")
    print(f"{'checkpoint read, verified (ours)':46s} {t_verified:8.3f}")
    print(f"ratio digest / load:               {t_digest / t_load:.3f}")
    print(f"ratio text checks / load:          {t_text / t_load:.3f}")
    print(f"ratio xxh3 / sha256:               {t_digest / t_sha:.3f}")
    print(f"ratio verified / bare checkpoint:  {t_verified / t_bare:.3f}")


if __name__ == "__main__":
    main()
