"""Orchestration of the generation stage: batching, checkpoints, resume, seeds. A fake engine stands in for
vLLM here; tests/test_cosmopedia_recipe.py proves generation through the real engine."""

from datasets import Dataset

from builders.data import ROW_ID
from builders.generation.checkpoint import CheckpointStore
from builders.generation.engines import Completion, Sampling
from builders.generation.stage import GenerationReport, as_prompt, generate_column, row_seed


class RecordingEngine:
    model = "fake"

    def __init__(self):
        self.calls = []

    def generate(self, prompts, sampling, seeds):
        self.calls.append(list(prompts))
        return [
            [
                Completion(f"{p[-1]['content'] if isinstance(p, list) else p}|{s}|{k}", "stop", 3, 2)
                for k in range(sampling.n)
            ]
            for p, s in zip(prompts, seeds)
        ]


def prompts(n):
    return Dataset.from_dict({"prompt": [f"p{i}" for i in range(n)], ROW_ID: list(range(n))})


def run(ds, engine, store, **kw):
    kw.setdefault("sampling", Sampling())
    return generate_column(
        ds,
        engine,
        prompt_column="prompt",
        output_column="text",
        stage="gen",
        store=store,
        seed=1,
        batch_size=4,
        use_chat_template=False,
        **kw,
    )


def test_each_map_batch_is_one_engine_call_and_rows_keep_their_order(tmp_path):
    engine = RecordingEngine()
    out = run(prompts(10), engine, CheckpointStore(tmp_path))
    assert [len(c) for c in engine.calls] == [4, 4, 2]
    assert out["prompt"] == [f"p{i}" for i in range(10)]
    assert out["text"][3] == f"p3|{row_seed(1, 3, 'gen')}|0"
    assert out["finish_reason"] == ["stop"] * 10 and out["completion_tokens"] == [2] * 10


def test_rerun_generates_nothing_and_lost_chunks_are_redone(tmp_path):
    store = CheckpointStore(tmp_path)
    first = run(prompts(10), RecordingEngine(), store)
    again_engine = RecordingEngine()
    report = GenerationReport()
    again = run(prompts(10), again_engine, store, report=report)
    assert again_engine.calls == [] and report.chunks_resumed == 3
    assert again.to_list() == first.to_list()

    store.chunks("gen")[1].unlink()  # as if the run died while generating the second batch
    third_engine = RecordingEngine()
    third = run(prompts(10), third_engine, store)
    assert third_engine.calls == [["p4", "p5", "p6", "p7"]]
    assert third.to_list() == first.to_list()


def test_n_samples_become_rows_with_their_index(tmp_path):
    out = run(prompts(3), RecordingEngine(), CheckpointStore(tmp_path), sampling=Sampling(n=2))
    assert out["prompt"] == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert out["sample_index"] == [0, 1, 0, 1, 0, 1]


def test_row_seed_is_stable_and_spread():
    assert row_seed(42, 7, "gen") == row_seed(42, 7, "gen")
    seeds = {row_seed(42, i, "gen") for i in range(10_000)}
    assert len(seeds) == 10_000 and all(0 <= s < 2**31 for s in seeds)
    assert row_seed(42, 7, "gen") != row_seed(42, 7, "other") != row_seed(43, 7, "gen")


def test_chat_mode_wraps_strings_with_the_system_prompt():
    assert as_prompt("hi", True, "be kind") == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "hi"},
    ]
    assert as_prompt("hi", False, "be kind") == "hi"
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>"}]
    assert as_prompt(messages, True, None) == messages
