"""The Magpie recipe end to end through the real vLLM engine with the tiny random model (and SmolLM2, slow)."""

import json

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

from conftest import REPO, assert_funnel_adds_up, run_recipe, stats_of

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "magpie" / "smoke.yaml")
DEMO = str(REPO / "configs" / "magpie" / "demo.yaml")
COLUMNS = ["conversation", "instruction", "response", "model", "generation", "finish_reason"]


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("magpie") / "out"
    run_recipe("magpie", "--config", SMOKE, "--output_dir", out)
    return out


def test_queries_and_answers_come_from_the_model_alone(smoke_output):
    ds = load_dataset(str(smoke_output), split="train")
    assert ds.column_names == COLUMNS and len(ds) > 0
    for row in ds:
        user, assistant = row["conversation"]
        assert user == {"role": "user", "content": row["instruction"]} and row["instruction"]
        assert assistant == {"role": "assistant", "content": row["response"]}
        assert "<|im_end|>" not in row["instruction"] and "<|im_start|>" not in row["instruction"]
        assert row["model"] == "tiny-random"
        assert row["generation"]["query_temperature"] == 1.0 and row["generation"]["turns"] == 1
    stats = stats_of(smoke_output)
    names = [s["name"] for s in stats["stages"]]
    assert names == ["input", "query", "filter_queries", "dedup_queries", "response", "filter_responses"]
    assert stats["stages"][0]["rows_in"] == 8
    assert_funnel_adds_up(stats)
    card = DatasetCard.load(smoke_output / "README.md")
    assert "magpie" in card.data.tags
    assert "## Pre-query prefix" in card.text and "<|im_start|>user" in card.text


def test_duplicate_queries_are_dropped_and_counted(tmp_path):
    """Greedy sampling from one prefix writes the same query every time: the dedup stage must drop every copy
    but one and count them. (The tiny model's sampled noise never repeats, so the smoke run cannot show it.)"""
    out = tmp_path / "greedy"
    run_recipe("magpie", "--config", SMOKE, "--output_dir", out, "--query_temperature", 0, "--keep_rejected")
    stages = {s["name"]: s for s in stats_of(out)["stages"]}
    dedup = stages["dedup_queries"]
    # the dedup stage's input, rebuilt from the output: what it dropped and what it passed on
    rejected = pq.read_table(out / "rejected").to_pylist()
    removed = [json.loads(r["row"])["instruction"] for r in rejected if r["stage"] == "dedup_queries"]
    passed = [json.loads(r["row"])["instruction"] for r in rejected if r["stage"] == "filter_responses"]
    passed += load_dataset(str(out), split="train")["instruction"]
    queries = removed + passed
    assert len(queries) == dedup["rows_in"] == stages["filter_queries"]["rows_out"]
    duplicates = len(queries) - len(set(queries))
    assert duplicates > 0, "greedy queries should repeat"
    assert dedup["rows_in"] - dedup["rows_out"] == duplicates
    assert dedup["dropped"] == {"exact_duplicate": duplicates}
    assert len(set(passed)) == len(passed)


def test_system_prompt_and_follow_up_turns(tmp_path):
    out = tmp_path / "two-turns"
    system = "You are a patient chemistry tutor."
    run_recipe(
        "magpie", "--config", SMOKE, "--output_dir", out, "--num_samples", 4, "--turns", 2, "--system_prompt", system
    )
    ds = load_dataset(str(out), split="train")
    assert len(ds) > 0
    for row in ds:
        roles = [m["role"] for m in row["conversation"]]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        assert row["conversation"][0]["content"] == system
        assert row["conversation"][1]["content"] == row["instruction"]
        assert row["conversation"][2]["content"] == row["response"]
        assert row["generation"]["system_prompt"] == system and row["generation"]["turns"] == 2
    names = [s["name"] for s in stats_of(out)["stages"]]
    assert names[-4:] == ["query_2", "filter_queries_2", "response_2", "filter_responses_2"]
    assert "You are a patient chemistry tutor." in (out / "README.md").read_text()


def test_default_filters_drop_the_tiny_models_noise_with_reasons(tmp_path):
    out = tmp_path / "strict"
    run_recipe(
        "magpie", "--config", SMOKE, "--output_dir", out, "--drop_truncated", "true", "--require_request", "true"
    )
    stage = next(s for s in stats_of(out)["stages"] if s["name"] == "filter_queries")
    assert stage["rows_in"] == 8 and sum(stage["dropped"].values()) == 8 - stage["rows_out"]
    assert set(stage["dropped"]) <= {"query_truncated", "empty_query", "query_too_short", "not_a_request"}
    assert stage["dropped"].get("query_truncated", 0) > 0


@pytest.mark.slow
def test_demo_with_smollm2(tmp_path):
    out = tmp_path / "demo"
    run_recipe("magpie", "--config", DEMO, "--output_dir", out)
    stats = stats_of(out)
    assert_funnel_adds_up(stats)
    ds = load_dataset(str(out), split="train")
    assert len(ds) > 10
    from builders.methods.magpie import is_request

    assert sum(is_request(q) for q in ds["instruction"]) == len(ds)
    assert "You are a helpful AI assistant named SmolLM" in (out / "README.md").read_text()


def test_an_input_dataset_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_recipe("magpie", "--config", SMOKE, "--output_dir", tmp_path / "o", "--dataset", "questions.jsonl")
    assert exit_.value.code == 2
    assert "Magpie takes no input dataset" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
