"""Reading a run's output folder for the viewer. Nothing here writes, so a folder can be viewed while its run
is still generating, and viewing never changes what a later `push.py` would publish.

A folder is a run's output when it holds `stats.json` (a finished run, or a Hub dataset that `push.py`
published) or `run.json` (a run that is going, or stopped: its finished batches are in `.checkpoints/`). A
Hub id is downloaded into the Hub cache (`snapshot_download`), never into a folder the user named.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml

from builders.errors import UserError
from builders.output.sink import FINAL_NAMES, RUN_FILE

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
OUTPUT_NAMES = ("text", "response", "output", "completion", "answer", "generation", "solution")
PROMPT_NAMES = ("prompt", "messages", "instruction", "question", "query", "problem", "input")
MAX_CATEGORIES = 50  # a column with more distinct values than this is not offered as a filter
MAX_CATEGORY_CHARS = 60  # nor one whose values are longer (texts, not labels)
NOT_CATEGORIES = ("_tokens", "_length", "_count")  # counts, not labels
GENERATION_COLUMNS = ("finish_reason", "prompt_tokens", "completion_tokens")


@dataclass
class RunFolder:
    """One run's output folder, read lazily: what the viewer shows of it."""

    path: Path
    label: str  # what the user named: a folder or a Hub id
    stats: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """The final files are in place (a run marked complete, or a published dataset without run.json)."""
        return bool(self.stats) and self.run.get("complete", True)

    @property
    def card(self) -> str:
        """The dataset card without its YAML header; empty before the run finished."""
        path = self.path / "README.md"
        text = path.read_text() if path.exists() else ""
        return re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S).strip()

    @property
    def images(self) -> list[Path]:
        return sorted((self.path / "images").glob("*.png"))

    @cached_property
    def rows(self) -> pd.DataFrame:
        """The dataset's rows (data/*.parquet), in order; no rows (and no columns) before the run finished."""
        return _read_parquet(self.path / "data")

    @cached_property
    def rejected(self) -> pd.DataFrame:
        """The dropped rows (rejected/*.parquet, `keep_rejected: true`): stage, reason, then the row's own columns."""
        table = _read_parquet(self.path / "rejected")
        if table.empty:
            return table
        rows = [
            {"stage": stage, "reason": reason, **json.loads(row)}
            for stage, reason, row in zip(table["stage"], table["reason"], table["row"])
        ]
        return pd.DataFrame(rows)

    def text_columns(self, df: pd.DataFrame) -> tuple[str | None, str | None]:
        """The prompt and output columns of `df`: the run's text column (stats.json) or the usual names."""
        named = self.stats.get("text_length", {}).get("column")
        output = named if named in df.columns else _first(df, OUTPUT_NAMES)
        prompt = _first(df, [n for n in PROMPT_NAMES if n != output])
        return prompt, output

    @property
    def checkpoints(self) -> Path | None:
        """The folder of this run's finished generation batches (`.checkpoints/<identity>/`)."""
        folder = self.run.get("checkpoints") or self.run.get("fingerprint_hash")  # older runs: the config's hash
        return self.path / ".checkpoints" / folder if folder else None


def open_run(target: str) -> RunFolder:
    """The run at `target`: a local output folder, or a Hub dataset id (downloaded to the Hub cache)."""
    path = Path(target).expanduser()
    if not path.exists() and HUB_ID.match(target):
        path = _download(target)
    elif not path.is_dir():
        raise UserError(f"'{target}' is not a folder; pass the output_dir of a recipe run (or a Hub dataset id)")
    stats, run = _read_json(path / "stats.json"), _read_json(path / RUN_FILE)
    if not stats and not run:
        raise UserError(
            f"'{target}' is not the output of a recipe run (it has no stats.json or run.json); "
            "pass the output_dir a recipe wrote"
        )
    config_file = path / "config.yaml"
    config = yaml.safe_load(config_file.read_text()) if config_file.exists() else run.get("config", {})
    return RunFolder(path=path, label=target, stats=stats, config=config or {}, run=run)


