"""The Self-Instruct recipe end to end through the real vLLM engine.

The tiny random model writes noise, which never forms a list: as it is (smoke.yaml) it exercises the bounded
stop. Constrained by a regex (structured output, `list_regex` / `instance_regex`) its noise takes the list
format, which exercises parsing, the rules, the novelty filter, classification and instances.
"""

import json
import shutil
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard
from rouge_score import rouge_scorer

from conftest import (
    ALPACA_LIST,
    INSTANCES,
    INSTRUCTION_LIST,
    REPO,
    load_recipe,
    recipe_error,
    run_recipe,
    shipped_data,
    stages_of,
    stats_of,
    write_jsonl,
)

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "self_instruct" / "smoke.yaml")
ALPACA_ARGS = ["--config", SMOKE, "--list_regex", ALPACA_LIST, "--max_new_tokens", 400, "--keep_rejected"]
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rows_of(out, folder="data"):
    """The rows written to `out/folder`, read with pyarrow. (Not `load_dataset(out)`: offline, datasets may
    return a cached dataset of another folder with the same name.)"""
    return pq.read_table(out / folder).to_pylist()


@pytest.fixture(scope="module", autouse=True)
def engine():
    """Build the shared engine before any test captures output: vLLM's log handler keeps the stream it saw."""
    from builders.config import parse_config
    from builders.generation.engines import build_engine

    return build_engine(parse_config(load_recipe("self_instruct").SelfInstructConfig, ["--config", SMOKE]))


@pytest.fixture(scope="module")
def alpaca_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("alpaca") / "out"
    run_recipe("self_instruct", *ALPACA_ARGS, "--output_dir", out)
    return out


def test_unparseable_output_stops_after_bounded_rounds_with_counts(tmp_path, capsys):
    out = tmp_path / "noise"
    run_recipe("self_instruct", "--config", SMOKE, "--output_dir", out)
    err = capsys.readouterr().err
    assert "warning: stopped after 2 rounds: the last 2 rounds added no instruction. 0 of 10 instructions; " in err
    assert "8 responses, 0 failed, 8 unparseable, 0 tasks parsed" in err
    stages = stages_of(out)
    assert stages["generate"]["rows_in"] == 8 and stages["generate"]["details"]["rounds"] == 2
    assert stages["parse"]["dropped"] == {"unparseable": 8}
    assert sorted(p.name for p in (out / ".checkpoints").glob("*/round-*")) == ["round-0000", "round-0001"]
    assert rows_of(out) == []


def test_alpaca_mode_rows_columns_and_funnel(alpaca_output):
    rows = rows_of(alpaca_output)
    columns = ["instruction", "input", "output", "most_similar_instructions", "avg_similarity_score"]
    assert [list(r) for r in rows] == [columns] * 10  # num_instructions_to_generate in smoke.yaml
    stages = stages_of(alpaca_output)
    assert list(stages) == ["input", "generate", "parse", "filter", "novelty"]
    assert stages["input"]["rows_out"] == 175
    assert stages["parse"]["details"]["tasks_parsed"] == stages["filter"]["rows_in"]
    for before, after in [("filter", "novelty")]:
        assert stages[before]["rows_out"] == stages[after]["rows_in"]
    for stage in stages.values():
        assert stage["rows_in"] - stage["rows_out"] == sum(stage["dropped"].values())
    assert stages["novelty"]["dropped"].get("target_reached", 0) > 0  # the last round gave more than needed
    assert stages["novelty"]["rows_out"] == 10
    card = DatasetCard.load(alpaca_output / "README.md")
    assert "self-instruct" in card.data.tags and "| novelty |" in card.text
    # every task the loop dropped is in the rejected split with its reason (target_reached > 0: never empty)
    rejected = rows_of(alpaca_output, "rejected")
    assert Counter(r["reason"] for r in rejected) == Counter(stages["filter"]["dropped"]) + Counter(
        stages["novelty"]["dropped"]
    )
    assert {r["stage"] for r in rejected} == {"bootstrap"}
    for r in rejected:
        task = json.loads(r["row"])
        assert set(task) == set(columns)
        if r["reason"] == "too_similar":
            assert task["most_similar_instructions"][0]["score"] > 0.7


def test_alpaca_mode_similarity_records_are_rouge_scores_against_the_pool(alpaca_output):
    pool = [json.loads(line)["instruction"] for line in shipped_data("seed_tasks.jsonl").read_text().splitlines()]
    pool = [" ".join(p.split()) for p in pool]
    for row in rows_of(alpaca_output):
        scores = [SCORER.score(row["instruction"], p)["rougeL"].fmeasure for p in pool]
        assert max(scores) <= 0.7
        assert row["avg_similarity_score"] == float(np.mean(scores))
        expected = {pool[i]: scores[i] for i in np.argsort(scores)[-10:][::-1]}
        assert [(m["instruction"], m["score"]) for m in row["most_similar_instructions"]] == list(expected.items())
        pool.append(row["instruction"])


