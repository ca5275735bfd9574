"""recipes/compare.py and `compare_to`: how close a dataset is to a reference, measured with the project's own
`evaluate` modules, on the shipped Alpaca records."""

import json
import random

import pytest
from fake_hub import TOKEN, FakeHub, online

from conftest import REPO, read_output, recipe_error, run_recipe, shipped_data, stats_of, write_jsonl

ALPACA = [r for r in json.loads(shipped_data("alpaca_5000.json").read_text())[:300] if r["output"].split()]


def perturbed(rows: list[dict]) -> list[dict]:
    """Each answer cut to its first half, with one word in four replaced by a word of another answer."""
    rng = random.Random(0)
    vocabulary = [w for r in ALPACA[::-1] for w in r["output"].split()]
    out = []
    for r in rows:
        words = r["output"].split()[: max(1, len(r["output"].split()) // 2)]
        words = [rng.choice(vocabulary) if rng.random() < 0.25 else w for w in words]
        out.append({**r, "output": " ".join(words)})
    return out


def compare(tmp_path, ours, name, *extra):
    reference = write_jsonl(tmp_path / "reference.jsonl", ALPACA)
    dataset = write_jsonl(tmp_path / f"{name}.jsonl", ours)
    out = tmp_path / name
    args = ("--dataset", dataset, "--reference", reference, "--column", "output", "--key", "instruction")
    run_recipe("compare", *args, "--num_clusters", 8, "--output_dir", out, *extra)
    return out, stats_of(out)["comparison"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    return {name: compare(tmp, rows, name) for name, rows in (("same", ALPACA), ("perturbed", perturbed(ALPACA)))}


def test_a_slice_compared_with_itself_is_identical_on_every_figure(reports):
    _, same = reports["same"]
    assert same["schema"]["same"] and same["rows"] == {"ours": len(ALPACA), "reference": len(ALPACA)}
    assert same["lengths"]["ks_statistic"] == 0 and same["lengths"]["wasserstein_words"] == 0
    assert same["vocabulary"]["jaccard"] == 1.0
    assert same["distinct"]["ours"] == same["distinct"]["reference"]
    assert same["aligned"]["pairs"] == len(ALPACA) and same["aligned"]["rougeL_mean"] == pytest.approx(1.0)
    assert same["topics"]["coverage"] == 1.0 and same["topics"]["jensen_shannon"] == pytest.approx(0, abs=1e-6)


def test_a_perturbed_copy_moves_every_figure_the_right_way(reports):
    _, same = reports["same"]
    _, moved = reports["perturbed"]
    assert moved["lengths"]["ks_statistic"] > 0.2 and moved["lengths"]["ks_pvalue"] < 0.01
    assert moved["lengths"]["mean_words"] < 0.6 * same["lengths"]["mean_words"]
    assert moved["lengths"]["wasserstein_words"] > 5
    assert 0.2 < moved["aligned"]["rougeL_mean"] < 0.8
    assert moved["vocabulary"]["jaccard"] < 1.0 and moved["vocabulary"]["reference_vocabulary_reached"] < 1.0
    assert moved["topics"]["jensen_shannon"] > same["topics"]["jensen_shannon"]


def test_the_report_is_a_card_stats_and_figure_rows_that_push_publishes(reports, tmp_path):
    out, figures = reports["perturbed"]
    card = (out / "README.md").read_text()
    assert "## Comparison with the reference" in card and "Kolmogorov-Smirnov" in card
    assert f"ROUGE-L on {len(ALPACA)} rows aligned on `instruction`" in card
    assert (out / "images" / "comparison_length_histogram.png").read_bytes()[:4] == b"\x89PNG"
    names, rows = read_output(out)
    assert names == ["figure", "value"]
    values = {r["figure"]: r["value"] for r in rows}
    assert float(values["aligned.rougeL_mean"]) == pytest.approx(figures["aligned"]["rougeL_mean"])
    with FakeHub(token=TOKEN) as hub, online(hub):
        run_recipe("push", "--output_dir", out, "--hub_repo_id", "builders-test/compare")
    arrived = hub.files("builders-test/compare")
    assert b"## Comparison with the reference" in arrived["README.md"]
    assert {"stats.json", "images/comparison_length_histogram.png"} <= set(arrived)


def test_schema_differences_are_named(tmp_path):
    renamed = [{"question": r["instruction"], "output": r["output"], "input": r["input"]} for r in ALPACA]
    _, figures = compare(tmp_path, renamed, "renamed", "--key", "null", "--topics", "false")
    schema = figures["schema"]
    assert not schema["same"] and schema["missing"] == ["instruction"] and schema["extra"] == ["question"]
    assert not schema["same_order"] and "aligned" not in figures


def test_a_missing_reference_or_column_is_one_line(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", ALPACA[:5])
    out = ("--output_dir", tmp_path / "o")
    assert "compare needs a reference" in recipe_error(capsys, "compare", "--dataset", data, *out)
    message = recipe_error(capsys, "compare", "--dataset", data, "--reference", data, "--column", "text", *out)
    assert "has no column 'text'" in message


@pytest.mark.vllm
def test_a_recipe_run_with_compare_to_shows_the_comparison_in_its_card(tmp_path, tiny_model):
    out = tmp_path / "o"
    seeds = REPO / "configs" / "cosmopedia" / "seeds.jsonl"
    smoke = REPO / "configs" / "cosmopedia" / "smoke.yaml"
    run_recipe("cosmopedia", "--config", smoke, "--output_dir", out, "--compare_to", seeds)
    comparison = stats_of(out)["comparison"]
    assert comparison["column"] == "text" and comparison["rows"]["reference"] == 40
    card = (out / "README.md").read_text()
    assert "## Comparison with the reference" in card and "embedding clusters reached" in card
