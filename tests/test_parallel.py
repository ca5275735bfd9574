"""Every CPU stage gives the same rows, in the same order, with the same reasons, on one process or several."""

import json
import logging
import multiprocessing
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset

from builders import parallel
from builders.config import RecipeConfig
from builders.dedup.shingles import reference_units
from builders.errors import UserError
from builders.filters.checks import REASON, apply_checks, generation_checks
from builders.filters.decontaminate import Benchmark, decontaminate
from builders.filters.quality import quality_checks
from builders.generation import distributed
from builders.methods.code.sandbox import run_many
from builders.output.diversity import distinct_ngrams, distinct_shares
from conftest import REPO, read_output, run_recipe, shipped_data, stats_of, write_jsonl


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """1,200 real texts: Shakespeare windows of 30 to 300 words (verse repeats lines), Alpaca answers, and a few
    planted failures (markup, a refusal, a loop) spread over the whole list, so that every shard sees drops."""
    lines = shipped_data("tinyshakespeare.txt").read_text().splitlines()
    answers = [r["output"] for r in json.loads(shipped_data("alpaca_5000.json").read_text())]
    rng = random.Random(7)
    out = []
    for i in range(1200):
        if i % 3 == 2:
            out.append(answers[i])
            continue
        start, words, target, window = rng.randrange(len(lines)), 0, rng.randint(30, 300), []
        while words < target and start < len(lines):
            window.append(lines[start])
            words, start = words + len(lines[start].split()), start + 1
        out.append("\n".join(window))
    for i in range(0, 1200, 97):
        out[i] = rng.choice(
            [
                "<div><p>" + answers[i] + "</p><br><span>more</span></div>",
                "As an AI language model, I cannot write that. " + answers[i],
                "the end of it all. " * 12,
            ]
        )
    return out


@pytest.fixture
def pool_always(monkeypatch):
    """A pool even for the small inputs of a test (the real rule: one process per 0.5 s of one-core work)."""
    monkeypatch.setattr(parallel, "SECONDS_PER_PROCESS", 1e-9)


def quality(**overrides):
    config = RecipeConfig(quality_language="en", quality_min_tokens=20, quality_max_tokens=250, **overrides)
    return quality_checks(config, "text")


def outcome(result):
    kept, rejected, counts = result
    return list(kept["text"]), list(rejected["text"]), list(rejected[REASON]), dict(counts)


def test_quality_checks_give_the_same_rows_and_reasons_on_two_processes(texts, pool_always, caplog):
    ds = Dataset.from_dict({"text": texts, "n": list(range(len(texts)))})
    one = outcome(apply_checks(ds, quality(), "quality", num_proc=1))
    with caplog.at_level(logging.INFO, logger="builders"):
        two = outcome(apply_checks(ds, quality(), "quality", num_proc=2))
    assert f"quality: {len(texts) - parallel.PROBE_ROWS} rows on 2 processes" in caplog.text
    assert two == one
    kept, rejected, reasons, counts = one
    assert len(kept) + len(rejected) == len(texts) and sum(counts.values()) == len(rejected)
    assert {"html_tags", "refusal", "looped_phrase", "too_short", "too_long", "repeated_lines"} <= set(counts)
    assert [t for t in texts if t in set(kept)] == kept  # the order of the input


def test_a_selection_keeps_its_order_on_several_processes(texts, pool_always):
    ds = Dataset.from_dict({"text": texts}).select(range(len(texts) - 1, -1, -3))  # an indices mapping, reversed
    assert outcome(apply_checks(ds, quality(), "q", num_proc=3)) == outcome(apply_checks(ds, quality(), "q", 1))


