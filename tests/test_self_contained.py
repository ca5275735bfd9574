"""A fresh clone is all a user needs: nothing reads outside the repository, the shipped data is intact, and a
recipe given no --config and no --dataset runs its offline default."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

import pytest
import yaml

from conftest import DATA, REPO, read_jsonl, run_recipe_cli

# Spelled in pieces so that this file does not match itself.
OUTSIDE = [".." + "/shared", "shared" + "/data"]


def tracked_files() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()


def test_no_tracked_file_reads_outside_the_repository():
    hits = []
    for name in tracked_files():
        path = REPO / name
        if name.startswith("data/") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        hits += [f"{name}: {needle}" for needle in OUTSIDE if needle in text]
    assert not hits, "files that reach outside the clone:\n" + "\n".join(hits)


def test_shipped_data_matches_the_hashes_in_its_readme():
    listed = dict(
        (name, digest)
        for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", (DATA / "README.md").read_text(), re.M)
    )
    assert set(listed) == {p.name for p in DATA.iterdir() if p.name != "README.md"}
    for name, digest in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
    assert len(read_jsonl(DATA / "seed_tasks.jsonl")) == 175


def local_paths(value) -> list[str]:
    """Strings in a config that name a file of the repository (a data file or a template)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in local_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in local_paths(v)]
    if isinstance(value, str) and re.fullmatch(r"[\w./-]+\.(jsonl|json|txt|parquet|csv|jinja)", value):
        return [value]
    return []


@pytest.mark.parametrize("config", sorted(str(p.relative_to(REPO)) for p in REPO.glob("configs/*/*.yaml")))
def test_every_file_a_config_names_is_in_the_repository(config):
    paths = local_paths(yaml.safe_load((REPO / config).read_text()))
    missing = [p for p in paths if not (REPO / p).resolve().is_relative_to(REPO) or not (REPO / p).is_file()]
    assert not missing, f"{config} names files that are not in the repository: {missing}"


RECIPES_WITH_DEFAULTS = sorted(p.parent.name for p in REPO.glob("configs/*/demo.yaml"))


def test_every_recipe_has_an_offline_default_writing_outputs_recipe():
    recipes = sorted(p.stem for p in REPO.glob("recipes/*.py") if p.stem != "push")
    assert RECIPES_WITH_DEFAULTS == recipes
    for recipe in recipes:
        config = yaml.safe_load((REPO / "configs" / recipe / "demo.yaml").read_text())
        assert config["output_dir"] == f"outputs/{recipe}"
        assert config.get("model", "smollm2-135m-instruct") == "smollm2-135m-instruct" or recipe == "dedup"
        assert (REPO / "configs" / recipe / "default.yaml").is_file()


def test_dedup_with_no_config_runs_its_offline_default_on_shipped_data(tmp_path):
    proc = run_recipe_cli("dedup", "--output_dir", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(
        "dedup: no --config or --dataset given: running the offline default configs/dedup/demo.yaml"
    )
    assert "--config configs/dedup/default.yaml" in first
    config = yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())
    assert config["dataset"] == "data/alpaca_5000.json" and config["column"] == "output"
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["stages"][0]["rows_in"] == 5000


@pytest.mark.vllm
def test_cosmopedia_with_no_config_reads_the_shipped_seeds(tmp_path, tiny_model):
    out = tmp_path / "o"
    args = ["--model", "tiny-random", "--num_samples", "3", "--max_new_tokens", "8", "--min_text_tokens", "1"]
    proc = run_recipe_cli("cosmopedia", *args, "--quality_filters", "false", "--dedup", "false", "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("cosmopedia: no --config or --dataset given")
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["dataset"] == "configs/cosmopedia/seeds.jsonl" and config["max_seed_tokens"] == 400
    card = (out / "README.md").read_text()
    assert "synthetic-data-builders" in card and "github.com/synthetic-data-builders" not in card


def test_push_with_no_flags_prints_its_usage_in_one_line():
    proc = run_recipe_cli("push")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: usage: python recipes/push.py --output_dir")
