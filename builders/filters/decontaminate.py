"""Remove rows that overlap benchmark test sets: n-gram candidates, then a similarity check.

    benchmarks = load_benchmarks(config.decontaminate)      # [{path, columns, split?, name?}, ...]
    kept, removed, counts = decontaminate(ds, "text", benchmarks, ngram=12, threshold=0.5)

1. Index. Every benchmark *sample* (the text of one row in one of the given columns) is normalised like
   dedup (NFKC, lower case, punctuation folded; characters for text without spaces) and its word n-grams are
   hashed (`builders.dedup.shingles`). A sample shorter than `ngram` words but at least `min_words` long is
   indexed as one n-gram of its own length; shorter samples ("B", "Paris") are too short to be evidence.
2. Candidates. A row is a candidate for a sample when they share an n-gram: a join of sorted hash arrays,
   vectorised over batches of rows. datatrove uses 12-grams, NeMo Curator 13-grams; the default is 12.
3. Check. As Cosmopedia did: the sample's words are aligned with the row's words at each shared n-gram, and
   the row is contaminated when `difflib`'s ratio between the sample and the aligned window of the row is at
   least `threshold`. A row that shares one stock phrase with a question is kept; one that copies the
   question, even with small edits, is removed.

A removed row is counted against the first benchmark (in the config's order) whose sample it matches.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset

from builders.data import load_rows
from builders.dedup.shingles import Units, reference_units, text_units
from builders.errors import UserError
from builders.parallel import map_rows

MIN_WORDS = 8
MAX_ALIGNMENTS = 8  # distinct alignments of a sample tried per candidate row
BENCHMARK_KEYS = {"path", "columns", "split", "name"}


@dataclass
class Benchmark:
    label: str  # how reports name it: the file's stem or the Hub id (with its config name)
    samples: list[str]


def load_benchmarks(specs: list) -> list[Benchmark]:
    """Read the `decontaminate` config entries; a malformed entry or a missing column is a UserError."""
    benchmarks = []
    for i, spec in enumerate(specs):
        where = f"decontaminate[{i}]"
        if isinstance(spec, str):
            raise UserError(f"{where} is {spec!r}; give a mapping like {{path: {spec}, columns: [question]}}")
        if not isinstance(spec, dict) or "path" not in spec or "columns" not in spec:
            raise UserError(f"{where} needs `path` and `columns`, e.g. {{path: cais/mmlu, columns: [question]}}")
        if unknown := set(spec) - BENCHMARK_KEYS:
            raise UserError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}; use path, columns, split, name")
        columns = [spec["columns"]] if isinstance(spec["columns"], str) else list(spec["columns"])
        path, name, split = str(spec["path"]), spec.get("name"), spec.get("split", "test")
        rows = load_rows(path, split=split, name=name, required_columns=columns, what=f"benchmark '{path}'")
        samples = [_as_text(value) for column in columns for value in rows[column]]
        label = Path(path).stem if Path(path).exists() else path
        label = f"{label}/{name}" if name else label
        if any(b.label == label for b in benchmarks):  # two files with the same name: count them apart
            label = f"{path}/{name}" if name else path
        benchmarks.append(Benchmark(label, [s for s in samples if s.strip()]))
    return benchmarks


def decontaminate(
    ds: Dataset,
    column: str,
    benchmarks: list[Benchmark],
    ngram: int = 12,
    threshold: float = 0.5,
    min_words: int = MIN_WORDS,
    batch_size: int = 2048,
    num_proc: int | None = None,
) -> tuple[Dataset, Dataset, dict[str, int]]:
    """Return (kept rows, removed rows with a `benchmark` column, rows removed per benchmark label).

    Batches of rows are checked on `num_proc` processes (None: every core this process may use) when the work
    pays for it (`builders.parallel.map_rows`); the removed rows are the same on any number.
    """
    index = _Index(benchmarks, ngram, min_words)
    match = functools.partial(_first_benchmark, index=index, column=column, threshold=threshold)
    found = np.asarray(
        map_rows(
            ds.select_columns([column]),
            match,
            num_proc=num_proc,
            desc="Decontaminating",
            dtype="int64",
            batch_size=batch_size,
        ),
        dtype=np.int64,
    )
    counts = {b.label: 0 for b in benchmarks}
    for b in found[found >= 0]:
        counts[benchmarks[b].label] += 1
    removed_idx = np.flatnonzero(found >= 0)
    kept = ds if len(removed_idx) == 0 else ds.select(np.flatnonzero(found < 0))
    removed = ds.select(removed_idx).add_column("benchmark", [benchmarks[found[i]].label for i in removed_idx])
    return kept, removed, counts


def _first_benchmark(batch: dict[str, list], index: _Index, column: str, threshold: float) -> list[int]:
    """For each row of a batch, the first benchmark (in the config's order) with a sample it copies, or -1."""
    texts = [t or "" for t in batch[column]]
    found = [-1] * len(texts)
    units = text_units(texts, "auto")
    rows, samples = index.candidates(units)
    for row, sample_ids in _group(rows, samples):
        words = reference_units(texts[row], bool(units.char_mode[row]))
        hits = [s for s in sample_ids if index.similarity(s, words) >= threshold]
        if hits:
            found[row] = int(min(index.benchmark_of[s] for s in hits))
    return found


class _Index:
    """Hashed n-grams of all benchmark samples, sorted for joins; samples' words kept for the check."""

    def __init__(self, benchmarks: list[Benchmark], ngram: int, min_words: int):
        self.ngram = ngram
        texts = [s for b in benchmarks for s in b.samples]
        self.benchmark_of = np.repeat(np.arange(len(benchmarks)), [len(b.samples) for b in benchmarks])
        self.texts = texts
        units = text_units(texts, "auto")
        counts = units.counts
        # per gram length: sorted hashes and the sample of each
        self.lengths: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        grams = units.ngrams(ngram)
        self._add(ngram, grams.hashes, np.repeat(np.arange(len(texts)), grams.counts))
        short = np.flatnonzero((counts >= min_words) & (counts < ngram))
        for length in np.unique(counts[short]):
            ids = short[counts[short] == length]
            g = units.ngrams(int(length))
            self._add(int(length), g.hashes[g.offsets[ids]], ids)
        self._words: dict[int, list[str]] = {}
        self._char_mode = units.char_mode

    def _add(self, length: int, hashes: np.ndarray, samples: np.ndarray) -> None:
        if len(hashes) == 0:
            return
        order = np.argsort(hashes, kind="stable")
        self.lengths[length] = (hashes[order], samples[order])

    def candidates(self, units: Units) -> tuple[np.ndarray, np.ndarray]:
        """(row, sample) pairs of a batch that share an n-gram, each pair once."""
        rows_out, samples_out = [], []
        for length, (keys, samples) in self.lengths.items():
            grams = units.ngrams(length)
            hit = np.isin(grams.hashes, keys)
            if not hit.any():
                continue
            row_of = np.repeat(np.arange(len(grams.counts)), grams.counts)[hit]
            lo = np.searchsorted(keys, grams.hashes[hit], side="left")
            hi = np.searchsorted(keys, grams.hashes[hit], side="right")
            reps = hi - lo
            rows_out.append(np.repeat(row_of, reps))
            samples_out.append(samples[np.arange(reps.sum()) + np.repeat(lo - (np.cumsum(reps) - reps), reps)])
        if not rows_out:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        pairs = np.unique(np.stack((np.concatenate(rows_out), np.concatenate(samples_out)), axis=1), axis=0)
        return pairs[:, 0], pairs[:, 1]

    def words(self, sample: int) -> list[str]:
        if sample not in self._words:
            self._words[sample] = reference_units(self.texts[sample], bool(self._char_mode[sample]))
        return self._words[sample]

    def similarity(self, sample: int, row_words: list[str]) -> float:
        """The best difflib ratio between the sample and a window of the row aligned at a shared n-gram."""
        words = self.words(sample)
        n = min(self.ngram, len(words))
        where = {tuple(words[i : i + n]): i for i in range(len(words) - n, -1, -1)}
        offsets = []
        for j in range(len(row_words) - n + 1):
            i = where.get(tuple(row_words[j : j + n]))
            if i is not None and j - i not in offsets:
                offsets.append(j - i)
                if len(offsets) == MAX_ALIGNMENTS:
                    break
        best = 0.0
        for offset in offsets:
            window = row_words[max(0, offset) : offset + len(words)]
            best = max(best, difflib.SequenceMatcher(None, words, window, autojunk=False).ratio())
        return best


def _group(rows: np.ndarray, samples: np.ndarray):
    if len(rows) == 0:
        return
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    for a, b in zip(starts, np.append(starts[1:], len(rows))):
        yield int(rows[a]), samples[a:b].tolist()


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_as_text(v) for v in value)
    return str(value)
