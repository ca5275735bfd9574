"""Every `configs/<recipe>/reproduce_*.yaml` writes exactly its public dataset's columns, order and types.

Each config runs through its recipe, offline, at smoke size: the config's own keys (input mode, output_schema),
with the run's size taken from the recipe's smoke.yaml (the tiny random model, a few rows and tokens) and, where
the public dataset carries the model's inputs, a few rows in the public layout standing in for it. OSS-Instruct
answers come from a scripted server (the tiny model's noise never parses as a problem and a solution).
"""

import json

import pyarrow.parquet as pq
import pytest
import yaml
from scripted_server import ScriptedServer, last_user_message

from conftest import (
    ALPACA_LIST,
    COSMOPEDIA_SEEDS,
    INSTANCES,
    INSTRUCTION_LIST,
    REPO,
    read_jsonl,
    recipe_error,
    run_recipe,
    shipped_data,
    stats_of,
    write_jsonl,
)

pytestmark = pytest.mark.vllm

S, I64, F64 = "string", "int64", "double"
PUBLIC = {  # the public datasets' columns, in their order, as Arrow types
    "cosmopedia/reproduce_cosmopedia": [
        ("prompt", S),
        ("text_token_length", I64),
        ("text", S),
        ("seed_data", S),
        ("format", S),
        ("audience", S),
    ],
    "self_instruct/reproduce_alpaca": [("instruction", S), ("input", S), ("output", S), ("text", S)],
    "self_instruct/reproduce_self_instruct": [("prompt", S), ("completion", S)],
    "persona_hub/reproduce_persona_hub": [("input persona", S), ("synthesized text", S)],
    "tinystories/reproduce_tinystories": [("text", S)],
    "tinystories/reproduce_tinystories_instruct": [("text", S)],
    "oss_instruct/reproduce_magicoder": [
        ("lang", S),
        ("raw_index", I64),
        ("index", I64),
        ("seed", S),
        ("openai_fingerprint", S),
        ("problem", S),
        ("solution", S),
    ],
    "magpie/reproduce_magpie": [  # Magpie-Pro-300K-Filtered's card
        ("uuid", S),
        ("model", S),
        (
            "gen_input_configs",
            "struct<temperature: double, top_p: double, input_generator: string, seed: null, extract_input: string>",
        ),
        ("instruction", S),
        ("response", S),
        ("conversations", "list<element: struct<from: string, value: string>>"),
        ("task_category", S),
        ("other_task_category", "list<element: string>"),
        ("task_category_generator", S),
        ("difficulty", S),
        ("intent", S),
        ("knowledge", S),
        ("difficulty_generator", S),
        ("input_quality", S),
        ("quality_explanation", S),
        ("quality_generator", S),
        ("llama_guard_2", S),
        ("reward_model", S),
        ("instruct_reward", F64),
        ("min_neighbor_distance", F64),
        ("repeat_count", I64),
        ("min_similar_uuid", S),
        ("instruction_length", I64),
        ("response_length", I64),
        ("language", S),
    ],
    "magpie/reproduce_magpie_llama31_mt": [  # Magpie-Llama-3.1-Pro-MT-300K-Filtered's card
        ("uuid", S),
        ("model", S),
        (
            "gen_input_configs",
            "struct<temperature: double, top_p: double, input_generator: string, seed: null, "
            "pre_query_template: string>",
        ),
        ("conversations", "list<element: struct<from: string, value: string>>"),
        ("instruction", S),
        ("response", S),
        ("instruction_2", S),
        ("response_2", S),
        ("intent", S),
        ("knowledge", S),
        ("difficulty", S),
        ("difficulty_generator", S),
        ("input_quality", S),
        ("quality_explanation", S),
        ("quality_generator", S),
        ("task_category", S),
        ("other_task_category", "list<element: string>"),
        ("task_category_generator", S),
        ("llama_guard_2", S),
        ("instruct_reward", "double"),
        ("reward_model", S),
        ("language", S),
        ("response_length", I64),
    ],
    "evol_instruct/reproduce_wizardlm": [("instruction", S), ("output", S)],
}
# Keys that size a run: taken from smoke.yaml, whatever the reproduce config says.
SIZE = {"model", "dtype", "max_model_len", "enforce_eager", "batch_size", "num_samples", "rounds", "max_idle_rounds"}
SIZE |= {"num_instructions_to_generate", "request_batch_size"}
MAGICODER_SEEDS = [  # rows in Magicoder-OSS-Instruct-75K's layout (our own fragments)
    {"lang": "python", "raw_index": 9120, "index": 0, "seed": "def area(w, h):\n    return w * h\n"},
    {"lang": "rust", "raw_index": 77, "index": 1, "seed": "fn main() {\n    let v = vec![1, 2];\n}\n"},
    {"lang": "python", "raw_index": 4501, "index": 2, "seed": "for line in open(path):\n    total += len(line)\n"},
]
PERSONAS = [
    "A retired ship captain who now teaches navigation to teenagers at a coastal sailing club.",
    "A pastry chef who measures every ingredient by weight and keeps notes on oven temperatures.",
    "A city planner who counts cyclists at intersections to decide where new bike lanes go.",
]


