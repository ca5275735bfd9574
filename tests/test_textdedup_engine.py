"""`dedup_engine: text-dedup`: the real text-dedup package decides, in a child process, and its decisions come back
as the dedup stage (funnel, rejected rows with reasons, card) of the dedup recipe and of a generation recipe."""

import json
import multiprocessing
import subprocess
import sys

import pytest
from datasets import Dataset, load_from_disk
from huggingface_hub import DatasetCard

from conftest import (
    COSMOPEDIA_SEEDS,
    REPO,
    assert_funnel_adds_up,
    read_jsonl,
    read_output,
    recipe_error,
    run_recipe,
    shipped_data,
    stages_of,
    stats_of,
    write_jsonl,
)

PLANTED = {"exact": 10, "recased": 20, "near": 13}  # planted copy -> the answer it copies


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """200 real Alpaca answers, then an exact, a re-cased and a near copy of three of them, and two short rows."""
    records = json.loads(shipped_data("alpaca_5000.json").read_text())
    answers = list(dict.fromkeys(r["output"] for r in records if len(r["output"].split()) >= 40))[:200]
    rows = [{"id": str(i), "text": t} for i, t in enumerate(answers)]
    assert len(answers[PLANTED["near"]].split()) >= 150
    copies = {
        "exact": answers[PLANTED["exact"]],
        "recased": answers[PLANTED["recased"]].upper(),
        "near": answers[PLANTED["near"]].replace(" the ", " a ", 1),
    }
    rows += [{"id": kind, "text": text} for kind, text in copies.items()]
    rows += [{"id": "short-1", "text": "Yes."}, {"id": "short-2", "text": "Yes."}]
    return write_jsonl(tmp_path_factory.mktemp("text-dedup") / "rows.jsonl", rows), [r["id"] for r in rows]


def run_text_dedup(rows, out, *args):
    run_recipe(
        "dedup",
        *("--dataset", rows, "--column", "text", "--engine", "text-dedup", "--threshold", "0.8"),
        *("--keep_rejected", "true", "--output_dir", out, *args),
    )


def test_text_dedup_engine_in_the_dedup_recipe(corpus, tmp_path):
    rows, ids = corpus
    multiprocessing.set_start_method("spawn", force=True)  # what vLLM needs; text-dedup's `fork` stays in its child
    run_text_dedup(rows, tmp_path / "out")
    assert multiprocessing.get_start_method() == "spawn" and "text_dedup.minhash" not in sys.modules

    assert_funnel_adds_up(stats_of(tmp_path / "out"))
    dedup = stages_of(tmp_path / "out")["dedup"]
    # raw-text exact pass: the exact copy and the second "Yes."; MinHash: the re-cased and the near copy; the
    # first "Yes." has fewer than 5 words, and text-dedup drops it
    assert dedup["dropped"] == {"exact_duplicate": 2, "near_duplicate": 2, "too_short": 1}
    assert dedup["details"]["engine"] == "text-dedup 0.4.0" and dedup["details"]["min_length"] == 5
    assert "arbitrary member" in dedup["details"]["note"]

    _, kept = read_output(tmp_path / "out")
    kept_ids = [r["id"] for r in kept]
    assert len(kept_ids) == 200 and not {"exact", "short-1", "short-2"} & set(kept_ids)
    _, rejected = read_output(tmp_path / "out", "rejected")
    rejected = [(r["reason"], json.loads(r["row"])) for r in rejected]
    assert sorted(reason for reason, _ in rejected) == [
        *["exact_duplicate"] * 2,
        *["near_duplicate"] * 2,
        "too_short",
    ]
    duplicates = {row["id"]: ids[row["duplicate_of"]] for reason, row in rejected if reason != "too_short"}
    assert duplicates.pop("short-2") == "short-1"  # the exact pass kept the first "Yes.", MinHash then dropped it
    for removed, survivor in duplicates.items():  # each duplicate names the other member of its pair, kept
        assert survivor in kept_ids
        assert any({removed, survivor} == {copy, str(original)} for copy, original in PLANTED.items())
    assert next(row for reason, row in rejected if reason == "too_short")["id"] == "short-1"
    near = {row["id"] for reason, row in rejected if reason == "near_duplicate"}
    assert near == {"13", "20"}  # text-dedup kept the later copies (its union-find roots), not the first rows

    card = DatasetCard.load(tmp_path / "out" / "README.md").text
    assert "engine = text-dedup 0.4.0" in card and "arbitrary member of each cluster" in card


