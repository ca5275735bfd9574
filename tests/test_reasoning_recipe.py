"""The reasoning recipe end to end through the real vLLM engine with the tiny random model (and SmolLM2, slow)."""

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

from builders.config import parse_config
from builders.methods.reasoning.traces import parse_thinking
from conftest import REPO, assert_funnel_adds_up, load_recipe, read_jsonl, run_recipe, stats_of

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "reasoning" / "smoke.yaml")
DEMO = str(REPO / "configs" / "reasoning" / "demo.yaml")
QUESTIONS = REPO / "configs" / "reasoning" / "questions.jsonl"
COLUMNS = ["instruction", "input", "reasoning", "answer", "messages", "model", "finish_reason", "completion_tokens"]


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("reasoning") / "out"
    run_recipe("reasoning", "--config", SMOKE, "--output_dir", out)
    return out


def test_budget_forced_traces_become_sft_messages(smoke_output):
    ds = load_dataset(str(smoke_output), split="train")
    assert ds.column_names == COLUMNS
    questions = read_jsonl(QUESTIONS)[:8]
    # the tiny model never closes a block: every trace ran out of budget, was closed, and got an answer
    assert ds["instruction"] == [q["instruction"] for q in questions]
    for row, question in zip(ds, questions):
        user, assistant = row["messages"]
        assert user == {"role": "user", "content": (question["instruction"] + "\n\n" + question["input"]).strip()}
        assert assistant["role"] == "assistant"
        parsed = parse_thinking(assistant["content"])
        assert parsed.closed and parsed.reasoning == row["reasoning"].strip() and parsed.answer == row["answer"]
        assert row["reasoning"] and row["model"] == "tiny-random"
        assert row["completion_tokens"] > 32  # the trace's 32 tokens plus the forced answer's
    stats = stats_of(smoke_output)
    assert [s["name"] for s in stats["stages"]] == ["input", "generate", "budget_forcing", "filter"]
    assert stats["stages"][2]["rows_in"] == 8
    assert_funnel_adds_up(stats)
    card = DatasetCard.load(smoke_output / "README.md")
    assert "reasoning" in card.data.tags and "opened by a prefill of the reply" in card.text


def test_without_budget_forcing_unclosed_traces_are_dropped_with_a_reason(smoke_output, tmp_path):
    out = tmp_path / "strict"
    run_recipe(
        "reasoning", "--config", SMOKE, "--output_dir", out, "--budget_forcing", "false", "--drop_truncated", "true"
    )
    stats = stats_of(out)
    filter_stage = stats["stages"][-1]
    assert filter_stage["name"] == "filter" and filter_stage["rows_out"] == 0
    assert filter_stage["dropped"] == {"truncated": 8}
    # an empty output is still a valid parquet file with the recipe's columns (load_dataset refuses 0-row splits)
    table = pq.read_table(next((out / "data").glob("*.parquet")))
    assert table.num_rows == 0 and table.column_names[:4] == COLUMNS[:4]
    # every output ran into the 32-token limit without closing its block
    assert stats["tokens"]["completion"] == 8 * 32


def test_chat_template_kwargs_reach_the_sampling_settings(tmp_path):
    from builders.run import Run

    recipe = load_recipe("reasoning")
    argv = [
        "--config",
        SMOKE,
        "--output_dir",
        str(tmp_path / "o"),
        "--chat_template_kwargs",
        "{enable_thinking: true}",
    ]
    run = Run(parse_config(recipe.ReasoningConfig, argv), recipe.INFO)  # builds no engine until it generates
    assert run.sampling().chat_template_kwargs == {"enable_thinking": True}
    assert run.sampling(max_new_tokens=5).chat_template_kwargs == {"enable_thinking": True}


def test_missing_reference_column_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_recipe("reasoning", "--config", SMOKE, "--output_dir", tmp_path / "o", "--reference_column", "gold")
    assert exit_.value.code == 2
    assert "has no column 'gold'" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_with_smollm2(tmp_path):
    out = tmp_path / "demo"
    run_recipe("reasoning", "--config", DEMO, "--output_dir", out)
    stats = stats_of(out)
    assert_funnel_adds_up(stats)
    assert stats["stages"][0]["rows_in"] == 30
    filter_stage = next(s for s in stats["stages"] if s["name"] == "filter")
    assert filter_stage["rows_in"] == 30 and sum(filter_stage["dropped"].values()) > 0
    assert filter_stage["rows_out"] > 0, f"the demo kept no rows: {filter_stage['dropped']}"
    ds = load_dataset(str(out), split="train")
    for row in ds:
        assert parse_thinking(row["messages"][1]["content"]).answer == row["answer"] and row["answer"]