def reproduce_config(path: str, tmp_path, **overrides) -> str:
    """The reproduce config at smoke size, written to a file: its keys, the smoke's SIZE keys and token limits."""
    recipe = path.split("/")[0]
    config = yaml.safe_load((REPO / "configs" / f"{path}.yaml").read_text())
    smoke = yaml.safe_load((REPO / "configs" / recipe / "smoke.yaml").read_text())
    merged = {**smoke, **config}
    merged.update({k: v for k, v in smoke.items() if k in SIZE or k.endswith("max_new_tokens")})
    merged["compare_to"] = None  # the public dataset on the Hub; a test that compares names a local stand-in
    merged.update(overrides, output_dir=str(tmp_path / "out"))
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))
    return str(file)


def public_columns(out) -> list[tuple[str, str]]:
    schema = pq.read_schema(next((out / "data").glob("*.parquet")))
    return [(f.name, str(f.type)) for f in schema]


def rows(out) -> list[dict]:
    return pq.read_table(out / "data").to_pylist()


def run_reproduce(path: str, tmp_path, **overrides):
    run_recipe(path.split("/")[0], "--config", reproduce_config(path, tmp_path, **overrides))
    out = tmp_path / "out"
    assert public_columns(out) == PUBLIC[path]
    assert rows(out), "a smoke-size reproduction writes rows"
    return out


def test_cosmopedia_regenerates_each_public_prompt(tmp_path):
    extracts = [r["text"] for r in read_jsonl(COSMOPEDIA_SEEDS)[:4]]
    public = [
        {
            "prompt": f"Write a textbook unit for college students about the extract below.\n\n{extract}",
            "text_token_length": 0,
            "text": "the original text",
            "seed_data": "web_samples_v2",
            "format": "textbook",
            "audience": "college_students",
        }
        for extract in extracts
    ]
    out = run_reproduce(
        "cosmopedia/reproduce_cosmopedia", tmp_path, dataset=str(write_jsonl(tmp_path / "in.jsonl", public))
    )
    written = rows(out)
    assert {r["prompt"] for r in written} <= {p["prompt"] for p in public}
    assert all(r["text"] != "the original text" and r["text_token_length"] > 0 for r in written)
    assert {(r["seed_data"], r["format"], r["audience"]) for r in written} == {
        ("web_samples_v2", "textbook", "college_students")
    }


