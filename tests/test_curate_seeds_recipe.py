"""The seed-curation recipe end to end through the real vLLM engine with the tiny random model, and its hand-off
to the Cosmopedia recipe (the curated `topic` reaches the prompts)."""

import json

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset
from huggingface_hub import DatasetCard

from conftest import COSMOPEDIA_SEEDS, REPO, read_jsonl, recipe_error, run_recipe, shipped_data

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "curate_seeds" / "smoke.yaml")
COSMO_SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
SEEDS = read_jsonl(COSMOPEDIA_SEEDS)


def rows(output_dir):
    return load_dataset(str(output_dir), split="train")


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("curate") / "out"
    run_recipe("curate_seeds", "--config", SMOKE, "--output_dir", out)
    return out


def test_output_folder_holds_the_kept_seeds_with_their_cluster(smoke_output):
    assert sorted(p.name for p in smoke_output.iterdir() if not p.name.startswith(".")) == [
        "README.md",
        "config.yaml",
        "data",
        "images",
        "run.json",
        "stats.json",
    ]
    ds = rows(smoke_output)
    assert ds.column_names == ["text", "source", "topic", "cluster_id", "educational_score"]
    assert set(ds["text"]) <= {s["text"] for s in SEEDS}
    assert all(score >= 3 for score in ds["educational_score"])  # the default threshold

    clusters = json.loads((smoke_output / "stats.json").read_text())["clusters"]
    assert [c["cluster"] for c in clusters] == [0, 1, 2, 3] and sum(c["seeds"] for c in clusters) == len(SEEDS)
    by_id = {c["cluster"]: c for c in clusters}
    for row in ds:
        cluster = by_id[row["cluster_id"]]
        assert cluster["kept"] and (row["topic"], row["educational_score"]) == (
            cluster["topic"],
            cluster["educational_score"],
        )
    assert len(ds) == sum(c["seeds"] for c in clusters if c["kept"])