def test_rerun_resumes_from_round_checkpoints(alpaca_output, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(alpaca_output, out)
    shutil.rmtree(out / "data")
    run_recipe("self_instruct", *ALPACA_ARGS, "--output_dir", out)
    assert stats_of(out)["generation"]["batches_resumed"] >= 1
    assert stats_of(out)["generation"]["batches_generated"] == 0
    assert rows_of(out) == rows_of(alpaca_output)


def test_self_instruct_mode_classifies_and_generates_instances(tmp_path):
    out = tmp_path / "si"
    run_recipe(
        "self_instruct",
        "--config",
        SMOKE,
        "--output_dir",
        out,
        "--mode",
        "self_instruct",
        "--list_regex",
        INSTRUCTION_LIST,
        "--instance_regex",
        INSTANCES,
        "--max_new_tokens",
        200,
        "--instance_max_new_tokens",
        120,
        "--num_instructions_to_generate",
        6,
        "--instance_temperature",
        1.0,
    )
    ds = rows_of(out)
    assert list(ds[0]) == [
        "instruction",
        "input",
        "output",
        "most_similar_instructions",
        "avg_similarity_score",
        "is_classification",
    ]
    stages = stages_of(out)
    assert list(stages) == [
        "input",
        "generate",
        "parse",
        "filter",
        "novelty",
        "classify",
        "classification",
        "instances",
        "instance_parse",
        "instance_filter",
    ]
    assert stages["novelty"]["rows_out"] == 6 == stages["classify"]["rows_in"] == stages["instances"]["rows_in"]
    assert stages["instance_filter"]["rows_out"] == len(ds) > 0
    instructions = {r["instruction"] for r in ds}
    assert len(instructions) <= 6
    for instruction in instructions:
        rows = [r for r in ds if r["instruction"] == instruction]
        assert 1 <= len(rows) <= 5 and len({r["is_classification"] for r in rows}) == 1
        assert len({(r["input"], r["output"]) for r in rows}) == len(rows)  # no duplicate instances
        assert all(r["output"] and r["output"] != r["input"] for r in rows)
    clf = stages["classification"]["details"]
    assert clf["classification"] + clf["other"] == 6


def test_bad_seed_files_and_keys_exit_2_naming_the_problem(tmp_path, capsys):
    lines = shipped_data("seed_tasks.jsonl").read_text().splitlines()
    (tmp_path / "broken.jsonl").write_text(
        "\n".join(lines[:4] + ['{"instruction": "Say hi", "instances": ['] + lines[4:6])
    )
    write_jsonl(tmp_path / "no_instances.jsonl", [{"instruction": "Say hi."}])
    base = ["--config", SMOKE, "--output_dir", tmp_path / "o"]
    message = recipe_error(capsys, "self_instruct", *base, "--dataset", tmp_path / "broken.jsonl")
    assert "broken.jsonl' line 5 is not valid JSON" in message
    assert "line 1 needs 'instances'" in recipe_error(
        capsys, "self_instruct", *base, "--dataset", tmp_path / "no_instances.jsonl"
    )
    assert "does not exist" in recipe_error(capsys, "self_instruct", *base, "--dataset", tmp_path / "missing.jsonl")
    assert "must be one of alpaca, self_instruct" in recipe_error(capsys, "self_instruct", *base, "--mode", "evol")
    assert "num_machine_instructions" in recipe_error(
        capsys, "self_instruct", *base, "--mode", "self_instruct", "--num_machine_instructions", 8
    )
    assert "no MinHash dedup" in recipe_error(capsys, "self_instruct", *base, "--dedup", "true")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.parametrize("config", ["demo.yaml", "demo_self_instruct.yaml"])
def test_demo_with_smollm2(tmp_path, config):
    out = tmp_path / config.removesuffix(".yaml")
    run_recipe("self_instruct", "--config", REPO / "configs" / "self_instruct" / config, "--output_dir", out)
    rows = rows_of(out)
    stages = stages_of(out)
    assert stages["input"]["rows_out"] == 175
    assert stages["novelty"]["rows_out"] == (24 if config == "demo.yaml" else 16)  # reached the target
    assert len(rows) > 0 and stages[list(stages)[-1]]["rows_out"] == len(rows)
    pool = [
        " ".join(json.loads(line)["instruction"].split())
        for line in shipped_data("seed_tasks.jsonl").read_text().splitlines()
    ]
    for row in rows:
        assert len(row["instruction"].split()) >= 4 and row["output"]
        assert max(SCORER.score(row["instruction"], p)["rougeL"].fmeasure for p in pool) <= 0.7
