"""The Cosmopedia recipe end to end through the real vLLM engine with the tiny random model."""

import json
import shutil

import pytest
import yaml
from datasets import load_dataset
from huggingface_hub import DatasetCard

from conftest import COSMOPEDIA_SEEDS, REPO, recipe_error, run_recipe, run_recipe_cli, write_jsonl

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
COLUMNS = ["prompt", "text", "text_token_length", "seed_data", "format", "audience", "model", "finish_reason"]


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("cosmo") / "out"
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", out, "--batch_size", 4)
    return out


def test_output_folder_is_hub_ready(smoke_output):
    assert sorted(p.name for p in smoke_output.iterdir() if not p.name.startswith(".")) == [
        "README.md",
        "config.yaml",
        "data",
        "images",
        "run.json",
        "stats.json",
    ]
    ds = load_dataset(str(smoke_output), split="train")
    assert ds.column_names == COLUMNS
    assert len(ds) > 0
    assert set(ds["model"]) == {"tiny-random"}
    # the generated token count: at least min_text_tokens (8, the filter), at most max_new_tokens (48), and
    # exactly 48 where the generation was cut by the limit
    for length, reason in zip(ds["text_token_length"], ds["finish_reason"]):
        assert 8 <= length <= 48 and (reason != "length" or length == 48), (length, reason)
    seeds = [json.loads(line)["text"] for line in COSMOPEDIA_SEEDS.read_text().splitlines()[:8]]
    assert all(any(s.startswith(d[:40]) for s in seeds) for d in ds["seed_data"])

    card = DatasetCard.load(smoke_output / "README.md")
    assert "synthetic" in card.data.tags and "cosmopedia" in card.data.tags
    assert card.data.license == "apache-2.0" and card.data.size_categories == ["n<1K"]
    assert "| generate |" in card.text and "python recipes/cosmopedia.py --config config.yaml" in card.text

    config = yaml.safe_load((smoke_output / "config.yaml").read_text())
    assert config["model"] == "tiny-random" and config["max_new_tokens"] == 48


def test_stats_add_up(smoke_output):
    stats = json.loads((smoke_output / "stats.json").read_text())
    assert stats["recipe"] == "cosmopedia" and stats["model"] == "tiny-random"
    names = [s["name"] for s in stats["stages"]]
    assert names == ["input", "prompts", "generate", "filter", "dedup"]
    for before, after in zip(stats["stages"], stats["stages"][1:]):
        assert before["rows_out"] == after["rows_in"]
    for stage in stats["stages"]:
        # every drop has a named reason: the funnel never balances itself with "unaccounted"
        assert "unaccounted" not in stage["dropped"]
        assert stage["rows_in"] - stage["rows_out"] == sum(stage["dropped"].values())
    final = load_dataset(str(smoke_output), split="train")
    assert stats["stages"][-1]["rows_out"] == len(final)
    assert stats["tokens"]["completion"] > 0 and stats["tokens"]["prompt"] > stats["tokens"]["completion"]


def test_same_seed_gives_the_same_rows_and_another_seed_does_not(smoke_output, tmp_path):
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", tmp_path / "again", "--batch_size", 4)
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", tmp_path / "other", "--batch_size", 4, "--seed", 7)
    first = load_dataset(str(smoke_output), split="train").to_list()
    again = load_dataset(str(tmp_path / "again"), split="train").to_list()
    other = load_dataset(str(tmp_path / "other"), split="train").to_list()
    assert again == first
    assert [r["text"] for r in other] != [r["text"] for r in first]


