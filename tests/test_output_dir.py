"""One run per output folder, claimed only after every check, and published only whole (issue 16, items 1, 7, 8).

Two real processes meet on one folder; a run that fails leaves the folder as it was (a finished run's output
stays publishable, `--overwrite` or not); `recipes/push.py` publishes only a folder whose every file is the one
its run wrote.
"""

import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
import yaml
from datasets import Dataset, load_dataset
from scripted_server import ScriptedServer

from builders.errors import UserError
from builders.output.hub import check_publishable
from conftest import REPO, load_recipe, recipe_error, run_recipe, run_recipe_cli

SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
# The scripted server's texts are two tokens of "out:<seed>": filters that would drop them are off.
LENIENT = ("--min_text_tokens", 1, "--quality_language", "null", "--quality_max_non_letters", "null")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished smoke run (the tiny model through vLLM)."""
    out = tmp_path_factory.mktemp("finished") / "out"
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", out, "--batch_size", 4)
    return out


def final_files(out) -> dict[str, bytes]:
    """Every file of the folder but the checkpoints and the lock, by path."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.relative_to(out).as_posix().startswith((".checkpoints", ".lock"))
    }


def test_a_second_run_on_a_busy_folder_is_refused_naming_the_first(tmp_path):
    """The first run (a real process) holds the folder while its requests wait on a gate; a second process with
    another config is refused with one line naming the holder; the first then finishes with its own rows."""
    out, gate = tmp_path / "busy", threading.Event()
    with ScriptedServer(lambda body, attempt: None if gate.wait(300) else (503, {})) as server:
        served = ("--config", SMOKE, "--output_dir", out, "--backend", "openai", "--base_url", server.url, *LENIENT)
        first = subprocess.Popen(
            [sys.executable, str(REPO / "recipes" / "cosmopedia.py"), *map(str, served)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while not server.bodies:  # its first batch is in flight: the folder is claimed
                assert first.poll() is None, first.stderr.read()[-3000:]
                time.sleep(0.05)
            second = run_recipe_cli("cosmopedia", *served, "--seed", 7)
        finally:
            gate.set()
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-3000:]
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and not any("Traceback" in line for line in lines)
    assert lines[-1].startswith(f"error: output_dir '{out}' is in use by another run (pid {first.pid} on ")
    assert "recipes/cosmopedia.py --config" in lines[-1] and lines[-1].endswith("choose another output_dir")
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 42  # the first run's rows, whole
    assert len(load_dataset(str(out), split="train")) == 8
    check_publishable(out)


def test_a_run_that_finds_the_folder_taken_after_its_start_writes_nothing(tmp_path):
    """The race: the folder was free when the run started, another process locked it before the first write."""
    from builders.config import parse_config
    from builders.run import Run

    cosmopedia = load_recipe("cosmopedia")
    out = tmp_path / "raced"
    run = Run(
        parse_config(cosmopedia.CosmopediaConfig, ["--config", SMOKE, "--output_dir", str(out)]), cosmopedia.INFO
    )
    out.mkdir()
    hold = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, 2); "
    holder = subprocess.Popen(
        [sys.executable, "-c", hold + "print('held', flush=True); time.sleep(120)", str(out / ".lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=r"is in use by another run \(a process that is starting\)"):
            run.finish(Dataset.from_dict({"text": []}), seed_data="-")
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # no run.json, no data


def test_a_filesystem_without_file_locks_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = tmp_path / "o"
    message = recipe_error(capsys, "cosmopedia", "--config", SMOKE, "--output_dir", out)
    assert message.startswith(f"error: output_dir '{out}' is on a filesystem without file locks (")
    assert "No locks available" in message and "Lustre mounted with -o flock" in message
    assert not out.exists()


def test_an_output_dir_that_is_a_file_or_inside_one_or_holds_a_broken_run_json_is_refused(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    run = ("cosmopedia", "--config", SMOKE)
    assert f"output_dir '{file}' is a file; choose a folder path" in recipe_error(capsys, *run, "--output_dir", file)
    message = recipe_error(capsys, *run, "--output_dir", file / "out")
    assert f"output_dir '{file / 'out'}' cannot be made: '{file}' is a file" in message
    assert file.read_text() == "mine"

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"recipe": "cosmo')  # a crash of another tool mid-write
    message = recipe_error(capsys, *run, "--output_dir", broken)
    assert f"output_dir '{broken}' holds a run.json that cannot be read (" in message
    assert "pass --overwrite to replace what the folder holds" in message
    assert final_files(broken) == {"run.json": b'{"recipe": "cosmo'}


def test_an_output_dir_this_user_cannot_write_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes through modes; the immutable flag holds even against root (ext4)
        subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        message = recipe_error(capsys, "cosmopedia", "--config", SMOKE, "--output_dir", locked / "out")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert f"cannot be written: '{locked}' is not writable by this user" in message
    assert not (locked / "out").exists()


@pytest.mark.vllm
def test_a_failed_run_leaves_the_folder_as_it_was_and_a_finished_run_publishable(finished, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    before = final_files(out)

    # Fails before its first write (the model cannot be loaded): the folder is not even claimed.
    missing = tmp_path / "no-model"
    message = recipe_error(
        capsys, "cosmopedia", "--config", SMOKE, "--output_dir", tmp_path / "fresh", "--model", missing
    )
    assert f"model '{missing}'" in message and not (tmp_path / "fresh").exists()

    # --overwrite, then a failure after the claim (the server fails every request): the old output is whole.
    with ScriptedServer(lambda body, attempt: (400, {})) as server:
        again = (
            "--config",
            SMOKE,
            "--output_dir",
            out,
            "--overwrite",
            "--backend",
            "openai",
            "--base_url",
            server.url,
        )
        assert "every request of its first batch failed" in recipe_error(capsys, "cosmopedia", *again)
    assert final_files(out) == before  # run.json included: still the finished run's record, complete
    check_publishable(out)

    # The corrected command replaces it.
    run_recipe("cosmopedia", "--config", SMOKE, "--output_dir", out, "--batch_size", 4, "--overwrite", "--seed", 7)
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 7
    check_publishable(out)


@pytest.mark.vllm
def test_push_refuses_a_folder_whose_files_are_not_the_ones_its_run_wrote(finished, tmp_path, capsys):
    def truncate(path):
        path.write_bytes(path.read_bytes()[:100])

    def garble(path):  # same size, not JSON
        path.write_bytes(b"{" + b" " * (path.stat().st_size - 1))

    shard = "data/train-00000-of-00001.parquet"
    size = (finished / shard).stat().st_size
    for damage, name, expected in [
        (os.unlink, "stats.json", "stats.json is missing"),
        (os.unlink, "config.yaml", "config.yaml is missing"),
        (truncate, shard, f"{shard} has 100 bytes, not the {size} its run wrote"),
        (garble, "stats.json", "stats.json does not parse (JSONDecodeError"),
    ]:
        out = tmp_path / f"damaged-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(finished, out)
        damage(out / name)
        message = recipe_error(capsys, "push", "--output_dir", out, "--hub_repo_id", "org/data")
        assert f"'{out}' is not a finished output folder ({expected}" in message, message
        assert "the same command again rebuilds it from its checkpoints" in message
    bad_id = recipe_error(capsys, "push", "--output_dir", finished, "--hub_repo_id", "org/my data")
    assert "hub_repo_id 'org/my data' is not a valid repository id (" in bad_id
    files = json.loads((finished / "run.json").read_text())["files"]
    assert {"README.md", "config.yaml", "stats.json", shard} <= set(files)