def _download(repo_id: str) -> Path:
    """The final files of a Hub dataset that `push.py` published (the default config), in the Hub cache."""
    import os

    from huggingface_hub import snapshot_download

    patterns = [f"{name}/*" for name in FINAL_NAMES] + list(FINAL_NAMES)
    try:
        folder = snapshot_download(
            repo_id, repo_type="dataset", allow_patterns=patterns, endpoint=os.environ.get("HF_ENDPOINT") or None
        )
    except Exception as err:  # offline, unknown repo, no access: the Hub client's own exceptions
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(
            f"'{repo_id}' is not a local folder, and downloading it as a Hub dataset failed "
            f"({type(err).__name__}: {first}); check the path, or the id and HF_HUB_OFFLINE / HF_TOKEN"
        ) from None
    return Path(folder)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _read_parquet(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def _first(df: pd.DataFrame, names) -> str | None:
    return next((name for name in names if name in df.columns), None)


# -- browsing --------------------------------------------------------------------------------------------------


def categories(df: pd.DataFrame, skip: tuple = (), keep: tuple = ()) -> dict[str, list]:
    """The columns to filter on (format, audience, task, hop, reason, ...) and their values, most frequent first:
    labels (not texts, not counts) with 2 to MAX_CATEGORIES distinct values; `keep` columns whatever their values."""
    out = {}
    for name in df.columns:
        if name in skip or name.startswith("_") or (name.endswith(NOT_CATEGORIES) and name not in keep):
            continue
        values = df[name]
        if not all(isinstance(v, str | int | bool) for v in values):
            continue
        distinct = values.nunique()
        if distinct > MAX_CATEGORIES or values.astype(str).str.len().max() > MAX_CATEGORY_CHARS:
            continue
        if distinct < 2 and name not in keep:
            continue
        out[name] = [str(v) for v in values.astype(str).value_counts().index]
    return out


def haystack(df: pd.DataFrame) -> pd.Series:
    """Every row's columns as one lower-cased text: what `search` looks in, built once per table."""
    if df.empty:
        return pd.Series("", index=df.index)
    texts = [df[name].map(as_text).str.lower() for name in df.columns]
    return functools.reduce(lambda joined, column: joined + "\x00" + column, texts)


def search(df: pd.DataFrame, query: str, filters: dict[str, str | None], texts: pd.Series | None = None):
    """The rows whose text contains `query` in any column (case-insensitive) and whose columns equal `filters`;
    `texts` is `haystack(df)` when the caller keeps it between searches."""
    keep = pd.Series(True, index=df.index)
    for name, value in filters.items():
        if value:
            keep &= df[name].astype(str) == value
    query = (query or "").strip().lower()
    if query:
        texts = haystack(df) if texts is None else texts
        keep &= texts.str.contains(query, regex=False)
    return df[keep]


def as_text(value) -> str:
    """A cell as text: strings as they are, anything else (messages, lists, numbers) as JSON."""
    if isinstance(value, str):
        return value
    if hasattr(value, "tolist"):
        value = value.tolist()
    return json.dumps(value, ensure_ascii=False, default=str)


def page_of(df: pd.DataFrame, page: int, size: int) -> tuple[pd.DataFrame, int, int]:
    """Rows of page `page` (1-based, clamped), the page shown and the number of pages."""
    pages = max(1, math.ceil(len(df) / size))
    page = min(max(1, int(page or 1)), pages)
    return df.iloc[(page - 1) * size : page * size], page, pages


def align(a: pd.DataFrame, b: pd.DataFrame, prompt: str, output_a: str, output_b: str) -> pd.DataFrame:
    """Rows of two runs side by side on their prompt: each prompt once, with run A's and run B's output
    (missing where a run kept no row for it)."""
    left = pd.DataFrame({"prompt": a[prompt].map(as_text), "A": a[output_a]}).drop_duplicates("prompt")
    right = pd.DataFrame({"prompt": b[prompt].map(as_text), "B": b[output_b]}).drop_duplicates("prompt")
    return left.merge(right, on="prompt", how="outer", sort=False).fillna("")
