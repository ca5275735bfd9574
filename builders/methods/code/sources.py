"""Source code as input rows: the standard library, a folder or files of code, or a dataset with a code column.

    docs = load_code("stdlib", include=["textwrap.py", "json/*.py"])      # this Python's own standard library
    docs = load_code("src/", include=["**/*.py"])                          # a folder of source files
    docs = load_code("bigcode/the-stack-smol", code_column="content")      # a dataset (Hub id or local file)

Every document becomes a row `{"path", "lang", "code"}` (plus the `_row` id). The language comes from the
file extension, from a language column of the dataset, or from `default_language`.
`extract_snippet` takes a run of consecutive lines from a document, the same one for the same (seed, row).
"""

from __future__ import annotations

import fnmatch
import os
import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from builders.config import RecipeConfig, knob
from builders.data import ROW_ID, load_rows
from builders.errors import UserError
from builders.generation.stage import row_seed

STDLIB = "stdlib"
LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".go": "go",
    ".rs": "rust",
    ".rb": "ruby",
    ".php": "php",
    ".swift": "swift",
    ".kt": "kotlin",
    ".scala": "scala",
    ".lua": "lua",
    ".r": "r",
    ".jl": "julia",
    ".sh": "shell",
    ".bash": "shell",
    ".sql": "sql",
    ".hs": "haskell",
    ".pl": "perl",
}
# Parts of the standard library that are tests, GUI or vendored data rather than library code.
STDLIB_SKIP = frozenset({"test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages", "ensurepip"})
ALIASES = {"py": "python", "python3": "python", "js": "javascript", "c++": "cpp", "c#": "csharp", "sh": "shell"}


@dataclass
class CodeSourceConfig(RecipeConfig):
    """The keys of recipes that read source code (OSS-Instruct, Case2Code)."""

    dataset: str | None = knob(
        "stdlib", "stdlib (this Python's standard library), a folder/file/glob of source files, or a dataset"
    )
    include: list[str] = knob([], "glob patterns choosing files of a folder or of stdlib (empty: every file)")
    code_column: str = knob("content", "column holding the code, when `dataset` is a dataset")
    lang_column: str = knob("lang", "column holding the language, when the dataset has one")
    path_column: str = knob("path", "column holding a file path (its extension tells the language)")
    default_language: str = knob("python", "language of documents that say nothing about theirs")
    max_file_bytes: int = knob(200_000, "skip source files larger than this (generated or vendored code)")

    def load_code(self) -> Dataset:
        return load_code(
            self.dataset,
            include=self.include,
            code_column=self.code_column,
            lang_column=self.lang_column,
            path_column=self.path_column,
            default_language=self.default_language,
            split=self.dataset_split,
            name=self.dataset_config,
            num_samples=self.num_samples,
            max_file_bytes=self.max_file_bytes,
        )


def language_of(path: str) -> str | None:
    return LANGUAGES.get(Path(path).suffix.lower())


def normalise_language(name: str | None) -> str | None:
    if not name:
        return None
    name = str(name).strip().lower()
    return ALIASES.get(name, name)


def stdlib_folder() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def load_code(
    source: str | None,
    *,
    include: list[str] = (),
    code_column: str = "content",
    lang_column: str = "lang",
    path_column: str = "path",
    default_language: str = "python",
    split: str = "train",
    name: str | None = None,
    num_samples: int | None = None,
    max_file_bytes: int = 200_000,
) -> Dataset:
    """Documents of code as rows `{"path", "lang", "code", "_row"}`.

    `source` is `stdlib`, a folder of source files, a source file, a glob pattern, or a dataset (a local
    jsonl/parquet/csv file or folder of them, or a Hub id) with a `code_column`. `include` (glob patterns,
    relative to the folder) selects files of a folder; `num_samples` keeps the first N documents.
    """
    if not source:
        raise UserError("no input given; set `dataset` to stdlib, a folder or file of source code, or a dataset")
    files = _source_files(source, include)
    if files is None:
        return _from_dataset(source, code_column, lang_column, path_column, default_language, split, name, num_samples)
    rows = []
    for path, shown in files:
        if path.stat().st_size > max_file_bytes:
            continue  # generated or vendored blobs, not code a person wrote
        try:
            code = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        rows.append({"path": shown, "lang": language_of(path.name), "code": code})
        if num_samples is not None and len(rows) >= num_samples:
            break
    if not rows:
        raise UserError(
            f"dataset '{source}' has no readable source files{' matching ' + str(list(include)) if include else ''}; "
            "check the path and the `include` patterns"
        )
    return Dataset.from_list([{**r, ROW_ID: i} for i, r in enumerate(rows)])