def test_cheap_checks_start_no_pool(texts, caplog):
    rows = Dataset.from_dict({"text": texts * 10, "finish_reason": ["stop", "length"] * (len(texts) * 5)})
    with caplog.at_level(logging.INFO, logger="builders"):
        kept, _, counts = apply_checks(rows, generation_checks("text", drop_truncated=True), "gen", num_proc=2)
    assert "processes" not in caplog.text  # 12,000 rows of microsecond checks: a pool would cost more
    assert dict(counts) == {"truncated": len(rows) // 2} and len(kept) == len(rows) // 2


def test_a_check_that_does_not_pickle_runs_here_with_a_warning(texts, pool_always, caplog):
    pending = (i for i in range(3))  # a generator: dill refuses it

    def odd_length(row):
        return (pending is not None and len(row["text"]) % 2 == 0, "odd_length")

    ds = Dataset.from_dict({"text": texts})
    with caplog.at_level(logging.WARNING, logger="builders"):
        kept, _, counts = apply_checks(ds, [odd_length], "odd", num_proc=2)
    assert "odd: runs on one process, its function does not pickle" in caplog.text
    assert list(kept["text"]) == [t for t in texts if len(t) % 2 == 0]


def test_decontamination_removes_the_same_rows_on_two_processes(texts, pool_always):
    quiz = [t for t in texts[1::50] if len(t.split()) >= 12]
    rows = list(texts)
    for k, i in enumerate(range(5, len(rows), 131)):
        rows[i] = f"Exercise {k}: " + quiz[k % len(quiz)] + " Answer below."
    ds = Dataset.from_dict({"text": rows})
    benchmarks = [Benchmark("quiz", quiz), Benchmark("other", quiz[::2])]
    one = decontaminate(ds, "text", benchmarks, batch_size=100, num_proc=1)
    two = decontaminate(ds, "text", benchmarks, batch_size=100, num_proc=2)
    assert list(two[0]["text"]) == list(one[0]["text"])
    assert list(two[1]["benchmark"]) == list(one[1]["benchmark"]) and two[2] == one[2]
    assert one[2]["quiz"] >= len(range(5, len(rows), 131))  # the planted copies (and the originals) are found


def test_distinct_ngrams_hashed_on_threads_equal_the_definition(texts):
    def by_tuples(n):
        grams = [tuple(w[i : i + n]) for w in map(reference_units, texts) for i in range(len(w) - n + 1)]
        return len(set(grams)) / len(grams)

    for n in (1, 2, 3):
        assert distinct_ngrams(texts, n, num_proc=1) == by_tuples(n)
    assert distinct_shares(texts, (1, 2, 3), num_proc=2) == distinct_shares(texts, (1, 2, 3), num_proc=1)


def test_sandbox_runs_functions_at_once_and_returns_them_in_order():
    jobs = [(f"def f(x):\n    return x * {k}\n", "f", [(k,), ("a",)]) for k in range(6)]
    results = run_many(jobs, workers=3, timeout_s=10.0)
    assert [[r["output"] for r in result] for result in results] == [[repr(k * k), repr("a" * k)] for k in range(6)]


def test_torch_threads_are_given_back():
    code = (
        "import torch; from builders.parallel import torch_threads\n"
        "before = torch.get_num_threads()\n"
        "with torch_threads(1):\n    inside = torch.get_num_threads()\n"
        "print(inside, torch.get_num_threads() == before)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # a fresh process: no vLLM engine has bound torch's threads
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout == "1 True\n"


def test_torch_threads_left_to_a_vllm_engine_that_bound_them(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)  # what vLLM's CPU worker does
    with parallel.torch_threads(1):
        pass
    assert calls == []


def test_default_is_this_process_share_of_its_cores(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    assert parallel.resolve_num_proc(None) == cores and parallel.resolve_num_proc(3) == 3
    launch = distributed.Topology(rank=1, world_size=4, local_rank=1, local_world_size=2)
    monkeypatch.setattr(distributed, "topology", lambda: launch)
    assert parallel.resolve_num_proc(None) == max(1, cores // 2)  # two processes on this node share its cores
    monkeypatch.setattr(distributed, "_cores_placed", True)  # place_engine already narrowed the affinity
    assert parallel.resolve_num_proc(None) == cores


def test_num_proc_below_one_is_a_config_error():
    with pytest.raises(UserError, match="'num_proc' must be >= 1 or null"):
        RecipeConfig(num_proc=0)
    assert RecipeConfig(num_proc=2).data_fingerprint() == RecipeConfig().data_fingerprint()


def test_probe_alone_for_small_inputs():
    calls = []

    def lengths(batch):
        calls.append(len(batch["text"]))
        return [len(t) for t in batch["text"]]

    ds = Dataset.from_dict({"text": ["a", "bb", "ccc"]})
    assert parallel.map_rows(ds, lengths, num_proc=4, desc="x", dtype="int64") == [1, 2, 3]
    assert calls == [3] and np.sum(calls) == len(ds)


def test_dedup_recipe_gives_the_same_output_on_one_and_two_processes(texts, tmp_path, pool_always, caplog):
    """recipes/dedup.py with quality filters and decontamination: data, rejected rows, funnel and card figures
    are the same with --num_proc 1 and 2 (and the pool did run)."""
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts + texts[:40])])
    quiz = write_jsonl(tmp_path / "quiz.jsonl", [{"q": t} for t in texts[4::150] if len(t.split()) >= 12])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"decontaminate": [{"path": str(quiz), "columns": ["q"]}]}))
    outputs = {}
    for num_proc in (1, 2):
        out = tmp_path / f"out{num_proc}"
        with caplog.at_level(logging.INFO, logger="builders"):
            run_recipe(
                "dedup",
                *("--config", tmp_path / "config.yaml", "--dataset", rows, "--output_dir", out),
                *("--quality_filters", "true", "--quality_language", "en", "--keep_rejected", "true"),
                *("--num_proc", num_proc),
            )
        stats = stats_of(out)
        outputs[num_proc] = (read_output(out), read_output(out, "rejected"), stats["stages"], stats["diversity"])
    assert "Filtering (quality): " in caplog.text and "rows on 2 processes" in caplog.text
    assert "Decontaminating: " in caplog.text
    assert outputs[2] == outputs[1]
    stages = {s["name"]: s for s in outputs[1][2]}
    assert list(stages) == ["input", "quality", "decontaminate", "dedup"]
    assert (
        stages["quality"]["dropped"] and stages["decontaminate"]["dropped"]["contaminated"] >= 8
    )  # quiz rows, copies, overlapping windows
    assert stages["dedup"]["dropped"]["exact_duplicate"] >= 30


@pytest.mark.vllm
def test_checks_fork_a_pool_beside_a_running_vllm_engine(tmp_path, pool_always, monkeypatch, caplog):
    """Cosmopedia's smoke run (the tiny model through the real engine, in this process): its filter stage on a
    pool of 2 processes writes what one process writes, and leaves the `spawn` start method vLLM needs."""
    monkeypatch.setattr(parallel, "PROBE_ROWS", 2)  # the smoke run has a handful of rows
    multiprocessing.set_start_method("spawn", force=True)
    smoke = REPO / "configs" / "cosmopedia" / "smoke.yaml"
    outputs = {}
    for num_proc in (1, 2):
        with caplog.at_level(logging.INFO, logger="builders"):
            run_recipe(
                "cosmopedia", "--config", smoke, "--output_dir", tmp_path / f"o{num_proc}", "--num_proc", num_proc
            )
        outputs[num_proc] = (read_output(tmp_path / f"o{num_proc}"), stats_of(tmp_path / f"o{num_proc}")["stages"])
    assert "Filtering (filter): " in caplog.text and "rows on 2 processes" in caplog.text
    assert outputs[2] == outputs[1] and len(outputs[1][0][1]) > 0
    assert multiprocessing.get_start_method() == "spawn"
