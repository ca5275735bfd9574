"""The Evol-Instruct recipe end to end through the real vLLM engine with the tiny random model (and SmolLM2, slow)."""

import json

import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

from builders.methods.evol_instruct import OPERATIONS, choose_operation
from conftest import REPO, assert_funnel_adds_up, run_recipe, shipped_data, stats_of

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "evol_instruct" / "smoke.yaml")
DEMO = str(REPO / "configs" / "evol_instruct" / "demo.yaml")
COLUMNS = [
    "instruction",
    "response",
    "original_instruction",
    "operations",
    "history",
    "rounds",
    "model",
    "finish_reason",
]


@pytest.fixture(scope="module")
def seeds():
    rows = json.loads(shipped_data("alpaca_5000.json").read_text())[:8]
    return [(r["instruction"] + "\n\n" + r["input"]).strip() for r in rows]


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("evol") / "out"
    run_recipe("evol_instruct", "--config", SMOKE, "--output_dir", out)
    return out


def test_lineage_records_every_round(smoke_output, seeds):
    ds = load_dataset(str(smoke_output), split="train")
    assert ds.column_names == COLUMNS and len(ds) > 0
    for row in ds:
        row_id = seeds.index(row["original_instruction"])
        assert row["rounds"] == 2 and len(row["operations"]) == 2 and len(row["history"]) == 2
        assert row["operations"] == [choose_operation(list(OPERATIONS), 42, row_id, r) for r in (1, 2)]
        assert row["history"][0] == row["original_instruction"]
        assert row["instruction"] not in row["history"]
        assert row["model"] == "tiny-random" and row["response"]
    stats = stats_of(smoke_output)
    names = [s["name"] for s in stats["stages"]]
    assert names == [
        "input",
        "evolve_1",
        "eliminate_1",
        "respond_1",
        "eliminate_responses_1",
        "evolve_2",
        "eliminate_2",
        "respond_2",
        "eliminate_responses_2",
        "dedup",
    ]
    for before, after in zip(stats["stages"], stats["stages"][1:]):
        assert before["rows_out"] == after["rows_in"]
    assert_funnel_adds_up(stats)
    card = DatasetCard.load(smoke_output / "README.md")
    assert "evol-instruct" in card.data.tags and "## Operations" in card.text


def test_all_rounds_output_keeps_each_generation(smoke_output, tmp_path):
    out = tmp_path / "all"
    run_recipe(
        "evol_instruct",
        "--config",
        SMOKE,
        "--output_dir",
        out,
        "--output",
        "all_rounds",
        "--operations",
        "deepen",
        "--num_samples",
        4,
    )
    ds = load_dataset(str(out), split="train")
    by_round = {r: [row for row in ds if row["rounds"] == r] for r in (1, 2)}
    assert by_round[1] and by_round[2]
    assert all(row["operations"] == ["deepen"] * row["rounds"] for row in ds)
    round_2_parents = {row["history"][1] for row in by_round[2]}
    assert round_2_parents <= {row["instruction"] for row in by_round[1]}


def test_bad_operation_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_recipe("evol_instruct", "--config", SMOKE, "--output_dir", tmp_path / "o", "--operations", "deepen,widen")
    assert exit_.value.code == 2
    assert "unknown or no operations (widen)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_demo_with_smollm2(tmp_path):
    out = tmp_path / "demo"
    run_recipe("evol_instruct", "--config", DEMO, "--output_dir", out)
    stats = stats_of(out)
    assert_funnel_adds_up(stats)
    assert stats["stages"][0]["rows_in"] == 40
    eliminated = sum(sum(s["dropped"].values()) for s in stats["stages"] if s["name"].startswith("eliminate"))
    assert eliminated > 0
    ds = load_dataset(str(out), split="train")
    assert all(len(row["operations"]) == 2 for row in ds)
