"""Load the input rows of a recipe: a local file, a folder, or a Hub id, as a `datasets.Dataset`."""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import lzma
import os
from collections import Counter
from pathlib import Path

import datasets
from datasets import Dataset

from builders.errors import UserError
from builders.filters.checks import REASON

ROW_ID = "_row"  # private column: the row's position in the input, the key of every per-row seed

_BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".txt": "text",
    ".arrow": "arrow",
}


def load_rows(
    dataset: str | None,
    split: str = "train",
    name: str | None = None,
    num_samples: int | None = None,
    required_columns: list[str] = (),
    what: str = "dataset",
    key_hint: str | None = None,
) -> Dataset:
    """Read `dataset`, keep the first `num_samples` rows, check the columns, and add the `_row` id column.

    Raises a UserError naming the fix when the path does not exist, the data is empty, or a column is missing.
    """
    if not dataset:
        raise UserError(f"no input given; set `{what}` to a jsonl/parquet/csv file, a folder, or a Hub id")
    ds = _load(dataset, split, name, what)
    if num_samples is not None:
        ds = ds.select(range(min(num_samples, len(ds))))
    if len(ds) == 0:
        raise UserError(f"{what} '{dataset}' (split '{split}') has no rows; point `{what}` at a non-empty dataset")
    check_columns(ds, required_columns, f"{what} '{dataset}'", key_hint)
    if ROW_ID in ds.column_names:
        ds = ds.remove_columns(ROW_ID)
    return ds.add_column(ROW_ID, list(range(len(ds))))


def check_columns(ds: Dataset, required: list[str], where: str, key_hint: str | None = None) -> None:
    missing = [c for c in required if c not in ds.column_names]
    if missing:
        hint = f" or set `{key_hint}` to one of them" if key_hint else ""
        raise UserError(
            f"{where} has no column {', '.join(repr(m) for m in missing)}; "
            f"its columns are {', '.join(ds.column_names) or '(none)'}: rename the column{hint}"
        )


def _load(source: str, split: str, name: str | None, what: str) -> Dataset:
    path = Path(source)
    if path.is_file():
        builder = _BUILDERS.get(_suffix(path))
        if builder is None:
            raise UserError(f"{what} '{source}' has an unknown extension; use .jsonl, .json, .parquet, .csv or .txt")
        if _is_empty(path, builder):
            return Dataset.from_dict({})
        return _wrap(
            lambda: datasets.load_dataset(builder, data_files=str(path), split="train"), source, what, local=True
        )
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():  # Dataset.save_to_disk
            loaded = datasets.load_from_disk(str(path))
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return _wrap(lambda: datasets.load_dataset(str(path), name, split=split), source, what, local=True)
    if not _looks_like_hub_id(source):
        raise UserError(f"{what} '{source}' does not exist; give an existing file or folder, or a Hub id (org/name)")
    return _wrap(lambda: datasets.load_dataset(source, name, split=split), source, what)


def _is_empty(path: Path, builder: str) -> bool:
    """datasets fails with an obscure error on empty files; detect them to say so plainly."""
    if path.stat().st_size == 0:
        return True
    if builder == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows == 0
    if builder in ("json", "text") and _suffix(path) in (".jsonl", ".txt"):
        with open(path, "rb") as f:
            return not any(line.strip() for line in f)
    return False


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) <= 2 and all(parts) and not source.startswith((".", "~")) and _suffix(Path(source)) == ""


def _suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s not in (".gz", ".zst", ".bz2", ".xz")]
    return suffixes[-1] if suffixes else ""


def _wrap(load, source: str, what: str, local: bool = False) -> Dataset:
    # datasets logs a failed JSON file itself; the UserError below says it once, in one line, with the line number
    json_log = logging.getLogger("datasets.packaged_modules.json.json")
    level = json_log.level
    json_log.setLevel(logging.CRITICAL)
    try:
        return load()
    except UserError:
        raise
    except Exception as err:
        if local and _suffix(Path(source)) == ".jsonl" and Path(source).is_file():
            bad_line = _bad_jsonl_line(Path(source))
            if bad_line:
                raise UserError(f"{what} '{source}' {bad_line}; fix that line") from None
        if isinstance(err, ValueError) and "split" in str(err).lower():
            raise UserError(f"{what} '{source}': {err}; set `dataset_split` to an existing split") from None
        if local:
            raise UserError(
                f"{what} '{source}' could not be read ({type(err).__name__}: {_first_line(err)}); "
                "check that the file is valid"
            ) from None
        if isinstance(err, ValueError):
            raise UserError(
                f"{what} '{source}' could not be read ({_first_line(err)}); check the path or Hub id"
            ) from None
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = (
            "HF_HUB_OFFLINE is set: download the dataset where there is network and pass its local path"
            if offline
            else "check the id, your network, or pass a local path"
        )
        raise UserError(
            f"{what} '{source}' could not be loaded ({type(err).__name__}: {_first_line(err)}); {hint}"
        ) from None
    finally:
        json_log.setLevel(level)


def _first_line(err: Exception) -> str:
    cause = err.__cause__ if isinstance(err, datasets.exceptions.DatasetGenerationError) and err.__cause__ else err
    text = str(cause).strip().splitlines()
    return text[0][:200] if text else type(cause).__name__


def _bad_jsonl_line(path: Path) -> str | None:
    """The first line of a JSONL file that is not a UTF-8 JSON object, said in words; None if every line is one.
    Read only after `datasets` failed on the file, to say where."""
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                return f"line {number} is not UTF-8 (byte {raw[err.start]:#04x} at position {err.start + 1})"
            except json.JSONDecodeError as err:
                return f"line {number} is not valid JSON ({err.msg} at column {err.colno})"
            if not isinstance(value, dict):
                return f"line {number} is a JSON {type(value).__name__}, not an object"
    return None


