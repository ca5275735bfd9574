"""Data-parallel generation: `accelerate launch` with two processes on the CPU, each with its own vLLM engine.

The merged output of a two-process launch must equal a one-process run of the same config, also after one
process was killed and the launch was started again.
"""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from datasets import load_dataset

from builders.errors import UserError
from builders.generation.distributed import core_share, cpu_bind_spec, gpu_share, my_chunks
from conftest import REPO, free_port, run_recipe

SMOKE = REPO / "configs" / "cosmopedia" / "smoke.yaml"
CPU_TWO_PROCESSES = REPO / "configs" / "accelerate" / "cpu_two_processes.yaml"


def launch_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def accelerate_launch(script, *args, config=CPU_TWO_PROCESSES) -> list[str]:
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--main_process_port",
        str(free_port()),  # other test sessions may launch on this machine at the same time
        str(script),
        *map(str, args),
    ]


def launch_recipe(*args, timeout=600) -> subprocess.CompletedProcess:
    command = accelerate_launch(REPO / "recipes" / "cosmopedia.py", *args)
    return subprocess.run(command, cwd=REPO, env=launch_env(), capture_output=True, text=True, timeout=timeout)


def rows(output_dir) -> list[dict]:
    return load_dataset(str(output_dir), split="train").to_list()


def stats(output_dir) -> dict:
    return json.loads((output_dir / "stats.json").read_text())


# -- pure parts: who gets which chunks, GPUs and cores


def test_chunks_split_into_contiguous_runs_that_cover_everything(monkeypatch):
    import builders.generation.distributed as distributed

    for count in (1, 2, 3, 8):
        runs = []
        for index in range(count):
            monkeypatch.setattr(distributed, "process_index", lambda i=index: i)
            monkeypatch.setattr(distributed, "num_processes", lambda c=count: c)
            runs.append(my_chunks(10))
        assert [i for r in runs for i in r] == list(range(10))
        assert max(len(r) for r in runs) - min(len(r) for r in runs) <= 1


def test_each_process_gets_its_own_gpus_and_cores():
    gpus = [str(i) for i in range(8)]
    assert [gpu_share(gpus, rank, 4, 2) for rank in range(4)] == [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"]]
    assert gpu_share(["3"], 5, 8, 1) == ["3"]  # the scheduler already gave this process its GPU
    with pytest.raises(UserError, match="launch 4 processes per node"):
        gpu_share(gpus, 0, 8, 2)
    assert [core_share([0, 1], rank, 2) for rank in range(2)] == [[0], [1]]
    assert core_share(list(range(16)), 1, 3) == [5, 6, 7, 8, 9]
    with pytest.raises(UserError, match="only 2 CPU cores"):
        core_share([0, 1], 2, 3)
    assert cpu_bind_spec([4, 5, 6, 7], 2) == "4,5|6,7"


PROBE = """
import sys, time
from datetime import timedelta
import builders.generation.distributed as distributed

distributed.STORE_TIMEOUT = timedelta(seconds=1)  # one store request; the wait below lasts longer than this
rank = distributed.process_index()
if rank == 1:
    time.sleep(4)
print(rank, distributed.gather("probe", {"rank": rank, "late": rank == 1}), flush=True)
"""


def test_processes_wait_for_a_late_one_without_a_deadline(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run(
        accelerate_launch(script), cwd=tmp_path, env=launch_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = sorted(line for line in proc.stdout.splitlines() if line[:1] in "01")
    everyone = "[{'rank': 0, 'late': False}, {'rank': 1, 'late': True}]"
    assert lines == [f"0 {everyone}", f"1 {everyone}"]


# -- the real thing: two vLLM engines, one per process


@pytest.mark.vllm
def test_two_processes_give_the_one_process_output(tmp_path):
    args = ["--config", SMOKE, "--batch_size", 2]  # 8 rows in 4 chunks: 2 per process
    run_recipe("cosmopedia", *args, "--output_dir", tmp_path / "one")
    proc = launch_recipe(*args, "--output_dir", tmp_path / "two")
    assert proc.returncode == 0, proc.stderr[-3000:]

    assert rows(tmp_path / "two") == rows(tmp_path / "one")
    one, two = stats(tmp_path / "one"), stats(tmp_path / "two")
    assert two["stages"] == one["stages"] and two["tokens"] == one["tokens"]
    assert two["generation"]["processes"] == 2
    assert two["generation"]["batches_generated_per_process"] == [2, 2]
    assert proc.stdout.count("rows kept:") == 1  # one summary, one writer
    assert not list((tmp_path / "two").glob(".staging*"))


@pytest.mark.vllm
@pytest.mark.slow
def test_killing_one_process_and_launching_again_resumes(tmp_path):
    # 40 rows in 20 chunks, long enough generations that process 1 can be killed part way through its 10 chunks.
    args = ["--config", SMOKE, "--num_samples", 40, "--batch_size", 2, "--max_new_tokens", 256]
    out = tmp_path / "two"
    command = accelerate_launch(REPO / "recipes" / "cosmopedia.py", *args, "--output_dir", out)
    launcher = subprocess.Popen(command, cwd=REPO, env=launch_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stage = None
    deadline = time.monotonic() + 600
    while stage is None or not any(int(p.name[:10]) >= 20 for p in stage.glob("*.parquet")):
        assert time.monotonic() < deadline and launcher.poll() is None, "process 1 wrote no chunk"
        stage = next(out.glob(".checkpoints/*/generate"), None)
        time.sleep(0.05)
    victim = next(
        p
        for p in psutil.Process(launcher.pid).children(recursive=True)
        if "cosmopedia.py" in " ".join(p.cmdline()) and p.environ().get("RANK") == "1"
    )
    victim.send_signal(signal.SIGKILL)
    launcher.communicate(timeout=300)
    assert launcher.returncode != 0
    assert not (out / "data").exists()
    done = len(list(stage.glob("*.parquet")))
    assert 0 < done < 20

    proc = launch_recipe(*args, "--output_dir", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    generation = stats(out)["generation"]
    assert generation["batches_resumed"] == done and generation["batches_generated"] == 20 - done

    run_recipe("cosmopedia", *args, "--output_dir", tmp_path / "one")
    assert rows(out) == rows(tmp_path / "one")
