import json

import pytest
from datasets import load_dataset

from builders.methods.instructions_from_documents import parse_list
from conftest import REPO, run_recipe

SMOKE = REPO / "configs" / "instructions_from_documents" / "smoke.yaml"


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Here are 3 requests a student might send:\n\n1. Summarise the role of mitochondria.\n"
            "2. Why do mitochondria have\n   their own DNA?\n3) Compare cristae with the outer membrane.\n\nHope this helps!",
            [
                "Summarise the role of mitochondria.",
                "Why do mitochondria have their own DNA?",
                "Compare cristae with the outer membrane.",
            ],
        ),
        (
            "- What is ATP?\n- **Explain** aerobic respiration step by step.\n",
            ["What is ATP?", "Explain aerobic respiration step by step."],
        ),
        (
            'Query 1: "List three facts about rivers."\nQuery 2: Describe a delta.',
            ["List three facts about rivers.", "Describe a delta."],
        ),
        ("1. Describe how a river forms a delta and why the", ["Describe how a river forms a delta and why the"]),
        ("I cannot help with that.", []),
        ("", []),
    ],
)
def test_parse_list_on_realistic_outputs(text, expected):
    assert parse_list(text) == expected


@pytest.mark.vllm
def test_requests_are_split_filtered_deduplicated_and_answered(tmp_path):
    out = tmp_path / "ifd"
    run_recipe("instructions_from_documents", "--config", SMOKE, "--output_dir", out)
    ds = load_dataset(str(out), split="train")
    assert ds.column_names == ["context", "instruction", "response"]
    stats = {s["name"]: s for s in json.loads((out / "stats.json").read_text())["stages"]}
    assert stats["split-lists"]["rows_out"] == stats["filter-requests"]["rows_in"]
    assert stats["split-lists"]["rows_out"] >= stats["split-lists"]["rows_in"]  # a list gives one row per request
    assert stats["answers"]["rows_in"] == stats["dedup-requests"]["rows_out"]
    assert len(ds) >= 1 and all(len(i.split()) >= 4 for i in ds["instruction"])
    contexts = {
        json.loads(line)["text"] for line in (REPO / "configs/cosmopedia/seeds.jsonl").read_text().splitlines()
    }
    assert set(ds["context"]) <= contexts


@pytest.mark.vllm
def test_near_duplicate_requests_are_dropped(tmp_path):
    from datasets import Dataset

    from builders.data import ROW_ID
    from builders.dedup.minhash import minhash_dedup

    requests = [
        "Explain how mitochondria produce energy for the cell.",
        "Explain how mitochondria produce energy for the cells.",
        "List three uses of a suspension bridge.",
    ]
    ds = Dataset.from_dict({"instruction": requests, ROW_ID: [0, 1, 2]})
    kept, stats = minhash_dedup(ds, column="instruction", ngram=3, threshold=0.7)
    assert kept["instruction"] == [requests[0], requests[2]] and stats["removed"] == 1