def test_funnel_counts_the_seeds_of_dropped_clusters(smoke_output):
    stats = json.loads((smoke_output / "stats.json").read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    assert list(stages) == ["input", "cluster", "label_clusters", "educational_value"]
    assert stages["input"]["rows_out"] == stages["cluster"]["rows_in"] == stages["educational_value"]["rows_in"]
    assert stages["label_clusters"]["rows_in"] == 4  # one labelling prompt per cluster
    assert stages["cluster"]["details"]["clusters"] == 4 and stages["cluster"]["details"]["method"] == "kmeans"
    low = sum(c["seeds"] for c in stats["clusters"] if c["educational_score"] < 3)
    assert stages["educational_value"]["dropped"].get("low_educational_value", 0) == low
    final = stages["educational_value"]
    assert final["rows_in"] - final["rows_out"] == sum(final["dropped"].values())


def test_card_lists_the_clusters_and_shows_their_picture(smoke_output):
    card = DatasetCard.load(smoke_output / "README.md")
    assert "curate_seeds" in card.data.tags and "synthetic" in card.data.tags
    table = card.text.split("## Clusters", 1)[1].split("## Columns", 1)[0]
    clusters = json.loads((smoke_output / "stats.json").read_text())["clusters"]
    for c in clusters:
        verdict = "yes" if c["kept"] else "no (low_educational_value)"
        assert f"| {c['cluster']} | {c['topic']} | {c['seeds']} | {c['educational_score']} | {verdict} |" in table
    assert "![The seed clusters](images/clusters.png)" in table
    assert (smoke_output / "images" / "clusters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = yaml.safe_load((smoke_output / "config.yaml").read_text())
    assert config["num_clusters"] == 4 and config["embedding_model"] == "all-minilm-l6-v2"


def test_same_seed_gives_the_same_seeds_and_topics(smoke_output, tmp_path):
    run_recipe("curate_seeds", "--config", SMOKE, "--output_dir", tmp_path / "again")
    again = rows(tmp_path / "again").to_list()
    assert again == rows(smoke_output).to_list()


def test_curated_topics_reach_the_cosmopedia_prompts(tmp_path):
    curated = tmp_path / "curated"
    run_recipe("curate_seeds", "--config", SMOKE, "--output_dir", curated, "--min_educational_score", 1)
    seeds = rows(curated)
    assert len(seeds) == len(SEEDS)  # every label parsed, and the lowest threshold keeps every cluster
    topic_of = dict(zip(seeds["text"], seeds["topic"]))
    assert all(topic_of[s["text"]] != s["topic"] for s in SEEDS[:8])  # the curated topics replaced the input's

    run_recipe(
        "cosmopedia", "--config", COSMO_SMOKE, "--output_dir", tmp_path / "cosmo", "--dataset", curated / "data"
    )
    prompts = rows(tmp_path / "cosmo")
    assert len(prompts) > 0
    for row in prompts:
        topic = next(t for text, t in topic_of.items() if text.startswith(row["seed_data"][:60]))
        assert f"a web page about {topic}:" in row["prompt"]


def test_unparseable_labels_drop_their_seeds_with_a_reason(tmp_path):
    out = tmp_path / "free"
    # without the structured-output pattern the tiny model's answers are noise: nothing parses, nothing crashes
    run_recipe("curate_seeds", "--config", SMOKE, "--output_dir", out, "--structured_labels", "false")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stages"][-1]["dropped"] == {"label_unparseable": len(SEEDS)}
    assert all(c["topic"] is None and not c["kept"] for c in stats["clusters"])
    assert pq.read_table(out / "data").num_rows == 0  # an empty dataset, written all the same
    assert "unparseable answer" in (out / "README.md").read_text()


def test_extra_inputs_and_the_length_filter(tmp_path):
    out = tmp_path / "mixed"
    alpaca_path = str(shipped_data("alpaca_5000.json"))
    extra = f"[{{path: {alpaca_path}, column: output}}]"
    run_recipe(
        "curate_seeds",
        *("--config", SMOKE, "--output_dir", out, "--num_samples", 10, "--extra_datasets", extra),
        *("--min_text_chars", 300, "--min_educational_score", 1, "--examples_per_cluster", 2),
    )
    stats = json.loads((out / "stats.json").read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    assert stages["extra_datasets"]["rows_in"] == 10 and stages["extra_datasets"]["rows_out"] == 20
    alpaca = json.loads(shipped_data("alpaca_5000.json").read_text())[:10]
    short = sum(len(r["output"].strip()) < 300 for r in alpaca) + sum(len(s["text"]) < 300 for s in SEEDS[:10])
    assert stages["length"]["dropped"] == {"too_short": short}
    ds = rows(out)
    assert ds.column_names == ["text", "source", "topic", "cluster_id", "educational_score"]
    assert set(ds["source"]) == {"dataset", alpaca_path}
    final = stages["educational_value"]
    assert final["rows_in"] == 20 - short and "low_educational_value" not in final["dropped"]  # threshold 1
    assert len(ds) == final["rows_out"] > 0


def test_bad_settings_exit_2_with_one_line(tmp_path, capsys):
    base = ["--config", SMOKE, "--output_dir", tmp_path / "o"]
    assert "has no column 'body'" in recipe_error(capsys, "curate_seeds", *base, "--text_column", "body")
    assert "num_clusters (41) is larger than the 40 rows" in recipe_error(
        capsys, "curate_seeds", *base, "--num_clusters", 41
    )
    assert "raise fit_sample_size" in recipe_error(capsys, "curate_seeds", *base, "--fit_sample_size", 3)
    assert "between 1 and 5" in recipe_error(capsys, "curate_seeds", *base, "--min_educational_score", 7)
    assert "label_template 'nope.jinja'" in recipe_error(
        capsys, "curate_seeds", *base, "--label_template", "nope.jinja"
    )
    assert "must be one of kmeans, hdbscan" in recipe_error(
        capsys, "curate_seeds", *base, "--cluster_method", "dbscan"
    )
    assert "extra_datasets[0] must be a mapping" in recipe_error(
        capsys, "curate_seeds", *base, "--extra_datasets", "[a.jsonl]"
    )
