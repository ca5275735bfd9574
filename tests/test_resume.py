"""Resume after a crash: kill -9 mid-generation and rerun; crash windows of the final publish; refusals.

The SIGKILL test kills a real recipe process and runs the same command again; the publish test crashes
`publish` at every file move it makes and checks the folder holds the old version or the new one.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from datasets import Dataset, load_dataset

from builders.data import ROW_ID
from builders.generation.checkpoint import CheckpointStore
from builders.generation.engines import Completion, Sampling
from builders.generation.stage import GenerationReport, generate_column
from builders.output.sink import claim_output_dir, is_complete, publish, recover, staging_dir
from conftest import COSMOPEDIA_SEEDS, REPO, recipe_error, run_recipe

SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
ARGS = ["--config", SMOKE, "--num_samples", 24, "--batch_size", 2]  # 12 batches: a kill lands mid-run


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("resume") / "reference"
    run_recipe("cosmopedia", *ARGS, "--output_dir", out)
    return out


@pytest.mark.vllm
def test_kill_9_mid_generation_then_the_same_command_gives_the_uninterrupted_dataset(reference, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, str(REPO / "recipes" / "cosmopedia.py"), *map(str, ARGS), "--output_dir", str(out)]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    chunks = out / ".checkpoints"
    while len(list(chunks.rglob("*.parquet"))) < 4:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(chunks.rglob("*.parquet")))
    assert 4 <= finished < 12, "the kill must land mid-generation"
    assert not (out / "data").exists() and not is_complete(out)
    assert (out / ".lock").exists()  # the lock file stays; its lock died with the process: the rerun may take it

    run_recipe("cosmopedia", *ARGS, "--output_dir", out)  # the same command again
    stats = json.loads((out / "stats.json").read_text())["generation"]
    assert stats["batches_resumed"] == finished  # no finished batch is generated again
    assert stats["batches_generated"] == 12 - finished  # the one in flight and those not yet started
    assert load_dataset(str(out), split="train").to_list() == load_dataset(str(reference), split="train").to_list()
    assert is_complete(out) and not list(chunks.rglob("*.tmp"))


@pytest.mark.vllm
def test_a_rerun_that_changes_the_data_refuses_and_names_the_keys(reference, capsys):
    before = {p: p.read_bytes() for p in reference.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as exit_:
        run_recipe("cosmopedia", *ARGS, "--output_dir", reference, "--seed", 7, "--temperature", 0.9)
    assert exit_.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds a different run (differs in seed (42 -> 7), temperature (0.6 -> 0.9))" in message
    assert "pass --overwrite to start fresh" in message
    assert {p: p.read_bytes() for p in reference.rglob("*") if p.is_file()} == before

    # Keys that change speed, not rows, may change: the run resumes from its checkpoints.
    run_recipe("cosmopedia", *ARGS, "--output_dir", reference, "--max_model_len", 2048, "--max_concurrency", 8)
    assert json.loads((reference / "stats.json").read_text())["generation"]["batches_resumed"] == 12


@pytest.mark.vllm
def test_a_rerun_on_an_edited_input_refuses_and_overwrite_generates_from_the_new_input(tmp_path, capsys):
    """The issue's reproduction: 8 seeds, then 8 others in the same file; the checkpoints belong to the first."""
    lines = COSMOPEDIA_SEEDS.read_text().splitlines()
    source, out = tmp_path / "IN.jsonl", tmp_path / "out"
    command = ["--config", SMOKE, "--dataset", source, "--batch_size", 4, "--output_dir", out]
    source.write_text("\n".join(lines[:8]) + "\n")
    run_recipe("cosmopedia", *command)
    first = final_files(out)

    source.write_text("\n".join(lines[19:27]) + "\n")
    message = recipe_error(capsys, "cosmopedia", *command)
    assert message == (
        f"error: the input changed since the checkpoints in '{out}' were written (the content of dataset differs); "
        "pass --overwrite to generate again from the new input, or restore the old one"
    )
    assert final_files(out) == first  # the folder is as it was

    run_recipe("cosmopedia", *command, "--overwrite")
    generation = json.loads((out / "stats.json").read_text())["generation"]
    assert (generation["batches_resumed"], generation["batches_generated"]) == (0, 2)
    new_seeds = [json.loads(line)["text"][:40] for line in lines[19:27]]
    assert all(
        any(s.startswith(seed) for seed in new_seeds) for s in load_dataset(str(out), split="train")["seed_data"]
    )