def test_load_dataset_sees_each_folder_and_the_latest_run(smoke_output, tmp_path):
    # datasets caches local folders by name when the card declares `configs`: outputs must not be served stale.
    first, second = tmp_path / "a" / "out", tmp_path / "b" / "out"
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", first, "--batch_size", 4, "--num_samples", 3)
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", second, "--batch_size", 4, "--num_samples", 5)
    assert len(load_dataset(str(first), split="train")) == 3
    assert len(load_dataset(str(second), split="train")) == 5
    run_recipe(
        "cosmopedia", "--config", SMOKE, "--output_dir", first, "--batch_size", 4, "--num_samples", 4, "--overwrite"
    )
    assert len(load_dataset(str(first), split="train")) == 4


def test_rerun_resumes_from_checkpoints(smoke_output, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(smoke_output, out)
    chunks = sorted((out / ".checkpoints").rglob("*.parquet"))
    assert len(chunks) == 2  # 8 rows in batches of 4
    chunks[1].unlink()  # the second batch was in flight when the run died
    shutil.rmtree(out / "data")
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", out, "--batch_size", 4)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["generation"]["batches_resumed"] == 1 and stats["generation"]["batches_generated"] == 1
    assert load_dataset(str(out), split="train").to_list() == load_dataset(str(smoke_output), split="train").to_list()


def test_raw_completion_and_reproduce_mode(smoke_output, tmp_path):
    run_recipe(
        "cosmopedia",
        "--config",
        SMOKE,
        "--output_dir",
        tmp_path / "repro",
        "--dataset",
        smoke_output / "data",
        "--prompt_column",
        "prompt",
        "--use_chat_template",
        "false",
        "--num_samples",
        3,
    )
    ds = load_dataset(str(tmp_path / "repro"), split="train")
    source = load_dataset(str(smoke_output), split="train")
    assert set(ds["prompt"]) <= set(source["prompt"])
    assert len(ds) >= 1


def test_bad_inputs_exit_2_with_one_line_and_leave_output_untouched(smoke_output, tmp_path, capsys):
    before = {p: p.read_bytes() for p in smoke_output.rglob("*") if p.is_file()}
    # --overwrite: even a run allowed to replace the folder must check its inputs before touching it
    base = ["--config", SMOKE, "--output_dir", smoke_output, "--overwrite"]
    write_jsonl(tmp_path / "body.jsonl", [{"body": "x"}])
    (tmp_path / "empty.jsonl").write_text("")

    assert "has no column 'text'" in recipe_error(capsys, "cosmopedia", *base, "--dataset", tmp_path / "body.jsonl")
    assert "its columns are body" in recipe_error(capsys, "cosmopedia", *base, "--dataset", tmp_path / "body.jsonl")
    assert "has no rows" in recipe_error(capsys, "cosmopedia", *base, "--dataset", tmp_path / "empty.jsonl")
    assert "unknown config key 'temprature'" in recipe_error(capsys, "cosmopedia", *base, "--temprature", "1")
    assert "expects an integer" in recipe_error(capsys, "cosmopedia", *base, "--max_new_tokens", "lots")
    assert "holds a different run" in recipe_error(
        capsys, "cosmopedia", "--config", SMOKE, "--output_dir", smoke_output
    )
    message = recipe_error(capsys, "cosmopedia", *base, "--model", "no-such-model")
    assert "model 'no-such-model'" in message and "fix `model`" in message
    message = recipe_error(capsys, "cosmopedia", *base, "--model", "some-org/not-cached")
    assert "HF_HUB_OFFLINE" in message
    assert {p: p.read_bytes() for p in smoke_output.rglob("*") if p.is_file()} == before


def test_foreign_output_dir_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert "not written by builders" in recipe_error(capsys, "cosmopedia", "--config", SMOKE, "--output_dir", out)
    assert (out / "notes.txt").read_text() == "keep me"


def test_cli_reports_user_errors_without_traceback(tmp_path):
    proc = run_recipe_cli("cosmopedia", "--config", SMOKE, "--output_dir", tmp_path / "o", "--seed_column", "body")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: configs/") is False
    assert "has no column 'body'" in proc.stderr and "its columns are text, topic, source" in proc.stderr
    assert not (tmp_path / "o").exists()
