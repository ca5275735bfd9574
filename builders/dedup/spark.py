"""Exact and MinHash dedup on Apache Spark: the same kept rows as `builders.dedup.minhash`, for corpora beyond one machine.

    first = spark_dedup(ds, "text", threshold=0.7, ngram=5, num_perm=128, seed=42)   # local[*] session
    first = spark_dedup(ds, "text", ..., master="spark://head:7077", work_dir="/shared/tmp")

The steps are those of `builders.dedup.minhash`, as DataFrame operations, with its own hashing code run inside
`mapInArrow` (so signatures, band keys and verified Jaccard values are the very same numbers):

1. Signatures. One pass over the rows: each document's exact-dedup hash (`Units.doc_hashes`) and its band keys
   (`band_keys` with the permutations of `seed`), an `array<bigint>` per document.
2. Exact dedup. Rows long enough to shingle, grouped by their two hashes; the smallest row of a group survives.
3. Candidates. The survivors' (band, key) pairs grouped into buckets; in each bucket of rows `m` (sorted), the
   pairs `(m[0], m[i])` and `(m[i-1], m[i])`: exactly the pairs the in-memory stage verifies.
4. Verification. A pair whose bands all agree is accepted (threshold <= 0.9); the others are joined with both
   texts and their true Jaccard (`pair_jaccard`) decides.
5. Connected components of the accepted pairs with alternating large-star and small-star rounds (Kiveris et
   al., "Connected Components in MapReduce and Beyond", 2014), no GraphFrames: at convergence every component
   is a star around its smallest row, which survives.

The rows go to Spark as a Parquet copy of `column` with row numbers under `work_dir` (a folder every executor
can read on a cluster); what comes back is the small list of removed rows and the row each duplicates.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset

from builders.dedup.minhash import _result, band_keys, lsh_params, pair_jaccard, permutations
from builders.dedup.shingles import text_units

logger = logging.getLogger("builders")

ROW, TEXT = "row", "text"
PARQUET_ROWS = 20_000  # rows per Parquet row group: the unit Spark splits the input into
CHAR_MODES = {"word": False, "char": True, "auto": "auto"}


@dataclass
class SparkDedup:
    """For every row, the first row of its cluster: `exact_first` over the input, `near_first` over the rows
    left after exact dedup (positions in that smaller dataset, as `minhash_dedup` numbers them)."""

    exact_first: np.ndarray
    near_first: np.ndarray
    near_stats: dict


def spark_session(master: str | None = None):
    """The Spark session: `local[*]` (every core of this machine) unless `master` names a cluster."""
    return _session(master or "local[*]")


@functools.lru_cache(maxsize=2)
def _session(master: str):
    from pyspark.sql import SparkSession

    package_root = str(Path(__file__).resolve().parents[2])  # workers import builders from here (local mode)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter (spark.pyspark.python
    # alone leaves local-mode workers on the `python3` of PATH)
    builder = (
        SparkSession.builder.master(master)
        .appName("builders-dedup")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.executorEnv.PYTHONPATH", os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    )
    if master.startswith("local"):
        cores = os.cpu_count() or 1
        builder = (
            builder.config("spark.driver.memory", "4g")  # the JVM's default 1 GiB is too small for 1M documents
            .config("spark.sql.shuffle.partitions", str(4 * cores))
            .config("spark.default.parallelism", str(2 * cores))
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_dedup(
    ds: Dataset,
    column: str,
    threshold: float = 0.7,
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 42,
    tokenizer: str = "auto",
    exact: bool = True,
    min_length: int = 1,
    verify: bool = True,
    master: str | None = None,
    work_dir: str | os.PathLike | None = None,
) -> SparkDedup:
    """Exact dedup (when `exact`), then MinHash near-dedup of the rest, on Spark; arguments as in `builders.dedup.minhash`.

    `min_length` is exact dedup's (rows with fewer units are never exact duplicates).
    """
    if tokenizer not in CHAR_MODES:
        raise ValueError(f"tokenizer must be 'auto', 'word' or 'char', got {tokenizer!r}")
    from pyspark.sql import functions as F

    spark = spark_session(master)
    n = len(ds)
    bands, rows_per_band = lsh_params(threshold, num_perm, verify)
    work = Path(tempfile.mkdtemp(prefix="spark-dedup-", dir=work_dir))
    mark = _Timer()
    try:
        docs = _write_rows(ds, column, work / "rows.parquet", spark)
        signed = docs.mapInArrow(
            functools.partial(
                _signatures,
                char_mode=CHAR_MODES[tokenizer],
                ngram=ngram,
                multipliers=permutations(seed, bands * rows_per_band),
                bands=bands,
                rows=rows_per_band,
                exact=exact,
                min_length=min_length,
            ),
            f"{ROW} bigint, h1 bigint, h2 bigint, long_enough boolean, keys array<bigint>",
        ).localCheckpoint()
        mark("signatures")

        # exact: the smallest row with the same normalised text survives
        exact_first = np.arange(n)
        sketched = signed.where(F.col("keys").isNotNull())
        if exact:
            long_enough = signed.where("long_enough")
            groups = long_enough.groupBy("h1", "h2").agg(F.min(ROW).alias("first"))
            dupes = long_enough.join(groups, ["h1", "h2"]).where(F.col(ROW) != F.col("first"))
            dupes = dupes.select(ROW, "first").localCheckpoint()
            removed = dupes.toArrow()
            exact_first[removed[ROW].to_numpy()] = removed["first"].to_numpy()
            sketched = sketched.join(dupes, ROW, "left_anti")
        survivors = np.flatnonzero(exact_first == np.arange(n))
        sketched = sketched.select(ROW, "keys").localCheckpoint()
        mark("exact dedup")

        # candidates: per band, each bucket's first row and sorted neighbours
        buckets = (
            sketched.select(ROW, F.posexplode("keys").alias("band", "key"))
            .groupBy("band", "key")
            .agg(F.array_sort(F.collect_list(ROW)).alias("m"))
            .where(F.size("m") > 1)
        )
        pairs = (
            buckets.select(
                F.explode(
                    F.expr(
                        "flatten(transform(sequence(1, size(m) - 1), "
                        "i -> array(named_struct('u', m[0], 'v', m[i]), named_struct('u', m[i - 1], 'v', m[i]))))"
                    )
                ).alias("p")
            )
            .select("p.u", "p.v")
            .where("u != v")
            .distinct()
            .localCheckpoint()
        )
        candidates = pairs.count()
        mark("candidate pairs")

        # verification: all bands agree, or the true Jaccard of the two texts reaches the threshold
        if verify and candidates:
            keys_u = sketched.select(F.col(ROW).alias("u"), F.col("keys").alias("ku"))
            keys_v = sketched.select(F.col(ROW).alias("v"), F.col("keys").alias("kv"))
            pairs = pairs.join(keys_u, "u").join(keys_v, "v")
            sure = F.col("ku") == F.col("kv") if threshold <= 0.9 else F.lit(False)
            pairs = pairs.withColumn("sure", sure).select("u", "v", "sure").localCheckpoint()
            texts_u = docs.select(F.col(ROW).alias("u"), F.col(TEXT).alias("tu"))
            texts_v = docs.select(F.col(ROW).alias("v"), F.col(TEXT).alias("tv"))
            checked = (
                pairs.where(~F.col("sure"))
                .join(texts_u, "u")
                .join(texts_v, "v")
                .select("u", "v", "tu", "tv")
                .mapInArrow(
                    functools.partial(_similar, char_mode=CHAR_MODES[tokenizer], ngram=ngram, threshold=threshold),
                    "u bigint, v bigint",
                )
            )
            pairs = pairs.where("sure").select("u", "v").unionByName(checked)
        pairs = pairs.localCheckpoint()
        duplicate_pairs = pairs.count()
        mark("verification")

        # clusters: star around the smallest row of each component
        star = connected_components(pairs).toArrow()
        mark("connected components")
        near_first = np.arange(len(survivors))
        position = np.searchsorted(survivors, star["a"].to_numpy())
        near_first[position] = np.searchsorted(survivors, star["b"].to_numpy())
        skipped = len(survivors) - sketched.count()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = np.bincount(near_first, minlength=len(survivors))
    stats = {
        "removed": int((near_first != np.arange(len(survivors))).sum()),
        "clusters": int((sizes > 1).sum()),
        "bands": bands,
        "rows_per_band": rows_per_band,
        "skipped_short": int(skipped),
        "candidate_pairs": int(candidates),
        "duplicate_pairs": int(duplicate_pairs),
    }
    return SparkDedup(exact_first, near_first, stats)


def dedup_stages(ds: Dataset, column: str, exact: bool, master: str | None, work_dir, **minhash):
    """`Run.dedup`'s two results on Spark: `(kept, stats, removed)` of exact dedup (None without it), then of
    MinHash dedup of its kept rows, as `exact_dedup` and `minhash_dedup` return them with `return_removed`."""
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    result = spark_dedup(
        ds, column, exact=exact, min_length=minhash["ngram"], master=master, work_dir=work_dir, **minhash
    )
    exact_result = None
    if exact:
        removed = int((result.exact_first != np.arange(len(ds))).sum())
        exact_result = _result(ds, result.exact_first, {"removed": removed}, None, True)
        ds = exact_result[0]
    return exact_result, _result(ds, result.near_first, result.near_stats, None, True)


class _Timer:
    """Logs the seconds since the last mark: where a Spark dedup spends its time."""

    def __init__(self):
        self.last = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        logger.info("spark dedup: %s in %.1fs", step, now - self.last)
        self.last = now


def connected_components(edges):
    """Edges (u, v) -> (a, b) for every node a of the graph but the smallest of its component, b: that smallest.

    Alternates large-star and small-star rounds until the edges form stars around their smallest nodes. Each
    round keeps the components; the number of rounds grows with the log of the largest component's size.
    """
    from pyspark.sql import functions as F

    def flipped(df):
        return df.select(F.col("b").alias("a"), F.col("a").alias("b"))

    def large_star(e):  # each node's larger neighbours move to the smallest node of its neighbourhood
        both = e.unionByName(flipped(e))
        least = both.groupBy("a").agg(F.least(F.min("b"), F.col("a")).alias("m"))
        return (
            both.join(least, "a").where(F.col("b") > F.col("a")).select(F.col("b").alias("a"), F.col("m").alias("b"))
        )

    def small_star(e):  # each node and its smaller neighbours move to the smallest of them
        least = e.groupBy("a").agg(F.min("b").alias("m"))
        moved = e.join(least, "a").select(F.col("b").alias("a"), F.col("m").alias("b")).where("a != b")
        return moved.unionByName(least.select("a", F.col("m").alias("b")))

    e = edges.select(F.greatest("u", "v").alias("a"), F.least("u", "v").alias("b")).distinct().localCheckpoint()
    rounds = 0
    while True:
        rounds += 1
        e = small_star(large_star(e).distinct()).distinct().localCheckpoint()
        # stars: no node is both a leaf and a centre, and no leaf has two centres
        centres = e.select(F.col("b").alias("a")).distinct()
        two_centres = e.groupBy("a").count().where("count > 1").select("a")
        if e.join(centres, "a", "left_semi").select("a").unionByName(two_centres).isEmpty():
            logger.info("connected components: %d large-star/small-star rounds", rounds)
            return e


# -- inside the Spark workers ------------------------------------------------------------------------------------


def _signatures(batches, char_mode, ngram, multipliers, bands, rows, exact, min_length):
    """(row, text) batches -> row, exact-dedup hashes, whether long enough for exact dedup (zeros and false
    without `exact`), band keys (null for a row too short to shingle)."""
    for batch in batches:
        texts = batch.column(TEXT)
        units = text_units(texts, "auto") if exact or char_mode == "auto" else None  # exact dedup: "auto" always
        hashes = units.doc_hashes().view(np.int64) if exact else np.zeros((len(texts), 2), dtype=np.int64)
        grams = (units if char_mode == "auto" else text_units(texts, char_mode)).ngrams(ngram)
        has = grams.counts > 0
        keys = np.zeros((len(has), bands), dtype=np.int64)
        if has.any():
            keys[has] = band_keys(grams, multipliers, bands, rows).T.view(np.int64)
        offsets = pa.array(np.arange(len(has) + 1, dtype=np.int32) * bands)
        key_lists = pa.ListArray.from_arrays(offsets, pa.array(keys.ravel()), mask=pa.array(~has))
        yield pa.RecordBatch.from_arrays(
            [
                batch.column(ROW),
                pa.array(hashes[:, 0]),
                pa.array(hashes[:, 1]),
                pa.array(units.counts >= max(min_length, 1) if exact else np.zeros(len(texts), dtype=bool)),
                key_lists,
            ],
            names=[ROW, "h1", "h2", "long_enough", "keys"],
        )


def _similar(batches, char_mode, ngram, threshold):
    """(u, v, text of u, text of v) batches -> the pairs whose n-gram sets have Jaccard >= threshold."""
    import datasets

    datasets.disable_progress_bars()
    for batch in batches:
        k = batch.num_rows
        texts = pa.concat_arrays([batch.column("tu"), batch.column("tv")])
        table = Dataset(datasets.table.InMemoryTable(pa.table({TEXT: texts}))).with_format("arrow")
        pairs = np.stack((np.arange(k), np.arange(k) + k), axis=1)
        similar = pair_jaccard(table, TEXT, pairs, ngram, char_mode, num_proc=1) >= threshold
        yield batch.select(["u", "v"]).filter(pa.array(similar))


# -- the rows, for Spark ------------------------------------------------------------------------------------------


def _write_rows(ds: Dataset, column: str, path: Path, spark):
    """`column` with row numbers as Parquet, split into row groups that spread over the cores."""
    if column not in ds.column_names:
        raise KeyError(f"column {column!r} not in the dataset (columns: {', '.join(ds.column_names)})")
    table = ds.select_columns([column]).with_format("arrow")
    schema = pa.schema([(ROW, pa.int64()), (TEXT, pa.large_string())])
    with pq.ParquetWriter(str(path), schema) as writer:
        for start in range(0, len(ds), PARQUET_ROWS):
            texts = table[start : start + PARQUET_ROWS].column(column).cast(pa.large_string())
            rows = pa.array(np.arange(start, start + len(texts), dtype=np.int64))
            writer.write_table(pa.table([rows, texts], schema=schema), row_group_size=PARQUET_ROWS)
    cores = spark.sparkContext.defaultParallelism
    split = max(1 << 20, path.stat().st_size // (2 * cores))  # at least two tasks per core
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(split))
    return spark.read.parquet(str(path))
