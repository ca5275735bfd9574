"""The demo config with the real SmolLM2-135M-Instruct (make test-slow): ~2,000 real texts, 12 named clusters."""

import json
import re

import pytest
from datasets import load_dataset

from conftest import REPO, run_recipe

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
STOPWORDS = {"the", "and", "for", "with", "from", "into", "that", "this", "their", "about"}


def test_demo_names_its_clusters_after_what_they_hold(tmp_path):
    out = tmp_path / "demo"
    run_recipe("curate_seeds", "--config", REPO / "configs/curate_seeds/demo.yaml", "--output_dir", out)
    stats = json.loads((out / "stats.json").read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    clusters = stats["clusters"]
    assert len(clusters) == 12 and sum(c["seeds"] for c in clusters) == stages["cluster"]["rows_out"] > 1500

    named = [c for c in clusters if c["topic"]]
    assert len(named) >= 8  # a real model answers in the constrained shape with a usable topic
    assert len({c["topic"].lower() for c in named}) >= 6
    dropped = stages["educational_value"]["dropped"]
    assert dropped.get("label_unparseable", 0) == sum(c["seeds"] for c in clusters if not c["topic"])

    # the demo keeps every labelled cluster (min_educational_score: 1), so each cluster's seeds are in the output
    ds = load_dataset(str(out), split="train")
    assert len(ds) == sum(c["seeds"] for c in named)
    texts = {}
    for cluster, text in zip(ds["cluster_id"], ds["text"]):
        texts[cluster] = texts.get(cluster, "") + " " + text.lower()
    related = 0
    for c in named:
        words = {w for w in re.findall(r"[a-z]{4,}", c["topic"].lower()) if w not in STOPWORDS}
        related += any(re.search(rf"\b{w}", texts[c["cluster"]]) for w in words)
    assert related >= 0.75 * len(named), f"{related} of {len(named)} topics use a word of their cluster's seeds"