@pytest.mark.vllm
def test_a_broken_or_misplaced_checkpoint_is_set_aside_and_generated_again(reference, tmp_path, caplog):
    """A truncated chunk, an empty one, then a valid chunk under another batch's name: each is found when read,
    set aside as *.bad and generated again; the rows are the uninterrupted run's."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    chunks = sorted((out / ".checkpoints").rglob("*.parquet"))
    assert len(chunks) == 12
    chunks[3].write_bytes(chunks[3].read_bytes()[:200])  # truncated
    chunks[7].write_bytes(b"")  # empty
    run_recipe("cosmopedia", *ARGS, "--output_dir", out)
    generation = json.loads((out / "stats.json").read_text())["generation"]
    assert (generation["batches_resumed"], generation["batches_generated"]) == (10, 2)
    assert sorted(p.name for p in chunks[0].parent.glob("*.bad")) == [chunks[3].name + ".bad", chunks[7].name + ".bad"]
    assert load_dataset(str(out), split="train").to_list() == load_dataset(str(reference), split="train").to_list()

    shutil.copyfile(chunks[0], chunks[5])  # rows 0-1 under the name of rows 10-11
    caplog.clear()
    run_recipe("cosmopedia", *ARGS, "--output_dir", out)
    generation = json.loads((out / "stats.json").read_text())["generation"]
    assert (generation["batches_resumed"], generation["batches_generated"]) == (11, 1)
    warning = next(r.getMessage() for r in caplog.records if "set aside" in r.getMessage())
    assert warning.endswith("it holds rows [0]..[1] (2), not the 2 rows [10]..[11]")
    assert load_dataset(str(out), split="train").to_list() == load_dataset(str(reference), split="train").to_list()


def final_files(out) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.relative_to(out).as_posix().startswith((".checkpoints", ".lock"))
    }


RECORD = {"recipe": "test", "fingerprint_hash": "abc", "config": {"seed": 1}, "inputs": {}}


def old_and_new_versions(out):
    """Publish an old version, then stage a new one (different files) ready to publish."""
    for version, names in (("old", ["data", "images", "README.md", "stats.json"]), ("new", ["data", "rejected"])):
        out.mkdir(parents=True, exist_ok=True)
        claim_output_dir(out, RECORD)  # a run starts: a first run's folder is not complete until it ends
        staging = staging_dir(out)
        for name in names:
            path = staging / name / "part.txt" if name in ("data", "images", "rejected") else staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{version} {name}")
        if version == "old":
            publish(staging, out, RECORD)
    return staging


def final_state(out):
    return {
        p.relative_to(out).as_posix(): p.read_text()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "run.json"
    }


def crash_on_call(n: int, replace, crash: type[Exception]):
    calls = iter(range(1, 1000))

    def crashing_replace(src, dst):
        if next(calls) == n:
            raise crash
        replace(src, dst)

    return crashing_replace


def test_a_crash_at_any_step_of_publish_leaves_the_old_version_or_the_new_one(tmp_path, monkeypatch):
    old = {"data/part.txt": "old data", "images/part.txt": "old images", "README.md": "old README.md"}
    old["stats.json"] = "old stats.json"
    new = {"data/part.txt": "new data", "rejected/part.txt": "new rejected"}
    real_replace = os.replace

    class Crash(Exception):
        pass

    outcomes = []
    for crash_at in range(1, 30):
        out = tmp_path / f"crash{crash_at}"
        staging = old_and_new_versions(out)
        monkeypatch.setattr(os, "replace", crash_on_call(crash_at, real_replace, Crash))
        try:
            publish(staging, out, RECORD)
            crashed = False
        except Crash:
            crashed = True
        monkeypatch.setattr(os, "replace", real_replace)
        if not crashed:
            break
        # The next run of the command: recover, then the folder is one version, whole.
        recover(out)
        state = {k: v for k, v in final_state(out).items() if not k.startswith(".staging/")}
        assert state in (old, new), (crash_at, state)
        assert is_complete(out)  # either version is a finished run's: the old one stays publishable until the commit
        outcomes.append("new" if state == new else "old")
    assert (
        outcomes.count("old") == 2 and outcomes.count("new") >= 6
    )  # both sides of the commit point were hit and "new" in outcomes  # the crash points covered both sides
    assert final_state(out) == new and is_complete(out)


class FlakyEngine:
    """Fails the rows whose prompt is in `down` (as a server that stayed down through the retries would)."""

    model = "fake"

    def __init__(self, down=()):
        self.down, self.calls = set(down), []

    def generate(self, prompts, sampling, seeds):
        self.calls.append(list(prompts))
        return [
            [
                Completion("", "error", error="APIConnectionError")
                if p in self.down
                else Completion(f"t-{p}", "stop", 1, 1)
            ]
            for p in prompts
        ]


def test_a_chunk_with_failed_requests_is_generated_again_by_the_next_run(tmp_path):
    ds = Dataset.from_dict({"prompt": [f"p{i}" for i in range(6)], ROW_ID: list(range(6))})
    store = CheckpointStore(tmp_path)
    kw = dict(prompt_column="prompt", output_column="text", stage="gen", store=store, seed=1, batch_size=2)
    first = generate_column(ds, FlakyEngine(down={"p3"}), Sampling(), use_chat_template=False, **kw)
    assert first["finish_reason"] == ["stop", "stop", "stop", "error", "stop", "stop"]

    engine, report = FlakyEngine(), GenerationReport()
    second = generate_column(ds, engine, Sampling(), use_chat_template=False, report=report, **kw)
    assert engine.calls == [["p2", "p3"]]  # only the chunk that held the failure
    assert (report.chunks_resumed, report.chunks_retried) == (2, 1)
    assert second["text"] == [f"t-p{i}" for i in range(6)]