def test_extra_columns_are_kept_or_split_row_aligned(tmp_path):
    public = [{"prompt": f"Explain why the sky looks blue, part {i}."} for i in range(3)]
    config = reproduce_config(
        "cosmopedia/reproduce_cosmopedia", tmp_path, dataset=str(write_jsonl(tmp_path / "in.jsonl", public))
    )
    schema = ("--output_schema", "{text: {}, prompt: {}}")
    out = tmp_path / "out"
    run_recipe("cosmopedia", "--config", config, *schema, "--output_extra_columns", "keep")
    # ours after the schema's, in the recipe's order (the input had no seed_data, format or audience)
    assert [c for c, _ in public_columns(out)] == ["text", "prompt", "text_token_length", "model", "finish_reason"]
    kept = rows(out)
    run_recipe("cosmopedia", "--config", config, *schema, "--output_extra_columns", "split", "--overwrite")
    assert [c for c, _ in public_columns(out)] == ["text", "prompt"]
    extra = pq.read_table(out / "extra").to_pylist()
    assert [{**r, **e} for r, e in zip(rows(out), extra)] == kept  # the same rows, split in two row-aligned parts


def test_alpaca_from_the_seed_tasks(tmp_path):
    out = run_reproduce(
        "self_instruct/reproduce_alpaca",
        tmp_path,
        dataset=str(shipped_data("seed_tasks.jsonl")),
        list_regex=ALPACA_LIST,
        max_new_tokens=400,
    )
    for row in rows(out):
        assert row["text"].startswith(f"### Instruction:\n{row['instruction']}\n\n")
        assert row["text"].endswith(f"### Response:\n{row['output']}")
        assert ("### Input:" in row["text"]) == bool(row["input"])


def test_self_instruct_as_prompt_completion_pairs(tmp_path):
    out = run_reproduce(
        "self_instruct/reproduce_self_instruct",
        tmp_path,
        dataset=str(shipped_data("seed_tasks.jsonl")),
        use_chat_template=True,  # the tiny model's constrained lists parse in chat mode (raw mode is tested there)
        list_regex=INSTRUCTION_LIST,
        instance_regex=INSTANCES,
        max_new_tokens=200,
        instance_max_new_tokens=120,
        num_instructions_to_generate=6,
        instance_temperature=1.0,
    )
    for row in rows(out):
        assert row["prompt"].endswith("Output:") and row["completion"].endswith("<|endoftext|>")


def test_persona_hub_writes_for_each_public_persona(tmp_path):
    public = [{"input persona": p, "synthesized text": "the original problem"} for p in PERSONAS]
    dataset = str(write_jsonl(tmp_path / "math.jsonl", public))
    out = run_reproduce("persona_hub/reproduce_persona_hub", tmp_path, dataset=dataset, compare_to=dataset)
    written = rows(out)
    assert {r["input persona"] for r in written} <= set(PERSONAS)
    assert all(r["synthesized text"] != "the original problem" for r in written)
    # compared with its original row against row, in the public columns: same schema, aligned on the persona
    comparison = json.loads((out / "stats.json").read_text())["comparison"]
    assert comparison["schema"]["same"] and comparison["aligned"]["key"] == "input persona"
    assert comparison["aligned"]["pairs"] == len(written) > 0


@pytest.mark.parametrize("path", ["tinystories/reproduce_tinystories", "tinystories/reproduce_tinystories_instruct"])
def test_tinystories(path, tmp_path):
    out = run_reproduce(path, tmp_path)
    instruct = path.endswith("instruct")
    assert all(("Story:" in r["text"]) == instruct for r in rows(out))


def magicoder_answer(body):
    seed = next(s for s in MAGICODER_SEEDS if s["seed"].strip() in last_user_message(body))
    return (
        f"Write a function that reads the input described for record {seed['raw_index']} and returns the "
        f"computed value as an integer.\n\n## Solution\n```python\ndef solve(x):\n    return x\n```\nIt returns x."
    )