# -- what a run's identity holds of its inputs ------------------------------------------------------------------


def input_digests(values: dict) -> dict[str, str]:
    """Content digests of the inputs a config names, by key: every local file or folder among its values (at any
    depth: `dataset`, template files, benchmark paths), and a Hub `dataset`'s resolved commit. `model` is left out
    (weights are named by their path and revision). A checkpoint is reused only for the same digests."""
    digests = {}
    for key, value in _strings(values):
        if key.split("[")[0].split(".")[0] != "model" and _is_local_path(value):
            digests[key] = digest_path(Path(value))
    source = values.get("dataset")
    if isinstance(source, str) and "dataset" not in digests and _looks_like_hub_id(source):
        commit = hub_commit(source, values.get("dataset_config"))
        if commit:
            digests["dataset"] = f"hub:{commit}"
    return digests


def digest_path(path: Path) -> str:
    """xxh3-128 of a file's bytes, or of a folder's files (names, sizes and bytes; hidden entries skipped), read in
    chunks: the content, not the path or the modification time."""
    import xxhash

    digest, buffer = xxhash.xxh3_128(), bytearray(1 << 22)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
    for file in files:
        name = file.relative_to(path).as_posix() if file != path else ""
        digest.update(f"{name}\0{file.stat().st_size}\0".encode())
        with open(file, "rb", buffering=0) as f:
            while n := f.readinto(buffer):
                digest.update(memoryview(buffer)[:n])
    return f"xxh3:{digest.hexdigest()}"


def hub_commit(repo_id: str, name: str | None = None) -> str | None:
    """The commit of a Hub dataset that `load_dataset` reads (online: the Hub's head; offline: the cached one), as
    `datasets` resolves it; None when it cannot (loading it will then say why)."""
    try:
        return datasets.load_dataset_builder(repo_id, name).hash
    except Exception:  # noqa: BLE001 - unresolvable here means unloadable later, with a proper message
        return None


def _strings(value, key: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{key}[{i}]")
    elif isinstance(value, str):
        yield key, value


def _is_local_path(value: str) -> bool:
    if not value or "\n" in value or len(value) > 1024:
        return False
    try:
        path = Path(value)
        if path.is_dir() and path.resolve() in (Path.cwd(), *Path.cwd().parents):  # ".", "..": not an input
            return False
        return path.is_file() or path.is_dir()
    except OSError:  # a name too long for the filesystem
        return False


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


# -- text values ------------------------------------------------------------------------------------------------


def split_bad_text(ds: Dataset, columns: list[str], where: str) -> tuple[Dataset, Dataset | None, dict[str, int]]:
    """Set aside the rows whose `columns` hold a null, or whose text (in any column) is not valid UTF-8.

    Returns (kept rows, set-aside rows with their reason in the `REASON` column or None, drops by reason). A column of
    `columns` that holds no text at all (numbers, every value null) is a UserError naming it; so is an input in
    which no row is left. Arrow validates the UTF-8 of whole arrays; rows are looked at one by one only when an
    array fails.
    """
    import pyarrow as pa

    for column in columns:
        if not _is_text(ds.features[column]):
            raise UserError(
                f"{where} column '{column}' holds {_kind(ds.features[column])}, not text; point the key at a text "
                "column or convert the column"
            )
    text = [c for c, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    reasons: dict[int, str] = {}
    offset = 0
    for batch in ds.with_format("arrow").iter(batch_size=10_000):
        for column in columns:
            for i in batch.column(column).is_null().to_numpy(zero_copy_only=False).nonzero()[0]:
                reasons.setdefault(offset + int(i), f"null_{column}")
        for column in text:
            array = batch.column(column).combine_chunks()
            try:
                array.validate(full=True)
            except pa.ArrowInvalid:
                for i, value in enumerate(array.cast(pa.binary()).to_pylist()):
                    if value is not None and not _utf8(value):
                        reasons.setdefault(offset + i, f"invalid_utf8_{column}")
        offset += batch.num_rows
    if not reasons:
        return ds, None, {}
    counts = dict(Counter(reasons.values()))
    if len(reasons) == len(ds):
        raise UserError(f"{where} has no usable row ({_said(counts)}); fix the input")
    kept = ds.select(i for i in range(len(ds)) if i not in reasons)
    return kept, _set_aside(ds, reasons, text), counts


def _set_aside(ds: Dataset, reasons: dict[int, str], text: list[str]) -> Dataset:
    """The rows of `reasons` as plain rows with their reason; text that is not UTF-8 shown with U+FFFD."""
    import pyarrow as pa

    table = ds.select(sorted(reasons)).with_format("arrow")[:]
    for column in text:
        index = table.column_names.index(column)
        table = table.set_column(index, column, table.column(column).cast(pa.binary()))
    rows = table.to_pylist()
    for row, i in zip(rows, sorted(reasons)):
        for column in text:
            row[column] = row[column].decode("utf-8", errors="replace") if row[column] is not None else None
        row[REASON] = reasons[i]
    return Dataset.from_list(rows)


def _is_text(feature) -> bool:
    if isinstance(feature, datasets.Value):
        return feature.dtype in ("string", "large_string")
    inner = getattr(feature, "feature", None)  # a list of chat messages: [{role, content}]
    return isinstance(inner, dict) and "content" in inner


def _kind(feature) -> str:
    dtype = getattr(feature, "dtype", None)
    if dtype == "null":
        return "no value (every row is null)"
    return f"{dtype} values" if dtype else f"{type(feature).__name__} values"


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _said(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
