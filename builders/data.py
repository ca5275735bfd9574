"""Load the input rows of a recipe: a local file, a folder, or a Hub id, as a `datasets.Dataset`."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
from datasets import Dataset

from builders.errors import UserError

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
    try:
        return load()
    except UserError:
        raise
    except ValueError as err:
        if "split" in str(err).lower():
            raise UserError(f"{what} '{source}': {err}; set `dataset_split` to an existing split") from None
        raise UserError(
            f"{what} '{source}' could not be read ({_first_line(err)}); check the path or Hub id"
        ) from None
    except Exception as err:
        if local:
            raise UserError(
                f"{what} '{source}' could not be read ({type(err).__name__}: {_first_line(err)}); "
                "check that the file is valid"
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


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
