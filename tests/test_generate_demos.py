"""The demo configs of the generic recipes with the real SmolLM2-135M-Instruct (make test-slow)."""

import json

import pytest
from datasets import load_dataset

from builders.filters.language import detect_language
from conftest import REPO, run_recipe

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def funnel(out):
    return {s["name"]: s for s in json.loads((out / "stats.json").read_text())["stages"]}


def test_generate_demo_chains_a_question_and_its_answer(tmp_path):
    out = tmp_path / "generate"
    run_recipe("generate", "--config", REPO / "configs/generate/demo.yaml", "--output_dir", out, "--num_samples", 6)
    ds = load_dataset(str(out), split="train")
    stages = funnel(out)
    assert stages["input"]["rows_in"] == 6
    assert len(ds) >= 3, stages  # a real model writes questions and answers that pass the empty/length checks
    assert {"text", "question", "answer"} <= set(ds.column_names)
    # the second step saw the first step's column: each answer was written to its own row's question
    assert all(q.strip() and a.strip() for q, a in zip(ds["question"], ds["answer"]))
    assert sum("?" in q for q in ds["question"]) >= len(ds) // 2
    assert sum(detect_language(a) == "en" for a in ds["answer"]) >= len(ds) - 1


def test_instructions_from_documents_demo_writes_requests_about_each_document(tmp_path):
    out = tmp_path / "ifd"
    config = REPO / "configs/instructions_from_documents/demo.yaml"
    run_recipe("instructions_from_documents", "--config", config, "--output_dir", out, "--num_samples", 4)
    ds = load_dataset(str(out), split="train")
    stages = funnel(out)
    assert stages["input"]["rows_in"] == 4
    assert ds.column_names == ["context", "instruction", "response"]
    assert len(ds) >= 4, stages  # several requests per document survive the list parser and filters
    assert len(set(ds["context"])) >= 2
    assert len(set(ds["instruction"])) == len(ds)  # duplicates are dropped
    assert all(len(i.split()) >= 3 for i in ds["instruction"])
    assert all(r.strip() for r in ds["response"])
