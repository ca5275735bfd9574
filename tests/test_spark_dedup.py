"""MinHash dedup on Spark (a local[*] session) keeps exactly the rows the in-memory stage keeps."""

import random

import numpy as np
import pytest
from datasets import Dataset
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components
from test_dedup import ODD_TEXTS, answers, edit, planted_corpus  # noqa: F401 (answers: a fixture)
from test_dedup_recipe import corpus, read_output  # noqa: F401 (corpus: a fixture)

from builders.dedup.minhash import exact_dedup, jaccard, minhash_dedup
from builders.dedup.spark import connected_components, spark_dedup, spark_session
from conftest import read_jsonl, run_recipe


def in_memory(ds: Dataset, exact: bool = True, **settings) -> tuple[np.ndarray, np.ndarray, dict]:
    """For every row the first row of its cluster, as `Run.dedup` computes them: exact, then MinHash."""
    exact_first = np.arange(len(ds))
    if exact:
        ds, _, removed = exact_dedup(ds, "text", min_length=settings["ngram"], return_removed=True)
        exact_first[removed["i"]] = removed["duplicate_of"]
    _, stats, removed = minhash_dedup(ds, "text", return_removed=True, **settings)
    near_first = np.arange(len(ds))
    near_first[np.searchsorted(ds["i"], removed["i"])] = removed["duplicate_of"]
    return exact_first, near_first, stats


def chains(texts: list[str], links: int, rate: float, rng: random.Random) -> list[str]:
    """Each text, then `links` copies, each a small edit of the one before: far ends fall below the threshold."""
    out = []
    for text in texts:
        out.append(text)
        for _ in range(links):
            out.append(edit(out[-1], rate, rng))
    return out


@pytest.mark.slow  # about a minute here: two Spark dedups and their in-memory twins on 1,000 rows
def test_spark_keeps_exactly_the_rows_the_in_memory_stage_keeps(answers):  # noqa: F811
    rng = random.Random(7)
    texts = [row["text"] for row in planted_corpus(answers[:300], seed=5)]
    long = [a for a in answers[600:] if len(a.split()) >= 150]
    chained = chains(long[:12], links=6, rate=0.015, rng=rng)
    texts += chained
    texts += [edit(t, 0.1, rng) for t in answers[600:640]]  # near copies around the threshold
    texts += ODD_TEXTS + ["Yes.", "Yes.", "", "Yes"]
    rng.shuffle(texts)
    ds = Dataset.from_dict({"text": texts, "i": list(range(len(texts)))})
    settings = {"threshold": 0.7, "ngram": 5, "num_perm": 128, "seed": 42, "tokenizer": "auto"}

    exact_first, near_first, stats = in_memory(ds, **settings)
    spark = spark_dedup(ds, "text", min_length=5, **settings)
    assert (spark.exact_first == exact_first).all()
    assert (spark.near_first == near_first).all()
    assert spark.near_stats == stats
    # the corpus exercises every path: exact and near removals, verification that rejects candidates, chains
    # whose far ends are not similar, and rows too short to shingle
    assert (exact_first != np.arange(len(ds))).sum() > 100 and stats["removed"] > 50
    assert stats["candidate_pairs"] > stats["duplicate_pairs"] and stats["skipped_short"] >= 8
    assert jaccard(chained[0], chained[6]) < 0.7 < min(jaccard(a, b) for a, b in zip(chained[:6], chained[1:7]))

    # character n-grams, 3-grams at 0.5, no exact pass: still the same rows
    settings = {"threshold": 0.5, "ngram": 3, "num_perm": 64, "seed": 1, "tokenizer": "char"}
    small = ds.select(range(300))
    _, near_first, stats = in_memory(small, exact=False, **settings)
    spark = spark_dedup(small, "text", exact=False, **settings)
    assert (spark.exact_first == np.arange(300)).all() and (spark.near_first == near_first).all()
    assert spark.near_stats == stats and stats["removed"] > 0


def test_large_star_small_star_finds_the_components_scipy_finds():
    rng = random.Random(0)
    n = 400
    labels = list(range(n))
    rng.shuffle(labels)  # paths, stars and random edges between shuffled node numbers
    edges = [(labels[i], labels[i + 1]) for i in range(0, 60)]  # one long path: several rounds
    edges += [(labels[150], labels[i]) for i in range(151, 190)]
    edges += [(labels[rng.randrange(200, n)], labels[rng.randrange(200, n)]) for _ in range(150)]
    spark = spark_session()
    star = connected_components(spark.createDataFrame(edges, "u bigint, v bigint")).toPandas()

    pairs = np.array(edges)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = scipy_components(graph, directed=False)
    smallest = {c: min(np.flatnonzero(component == c)) for c in set(component)}
    expected = {node: smallest[component[node]] for node in set(pairs.ravel()) if smallest[component[node]] != node}
    assert dict(zip(star["a"], star["b"])) == expected
    assert len(star) == len(expected)  # one edge per node: stars


def test_dedup_recipe_on_spark_writes_the_same_rows(corpus, tmp_path):  # noqa: F811
    rows, _, _ = corpus
    args = ["--dataset", rows, "--column", "text", "--threshold", "0.8", "--keep_rejected", "true"]
    run_recipe("dedup", *args, "--output_dir", tmp_path / "memory")
    run_recipe("dedup", *args, "--engine", "spark", "--output_dir", tmp_path / "spark")
    memory, spark = read_output(tmp_path / "memory"), read_output(tmp_path / "spark")
    assert spark.to_list() == memory.to_list()
    assert len(memory) < len(read_jsonl(rows))
    rejected = [read_output(tmp_path / d, "rejected").to_list() for d in ("memory", "spark")]
    assert rejected[0] == rejected[1] and {r["reason"] for r in rejected[0]} == {"exact_duplicate", "near_duplicate"}
    assert not list((tmp_path / "spark" / ".checkpoints").glob("spark-dedup-*"))
