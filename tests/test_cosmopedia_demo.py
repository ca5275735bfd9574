"""The demo config with the real SmolLM2-135M-Instruct (make test-slow)."""

import json

import pytest
from datasets import load_dataset

from builders.filters.language import detect_language
from conftest import REPO, run_recipe

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def test_demo_config_writes_real_english_text(tmp_path):
    out = tmp_path / "demo"
    run_recipe(
        "cosmopedia", "--config", REPO / "configs/cosmopedia/demo.yaml", "--output_dir", out, "--num_samples", 12
    )
    ds = load_dataset(str(out), split="train")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stages"][0]["rows_in"] == 12
    assert len(ds) >= 6  # a real model writes texts long enough to pass the length filter
    assert all(n >= 100 for n in ds["text_token_length"])
    english = sum(detect_language(t) == "en" for t in ds["text"])
    assert english >= len(ds) - 1
    assert len({t[:80] for t in ds["text"]}) == len(ds)