def _source_files(source: str, include: list[str]) -> list[tuple[Path, str]] | None:
    """(file, name shown in the data) for a code source; None when `source` is a dataset."""
    if source == STDLIB:
        root = stdlib_folder()
        files = _walk(root, include or ["**/*.py"], skip=STDLIB_SKIP)
        return [(p, f"stdlib/{_relative(p, root)}") for p in files]
    path = Path(source)
    if path.is_dir():
        if not any(language_of(p.name) for p in path.rglob("*") if p.is_file()):
            return None  # a folder of data files
        files = [p for p in _walk(path, include or ["**/*"]) if language_of(p.name)]
        if not files:
            raise UserError(f"no source file in '{source}' matches `include` {list(include)}; fix the patterns")
        return [(p, _relative(p, path)) for p in files]
    if path.is_file():
        return [(path, path.name)] if language_of(path.name) else None
    if any(c in source for c in "*?["):
        parent = Path(source.split("*")[0].split("?")[0].split("[")[0]).parent
        pattern = str(Path(source).relative_to(parent)) if parent != Path(".") else source
        return [(p, _relative(p, parent)) for p in _walk(parent, [pattern]) if language_of(p.name)]
    return None


def _walk(root: Path, patterns: list[str], skip: frozenset = frozenset()) -> list[Path]:
    """Files under `root` (not inside folders named in `skip`) matching a glob pattern, sorted.

    Patterns are matched against the path relative to `root`; `*` may cross folders and a leading `**/`
    also matches at the top (`**/*.py` takes every Python file).
    """
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in skip and d != "__pycache__")
        for name in files:
            path = Path(folder) / name
            relative = _relative(path, root)
            if any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(relative, p.removeprefix("**/")) for p in patterns):
                found.append(path)
    return sorted(found)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _from_dataset(source, code_column, lang_column, path_column, default_language, split, name, num_samples):
    ds = load_rows(source, split, name, num_samples, [code_column], key_hint="code_column")
    columns = ds.column_names

    def to_document(row: dict) -> dict:
        path = str(row[path_column]) if path_column in columns and row[path_column] is not None else ""
        lang = normalise_language(row[lang_column]) if lang_column in columns else None
        lang = lang or language_of(path) or default_language
        return {"path": path or f"{source}#{row[ROW_ID]}", "lang": lang, "code": row[code_column] or ""}

    keep = [c for c in columns if c not in (ROW_ID,)]
    docs = ds.map(to_document, remove_columns=keep, desc="Reading code documents")
    return docs.select_columns(["path", "lang", "code", ROW_ID])


def extract_snippet(code: str, seed: int, row_id: int, min_lines: int = 1, max_lines: int = 15) -> str:
    """`min_lines`..`max_lines` consecutive lines of `code`, chosen by (seed, row_id); "" if it has no text.

    Runs of blank lines are avoided: up to ten draws are made before giving up on a mostly empty document.
    """
    lines = code.splitlines()
    if not any(line.strip() for line in lines):
        return ""
    rng = random.Random(row_seed(seed, row_id, "snippet"))
    for _ in range(10):
        size = min(rng.randint(min_lines, max_lines), len(lines))
        start = rng.randint(0, len(lines) - size)
        snippet = lines[start : start + size]
        if sum(1 for line in snippet if line.strip()) >= min(size, 1 + size // 2):
            break
    while snippet and not snippet[0].strip():
        snippet = snippet[1:]
    while snippet and not snippet[-1].strip():
        snippet = snippet[:-1]
    return "\n".join(snippet)
