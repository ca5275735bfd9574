"""The Magpie recipe end to end through the real vLLM engine with the tiny random model (and SmolLM2, slow)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

from conftest import REPO, assert_funnel_adds_up, load_recipe, read_output, run_recipe, stages_of, stats_of

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "magpie" / "smoke.yaml")
DEMO = str(REPO / "configs" / "magpie" / "demo.yaml")
COLUMNS = ["conversation", "instruction", "response", "model", "generation", "finish_reason"]


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("magpie") / "out"
    run_recipe("magpie", "--config", SMOKE, "--output_dir", out)
    return out


@pytest.fixture(scope="module")
def tagged_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("magpie-tags") / "out"
    run_recipe("magpie", "--config", SMOKE, "--output_dir", out, "--tags", "true", "--num_samples", 6)
    return out


def test_tags_are_magpies_labels_and_the_computed_columns_hold(tagged_output):
    from builders.dedup.embeddings import embed
    from builders.methods.magpie.release import language_code, row_uuid
    from builders.methods.magpie.tags import DIFFICULTIES, INPUT_QUALITIES, TASK_CATEGORIES

    ds = load_dataset(str(tagged_output), split="train")
    recipe = load_recipe("magpie")
    assert ds.column_names == COLUMNS + list(recipe.RELEASE_COLUMNS) and len(ds) > 1
    assert ds.features["repeat_count"].dtype == "int64" and ds.features["min_similar_uuid"].dtype == "string"
    for row in ds:
        # the answers were JSON (structured output) and their labels the allowed ones
        assert row["task_category"] in TASK_CATEGORIES and set(row["other_task_category"]) <= set(TASK_CATEGORIES)
        assert row["difficulty"] in DIFFICULTIES and row["input_quality"] in INPUT_QUALITIES
        assert row["intent"] and row["knowledge"] and row["quality_explanation"]
        assert len(row["intent"]) <= 40  # smoke's tag_max_chars bounds the free strings
        generators = ("task_category_generator", "difficulty_generator", "quality_generator")
        assert {row[c] for c in generators} == {"tiny-random"}
        # computed from the row: the same uuid in every run that writes this conversation
        assert row["uuid"] == row_uuid(row["instruction"], row["response"])
        assert row["instruction_length"] == len(row["instruction"]) and row["response_length"] == len(row["response"])
        assert row["language"] == language_code(row["instruction"])
        assert row["gen_input_configs"] == {
            "temperature": 1.0,
            "top_p": 1.0,
            "input_generator": "tiny-random",
            "seed": None,
            "extract_input": "<|im_start|>user\n",
        }
        assert row["finish_reason"] in ("stop", "length")  # the response's, not a tagging request's
    assert len(set(ds["uuid"])) == len(ds)
    # the neighbours, against the full distance matrix of the same embeddings (Magpie: squared L2)
    vectors = embed(ds["instruction"])
    distances = np.maximum(2 - 2 * vectors @ vectors.T, 0)
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_allclose(ds["min_neighbor_distance"], distances.min(axis=1), atol=1e-4)
    assert ds["repeat_count"] == (distances < 0.05).sum(axis=1).tolist()
    uuids = set(ds["uuid"])
    assert all(
        (u is None) == (n == 0) and (u is None or u in uuids)
        for u, n in zip(ds["min_similar_uuid"], ds["repeat_count"])
    )
    stats = stats_of(tagged_output)
    names = [s["name"] for s in stats["stages"]]
    assert names[-7:] == [
        "tag_task_category",
        "filter_tag_task_category",
        "tag_difficulty",
        "filter_tag_difficulty",
        "tag_input_quality",
        "filter_tag_input_quality",
        "neighbours",
    ]
    assert_funnel_adds_up(stats)


def test_a_tag_answer_that_does_not_parse_is_a_counted_drop(tmp_path):
    """Answers cut at 3 tokens are no JSON object: every row is dropped with the tag's reason, and the run ends."""
    out = tmp_path / "cut"
    run_recipe(
        "magpie",
        "--config",
        SMOKE,
        "--output_dir",
        out,
        "--tags",
        "true",
        "--num_samples",
        3,
        "--tag_max_new_tokens",
        3,
    )
    stage = stages_of(out)["filter_tag_task_category"]
    assert stage["rows_in"] == 3 and stage["rows_out"] == 0 and stage["dropped"] == {"truncated_task_category": 3}
    assert read_output(out)[1] == []


def test_keep_longest_keeps_the_rows_with_the_longest_responses(tagged_output, tmp_path):
    everything = load_dataset(str(tagged_output), split="train")
    out = tmp_path / "out"
    run_recipe(
        "magpie", "--config", SMOKE, "--output_dir", out, "--tags", "true", "--num_samples", 6, "--keep_longest", 2
    )
    kept = load_dataset(str(out), split="train")  # the same rows up to here: same config, same seeds
    lengths = everything["response_length"]
    longest = sorted(sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))[:2])
    assert kept["uuid"] == [everything["uuid"][i] for i in longest]
    stage = stages_of(out)["keep_longest"]
    assert stage["rows_in"] == len(everything) and stage["dropped"] == {"shorter_response": len(everything) - 2}


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


@pytest.mark.parametrize("key, value", [("min_input_quality", "good"), ("keep_longest", 10), ("drop_repeats", "true")])
def test_a_tag_filter_without_tags_is_a_user_error(tmp_path, capsys, key, value):
    with pytest.raises(SystemExit) as exit_:
        run_recipe("magpie", "--config", SMOKE, "--output_dir", tmp_path / "o", f"--{key}", value)
    assert exit_.value.code == 2
    assert f"config key '{key}' works on Magpie's tags; set tags: true" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