def test_magicoder_from_its_own_seeds(tmp_path):
    dataset = write_jsonl(
        tmp_path / "magicoder.jsonl", [{**s, "problem": "p", "solution": "s"} for s in MAGICODER_SEEDS]
    )
    with ScriptedServer(reply=magicoder_answer) as server:
        out = run_reproduce(
            "oss_instruct/reproduce_magicoder",
            tmp_path,
            dataset=str(dataset),
            backend="openai",
            base_url=server.url,
            max_new_tokens=256,
        )
    written = rows(out)
    assert [(r["raw_index"], r["seed"], r["lang"]) for r in written] == [
        (s["raw_index"], s["seed"], s["lang"]) for s in MAGICODER_SEEDS
    ]
    assert [r["index"] for r in written] == [0, 1, 2]
    assert all(str(r["raw_index"]) in r["problem"] for r in written)


def test_magpie_conversations_in_sharegpt_layout(tmp_path):
    # greedy, the tiny model ends at once; the release's filter (input quality >= good, ...) would drop every row of
    # its noise: the funnel counts that, and the rows that pass it here show the layout
    out = run_reproduce(
        "magpie/reproduce_magpie", tmp_path, temperature=1.0, min_input_quality=None, min_difficulty=None
    )
    for row in rows(out):
        assert row["conversations"] == [
            {"from": "human", "value": row["instruction"]},
            {"from": "gpt", "value": row["response"]},
        ]
        assert row["llama_guard_2"] is None and row["reward_model"] is None and row["instruct_reward"] is None
        assert row["min_similar_uuid"] in (None, row["uuid"])  # drop_repeats: the first of each group
        assert row["gen_input_configs"]["input_generator"] == row["model"] == row["task_category_generator"]
    assert "filter_release" in [s["name"] for s in stats_of(tmp_path / "out")["stages"]]


def test_magpie_two_turn_release_writes_the_second_turn_apart(tmp_path):
    out = run_reproduce(
        "magpie/reproduce_magpie_llama31_mt", tmp_path, temperature=1.0, min_input_quality=None, min_difficulty=None
    )
    for row in rows(out):
        human, gpt, human_2, gpt_2 = row["conversations"]
        assert (human["value"], gpt["value"]) == (row["instruction"], row["response"])
        assert (human_2, gpt_2) == (
            {"from": "human", "value": row["instruction_2"]},
            {"from": "gpt", "value": row["response_2"]},
        )
        assert row["gen_input_configs"]["pre_query_template"] == "<|im_start|>user\n"  # the tiny model's prefix
        assert row["response_length"] == len(row["response"])


def test_wizardlm_from_alpaca_seeds(tmp_path):
    out = run_reproduce("evol_instruct/reproduce_wizardlm", tmp_path, dataset=str(shipped_data("alpaca_5000.json")))
    seeds = {r["instruction"] for r in json.loads(shipped_data("alpaca_5000.json").read_text())[:8]}
    assert not {r["instruction"] for r in rows(out)} & seeds  # every row is an evolved instruction


def test_an_empty_output_still_has_the_public_columns(tmp_path):
    out = tmp_path / "out"
    config = reproduce_config("magpie/reproduce_magpie", tmp_path, min_query_words=1000)  # every query dropped
    run_recipe("magpie", "--config", config)
    assert public_columns(out) == PUBLIC["magpie/reproduce_magpie"] and rows(out) == []


def test_every_reproduce_config_is_tested():
    shipped = {f"{p.parent.name}/{p.stem}" for p in (REPO / "configs").glob("*/reproduce_*.yaml")}
    assert shipped == set(PUBLIC)


def test_a_wrong_schema_entry_is_one_line_and_writes_no_data(tmp_path, capsys):
    config = reproduce_config("tinystories/reproduce_tinystories", tmp_path)
    err = recipe_error(
        capsys, "tinystories", "--config", config, "--output_schema", "{text: {from: story, type: strng}}"
    )
    assert "output_schema column 'text'" in err and "strng" in err
    err = recipe_error(capsys, "tinystories", "--config", config, "--output_schema", "{text: {from: nothing}}")
    assert "output_schema takes column(s) nothing" in err
    assert not (tmp_path / "out" / "data").exists()