def test_text_dedup_engine_keeps_what_the_text_dedup_cli_keeps(corpus, tmp_path):
    """Exact pass off, the same parameters: the rows the engine kept are those `python -m text_dedup.minhash` keeps."""
    rows, _ = corpus
    run_text_dedup(rows, tmp_path / "out", "--exact", "false")
    Dataset.from_list(read_jsonl(rows)).save_to_disk(str(tmp_path / "input"))
    cli = [sys.executable, "-m", "text_dedup.minhash", "--path", tmp_path / "input", "--local"]
    cli += ["--output", tmp_path / "cli", "--column", "text", "--threshold", "0.8", "--num_perm", "128"]
    subprocess.run([str(a) for a in cli], check=True, capture_output=True, cwd=tmp_path)
    _, kept = read_output(tmp_path / "out")
    assert [r["id"] for r in kept] == load_from_disk(str(tmp_path / "cli"))["id"]
    assert stages_of(tmp_path / "out")["dedup"]["dropped"] == {"near_duplicate": 3, "too_short": 2}


def test_text_dedup_has_no_character_ngrams(corpus, capsys, tmp_path):
    rows, _ = corpus
    error = recipe_error(capsys, "dedup", "--dataset", rows, "--engine", "text-dedup", "--tokenizer", "char")
    assert "engine 'text-dedup' has word n-grams only" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.vllm
def test_generation_recipe_with_the_text_dedup_engine(tmp_path):
    """Cosmopedia's smoke config with two seeds repeated: greedy decoding writes the same text for the same
    prompt, and text-dedup, in its child process, removes the repeats; vLLM's process keeps `spawn`."""
    seeds = read_jsonl(COSMOPEDIA_SEEDS)[:6]
    write_jsonl(tmp_path / "seeds.jsonl", seeds + [seeds[1], seeds[4]])
    multiprocessing.set_start_method("spawn", force=True)
    run_recipe(
        "cosmopedia",
        *("--config", REPO / "configs" / "cosmopedia" / "smoke.yaml", "--output_dir", tmp_path / "out"),
        *("--dataset", tmp_path / "seeds.jsonl", "--formats", "textbook_academic", "--audiences", "researchers"),
        *("--temperature", "0", "--repetition_penalty", "50", "--quality_filters", "false", "--batch_size", "8"),
        *("--dedup_engine", "text-dedup", "--keep_rejected", "true"),
    )
    assert multiprocessing.get_start_method() == "spawn" and "text_dedup.minhash" not in sys.modules
    assert_funnel_adds_up(stats_of(tmp_path / "out"))
    dedup = stages_of(tmp_path / "out")["dedup"]
    assert dedup["rows_in"] == 8 and dedup["dropped"] == {"exact_duplicate": 2}
    assert dedup["details"]["engine"] == "text-dedup 0.4.0"
    _, kept = read_output(tmp_path / "out")
    _, rejected = read_output(tmp_path / "out", "rejected")
    assert len(kept) == 6 and len({r["text"] for r in kept}) == 6
    repeats = [(r["reason"], json.loads(r["row"])) for r in rejected if r["stage"] == "dedup"]
    assert [(reason, row["duplicate_of"]) for reason, row in repeats] == [
        ("exact_duplicate", 1),
        ("exact_duplicate", 4),
    ]
    assert all(row["text"] == kept[row["duplicate_of"]]["text"] for _, row in repeats)
