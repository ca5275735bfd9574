"""The dedup recipe on real text, and a recipe that generates with vLLM and then dedups in the same process."""

import json
import multiprocessing
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset
from huggingface_hub import DatasetCard

from builders.dedup.minhash import jaccard
from conftest import COSMOPEDIA_SEEDS, REPO, read_jsonl, run_recipe, run_recipe_cli, shipped_data, write_jsonl


def read_output(folder, part: str = "data") -> Dataset:
    """An output folder's rows, read from its Parquet files (`load_dataset` on a folder caches by folder name)."""
    return Dataset(pa.concat_tables(pq.read_table(f) for f in sorted((folder / part).glob("*.parquet"))))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Real Alpaca answers with planted exact and near copies (after the original), short rows, and a test-set leak."""
    records = json.loads(shipped_data("alpaca_5000.json").read_text())
    answers = list(dict.fromkeys(r["output"] for r in records if len(r["output"].split()) >= 40))[:300]
    rows = [{"id": i, "text": t} for i, t in enumerate(answers)]
    long = next(i for i, t in enumerate(answers) if len(t.split()) >= 150 and " the " in t)
    planted = {"exact": answers[10], "recased": answers[20].upper(), "near": answers[long].replace(" the ", " a ", 1)}
    assert jaccard(answers[long], planted["near"]) >= 0.9
    for kind, text in planted.items():
        rows.append({"id": kind, "text": text})
    rows += [{"id": "short-1", "text": "Yes."}, {"id": "short-2", "text": "Yes."}]
    leak = f"{records[4000]['instruction']} {records[4000]['input']}".strip()
    rows.append({"id": "leak", "text": "Exercise: " + leak})
    folder = tmp_path_factory.mktemp("dedup")
    write_jsonl(folder / "quiz.jsonl", [{"question": leak, "answer": records[4000]["output"]}])
    rows = write_jsonl(folder / "rows.jsonl", [{**r, "id": str(r["id"])} for r in rows])
    return rows, folder / "quiz.jsonl", str(long)


@pytest.fixture(scope="module")
def dedup_output(corpus, tmp_path_factory):
    rows, quiz, _ = corpus
    folder = tmp_path_factory.mktemp("dedup-out")
    config = {
        "dataset": str(rows),
        "column": "text",
        "decontaminate": [{"path": str(quiz), "columns": ["question"]}],
        "keep_rejected": True,
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    run_recipe("dedup", "--config", folder / "config.yaml", "--output_dir", folder / "out", "--threshold", "0.8")
    return folder / "out"


def test_dedup_recipe_writes_a_hub_ready_folder(dedup_output, corpus):
    assert sorted(p.name for p in dedup_output.iterdir() if not p.name.startswith(".")) == [
        "README.md",
        "config.yaml",
        "data",
        "images",
        "rejected",
        "run.json",
        "stats.json",
    ]
    ds = read_output(dedup_output)
    assert ds.column_names == ["id", "text"]
    ids = ds["id"]
    assert not {"exact", "recased", "near", "leak"} & set(ids)
    assert {"10", "20", corpus[2], "short-1", "short-2"} <= set(ids)  # the first of each cluster, short rows
    assert len(ids) == 300 + 2

    stats = json.loads((dedup_output / "stats.json").read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    assert list(stages) == ["input", "decontaminate", "dedup"]
    assert stages["decontaminate"]["dropped"] == {"contaminated": 1}
    assert stages["decontaminate"]["details"]["removed_by_quiz"] == 1
    assert stages["dedup"]["dropped"] == {"exact_duplicate": 2, "near_duplicate": 1}
    assert stages["dedup"]["details"]["skipped_short"] == 2
    for stage in stats["stages"]:
        assert stage["rows_in"] - stage["rows_out"] == sum(stage["dropped"].values())

    card = DatasetCard.load(dedup_output / "README.md")
    assert "removed_by_quiz = 1" in card.text and "| dedup | 304 | 302 |" not in card.text
    assert "exact_duplicate: 2, near_duplicate: 1" in card.text
    assert "No model was run" in card.text and "synthetic" not in card.data.tags
    assert "python recipes/dedup.py --config config.yaml" in card.text
    rejected = read_output(dedup_output, "rejected")
    assert sorted(rejected["reason"]) == ["contaminated", "exact_duplicate", "exact_duplicate", "near_duplicate"]


def test_bad_column_is_a_one_line_error(corpus, tmp_path):
    rows, _, _ = corpus
    proc = run_recipe_cli("dedup", "--dataset", rows, "--column", "body", "--output_dir", tmp_path / "o")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "has no column 'body'" in proc.stderr.strip().splitlines()[-1]
    proc = run_recipe_cli("dedup", "--dataset", rows, "--threshold", "2", "--output_dir", tmp_path / "o")
    assert proc.returncode == 2 and "threshold" in proc.stderr


@pytest.mark.vllm
def test_generation_then_dedup_in_one_process(tmp_path):
    """Cosmopedia's smoke config with planted duplicate seeds: greedy decoding writes identical texts for
    identical prompts, and the dedup stage of the same process removes them, keeping the first.

    Greedy decoding of the random model collapses to one repeated token (an empty text); a strong repetition
    penalty keeps its output varied, and still deterministic.
    """
    seeds = read_jsonl(COSMOPEDIA_SEEDS)[:6]
    write_jsonl(tmp_path / "seeds.jsonl", seeds + [seeds[1], seeds[4]])  # rows 6 and 7 repeat rows 1 and 4
    multiprocessing.set_start_method("spawn", force=True)  # what vLLM needs; dedup must leave it alone
    run_recipe(
        "cosmopedia",
        *("--config", REPO / "configs" / "cosmopedia" / "smoke.yaml", "--output_dir", tmp_path / "out"),
        *("--dataset", tmp_path / "seeds.jsonl", "--formats", "textbook_academic", "--audiences", "researchers"),
        *("--temperature", "0", "--repetition_penalty", "50", "--quality_filters", "false", "--batch_size", "8"),
    )
    assert multiprocessing.get_start_method() == "spawn" and "text_dedup.minhash" not in sys.modules
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    dedup = next(s for s in stats["stages"] if s["name"] == "dedup")
    assert dedup["rows_in"] == 8 and sum(dedup["dropped"].values()) == 2
    ds = read_output(tmp_path / "out")
    assert len(ds) == 6 and len(set(ds["text"])) == 6
    extracts = [s["text"][:40] for s in seeds]
    assert [next(i for i, e in enumerate(extracts) if d.startswith(e)) for d in ds["seed_data"]] == list(range(6))
