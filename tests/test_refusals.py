"""Bad values refused up front (issue 16, items 5-7): one line, exit 2, before the model loads, nothing written;
input rows of the wrong kind: a whole column is refused, a few bad rows are drops with their reason.

The runs that must refuse name a model folder that does not exist: a check that came after the model load would
name the model instead of the value.
"""

import json

import pytest
import yaml

from conftest import COSMOPEDIA_SEEDS, REPO, assert_funnel_adds_up, read_output, recipe_error, run_recipe, stages_of

SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
GENERATE_SMOKE = REPO / "configs" / "generate" / "smoke.yaml"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--temperature", -0.5], "config key 'temperature' must be >= 0, got -0.5"),
        (["--top_p", 0], "config key 'top_p' must be in (0, 1], got 0.0"),
        (["--top_p", 1.5], "config key 'top_p' must be in (0, 1], got 1.5"),
        (["--top_k", -2], "config key 'top_k' must be >= -1, got -2"),
        (["--repetition_penalty", 0], "config key 'repetition_penalty' must be > 0, got 0.0"),
        (["--max_model_len", 40, "--prompt_column", "prompt"], "max_model_len (40) cannot hold a prompt plus max_new"),
        (["--max_seed_tokens", 2001], "max_model_len (2048) cannot hold max_seed_tokens (2001) plus max_new_tokens"),
        (
            ["--engine_kwargs", '{"gpu_memory_utilisation": 0.5}'],
            "engine_kwargs has 'gpu_memory_utilisation', which vllm.LLM does not accept; did you mean "
            "'gpu_memory_utilization'?",
        ),
        (["--hub_repo_id", "my org/data"], "hub_repo_id 'my org/data' is not a valid repository id ("),
        (["--prompt_column", 5], "dataset 'configs/cosmopedia/seeds.jsonl' has no column '5'"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_a_bad_value_is_refused_before_the_model_loads_and_writes_nothing(args, expected, tmp_path, capsys):
    out = tmp_path / "o"
    message = recipe_error(
        capsys, "cosmopedia", "--config", SMOKE, "--output_dir", out, "--model", tmp_path / "no-model", *args
    )
    assert expected in message
    assert not out.exists()


def test_generate_refuses_a_step_sampling_value_and_n_below_one(tmp_path, capsys):
    config = yaml.safe_load(GENERATE_SMOKE.read_text())
    config["steps"][1]["temperature"] = -1
    path = tmp_path / "steps.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "o"
    assert "config key 'steps[1].temperature' must be >= 0, got -1.0" in recipe_error(
        capsys, "generate", "--config", path, "--output_dir", out
    )
    config["steps"][1]["temperature"], config["steps"][1]["n"] = 0.5, 0
    path.write_text(yaml.safe_dump(config))
    assert "steps[1].n must be an integer >= 1, got 0" in recipe_error(
        capsys, "generate", "--config", path, "--output_dir", out
    )
    single = ("--dataset", COSMOPEDIA_SEEDS, "--template", "{{ text }}", "--n", 0, "--output_dir", out)
    assert "config key 'n' must be >= 1, got 0" in recipe_error(capsys, "generate", *single)
    assert not out.exists()


def seeds(path, lines: list[bytes]):
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


@pytest.mark.parametrize(
    "lines, expected",
    [
        ([b'{"text": 1}', b'{"text": 2}'], "column 'text' holds int64 values, not text"),
        ([b'{"text": null}', b'{"text": null}'], "column 'text' holds no value (every row is null), not text"),
        ([b'{"text": "a"}', b'{"text": "b"', b'{"text": "c"}'], "line 2 is not valid JSON ("),
        ([b'{"text": "a"}', b'["b"]'], "line 2 is a JSON list, not an object"),
        ([b'{"text": "\xff\xfe"}', b'{"text": null}'], "has no usable row (invalid_utf8_text: 1, null_text: 1)"),
    ],
    ids=["numbers", "all-null", "bad-json-line", "not-an-object", "no-usable-row"],
)
def test_an_input_that_holds_no_text_is_refused_naming_the_column_or_line(lines, expected, tmp_path, capsys):
    source, out = seeds(tmp_path / "seeds.jsonl", lines), tmp_path / "o"
    message = recipe_error(capsys, "cosmopedia", "--config", SMOKE, "--dataset", source, "--output_dir", out)
    assert f"dataset '{source}'" in message and expected in message
    assert not out.exists()


@pytest.mark.vllm
def test_a_few_bad_input_rows_are_drops_with_their_reason(tmp_path):
    lines = [line.encode() for line in COSMOPEDIA_SEEDS.read_text().splitlines()[:8]]
    lines[2] = json.dumps({"text": None, "topic": "x"}).encode()
    lines[5] = b'{"text": "caf\xe9 au lait, written in Latin-1", "topic": "x"}'
    source, out = seeds(tmp_path / "seeds.jsonl", lines), tmp_path / "o"
    run_recipe("cosmopedia", "--config", SMOKE, "--dataset", source, "--output_dir", out, "--keep_rejected", "true")
    stages = stages_of(out)
    assert stages["input"]["rows_in"] == 8 and stages["input"]["rows_out"] == 6
    assert stages["input"]["dropped"] == {"invalid_utf8_text": 1, "null_text": 1}
    assert stages["generate"]["rows_in"] == 6
    assert_funnel_adds_up(json.loads((out / "stats.json").read_text()))
    _, rejected = read_output(out, "rejected")
    dropped = {r["reason"]: json.loads(r["row"]) for r in rejected if r["stage"] == "input"}
    assert dropped["null_text"]["text"] is None and dropped["null_text"]["_row"] == 2
    assert (
        dropped["invalid_utf8_text"]["text"].startswith("caf\ufffd au lait")
        and dropped["invalid_utf8_text"]["_row"] == 5
    )


@pytest.mark.vllm
def test_a_prompt_longer_than_the_context_is_a_drop_and_all_of_them_an_error(tmp_path, capsys):
    """vLLM refuses a prompt longer than max_model_len for the whole batch; the batch is split until the long
    prompt stands alone: it is a `prompt_rejected` drop, the others are generated with their own seeds."""
    rows = [{"text": f"Passage {i}: rivers carry water to the sea."} for i in range(6)]
    rows[4]["text"] = "water " * 3000  # some 3,000 tokens, max_model_len is 2048
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ("--config", GENERATE_SMOKE, "--dataset", source, "--steps", "[]", "--template", "{{ text }}")
    run_recipe("generate", *args, "--output_dir", tmp_path / "o", "--dedup", "false", "--keep_rejected", "true")
    stages = stages_of(tmp_path / "o")
    assert stages["step1-generation"]["rows_out"] == 6
    assert stages["filter-generation"]["dropped"] == {"prompt_rejected": 1}
    _, rejected = read_output(tmp_path / "o", "rejected")
    assert [json.loads(r["row"])["_row"] for r in rejected] == [4]

    source.write_text(json.dumps(rows[4]) + "\n")  # nothing fits: an error, not an empty dataset
    message = recipe_error(capsys, "generate", *args, "--output_dir", tmp_path / "all")
    assert "stage 'step1-generation': every request of its first batch failed (1 of 1; the first: " in message
    assert "This model's maximum context length is 2048 tokens" in message
    assert not (tmp_path / "all").exists()
