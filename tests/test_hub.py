"""Publishing: the real huggingface_hub client against a Hub on 127.0.0.1 (tests/fake_hub.py).

The recipe pushes at the end of a run, `recipes/push.py` pushes a finished folder later; the tests read
the files that arrived on the server, and look for the token everywhere it must not be.
"""

import contextlib
import io
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset, load_dataset
from fake_hub import TOKEN, FakeHub, online
from huggingface_hub import DatasetCard

from conftest import REPO, load_recipe, recipe_error, run_recipe

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
FINAL = ["README.md", "config.yaml", "data", "images", "stats.json"]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One smoke run that pushes at its end; what it printed and logged, at every level, is kept."""
    out = tmp_path_factory.mktemp("hub") / "out"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    with FakeHub(token=TOKEN) as hub:
        try:
            with online(hub), contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                run_recipe(
                    "cosmopedia",
                    *("--config", SMOKE, "--output_dir", out, "--batch_size", 4),
                    *("--push_to_hub", "true", "--hub_repo_id", "builders-test/smoke"),
                )
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        yield SimpleNamespace(hub=hub, out=out, output=stream.getvalue())


def local_final_files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for name in FINAL
        for p in ([out / name] if (out / name).is_file() else sorted((out / name).rglob("*")))
        if p.is_file()
    }


def test_recipe_pushes_data_card_config_stats_and_images_in_one_commit(published):
    hub, out = published.hub, published.out
    commits = hub.commits("builders-test/smoke")
    assert [c["message"] for c in commits] == ["initial commit", "Upload out (default) with builders"]
    arrived = hub.files("builders-test/smoke")
    local = local_final_files(out)
    assert {p.split("/")[0] for p in local} == set(FINAL)  # the run wrote every kind of file
    assert set(arrived) == set(local) | {".gitattributes"}  # no checkpoints, no run.json
    for path, data in local.items():
        if path != "README.md":
            assert arrived[path] == data, path
    remote_card, local_card = DatasetCard(arrived["README.md"].decode()), DatasetCard.load(out / "README.md")
    assert remote_card.data.to_dict() == local_card.data.to_dict() and remote_card.text == local_card.text
    assert arrived["images/text_length_histogram.png"].startswith(b"\x89PNG")
    assert "![Distribution of `text` lengths](images/text_length_histogram.png)" in remote_card.text

    rows = pq.read_table(pa.BufferReader(arrived["data/train-00000-of-00001.parquet"])).to_pylist()
    assert rows == load_dataset(str(out), split="train").to_list() and len(rows) > 0
    assert json.loads(arrived["stats.json"])["stages"][-1]["rows_out"] == len(rows)
    assert yaml.safe_load(arrived["config.yaml"])["hub_repo_id"] == "builders-test/smoke"


def test_the_card_that_arrived_says_how_the_data_was_made(published):
    """Every part of the card the issue asks for, read from the Hub and checked against the data and stats."""
    arrived = published.hub.files("builders-test/smoke")
    card = DatasetCard(arrived["README.md"].decode())
    stats, config = json.loads(arrived["stats.json"]), yaml.safe_load(arrived["config.yaml"])
    rows = pq.read_table(pa.BufferReader(arrived["data/train-00000-of-00001.parquet"])).to_pylist()
    meta = card.data
    assert (meta.license, meta.language, meta.task_categories) == ("apache-2.0", ["en"], ["text-generation"])
    assert meta.size_categories == ["n<1K"] and meta.pretty_name == "Cosmopedia-style synthetic textbooks"
    assert meta.tags[:2] == ["synthetic", "cosmopedia"]
    assert meta.get("configs") is None  # the default config in the standard layout, data/train-* (the train split)

    text = card.text
    assert (
        "([Cosmopedia: how to create large-scale synthetic data for pre-training](https://huggingface.co/blog/cosmopedia))"
        in text
    )
    assert "| model | `tiny-random` |" in text and "| backend | vllm (chat template) |" in text
    sampling = ", ".join(f"{k}={config[k]}" for k in ["max_new_tokens", "temperature", "top_p", "top_k"])
    assert f"| sampling | {sampling}, repetition_penalty={config['repetition_penalty']} |" in text
    assert "| seed data | `configs/cosmopedia/seeds.jsonl` (column `text`) |" in text
    assert "| prompt templates | `builders/prompts/cosmopedia/*.jinja`" in text and "| seed | 42 |" in text
    for stage in stats["stages"]:  # the funnel, drops by reason included
        reasons = ", ".join(f"{k}: {v}" for k, v in stage["dropped"].items()) or "-"
        assert f"| {stage['name']} | {stage['rows_in']} | {stage['rows_out']} | {reasons} |" in text
    details = {s["name"]: s["details"] for s in stats["stages"] if s.get("details")}
    assert "dedup" in details  # the near-dedup settings and what it found
    for name, values in details.items():
        assert f"- **{name}**: " + ", ".join(f"{k} = {v}" for k, v in values.items()) in text

    assert f"- tokens: {stats['tokens']['prompt']} prompt, {stats['tokens']['completion']} completion" in text
    lengths = np.array([r["text_token_length"] for r in rows])
    mean, median, p95 = round(float(lengths.mean()), 1), float(np.median(lengths)), float(np.percentile(lengths, 95))
    assert f"length in tokens: mean {mean}, median {median}, p95 {p95}, max {lengths.max()}" in text
    assert stats["text_length"] == {
        "column": "text",
        "unit": "tokens",
        "mean": mean,
        "median": median,
        "p95": p95,
        "max": int(lengths.max()),
    }
    assert set(stats["diversity"]) >= {"distinct-1", "distinct-2", "distinct-3"} and "### Diversity" in text
    for name, value in stats["diversity"].items():
        assert f"- {name}: {value}" in text

    example = json.loads(text.split("## Example\n\n```json\n", 1)[1].split("```", 1)[0])
    assert example.keys() == rows[0].keys()
    for key, value in rows[0].items():  # long texts are cut at 600 characters
        assert example[key] == value or (len(value) > 600 and example[key] == value[:600] + " ..."), key
    assert 'ds = load_dataset("builders-test/smoke", split="train")' in text
    reproduce = text.split("## Reproduce", 1)[1]
    assert "python recipes/cosmopedia.py --config config.yaml" in reproduce
    assert yaml.safe_load(reproduce.split("```yaml\n", 1)[1].split("```", 1)[0]) == config


def test_the_card_names_the_model_revision(tmp_path):
    from builders.output.card import build_card
    from builders.output.funnel import Funnel

    cosmopedia = load_recipe("cosmopedia")
    config = cosmopedia.CosmopediaConfig(model="org/model", model_revision="0123abc", output_dir=str(tmp_path))
    ds = Dataset.from_dict({"text": ["a b c"], "completion_tokens": [3]})
    card = build_card(ds, cosmopedia.INFO, config, Funnel("cosmopedia", "org/model"), seed_data="x")
    assert "| model | `org/model` (revision `0123abc`) |" in card.text


def test_hub_private_creates_a_private_repo(published):
    with online(published.hub):
        for repo, flag in [("org/private", ["--hub_private", "true"]), ("org/public", [])]:
            load_recipe("push").main(["--output_dir", str(published.out), "--hub_repo_id", repo, *flag])
    assert published.hub.repos["org/private"]["private"] is True
    assert published.hub.repos["org/public"]["private"] is False


def test_the_token_is_used_but_never_written_or_logged(published):
    assert any(auth == f"Bearer {TOKEN}" for _, _, auth in published.hub.requests)  # the push did authenticate
    assert "pushed to http://127.0.0.1" in published.output
    assert TOKEN not in published.output
    for path in published.out.rglob("*"):  # card, config, stats, data, checkpoints, run.json
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    for path, data in published.hub.files("builders-test/smoke").items():
        assert TOKEN.encode() not in data, path


def test_a_failed_push_keeps_the_output_and_push_py_publishes_it_later(published, tmp_path, capsys):
    out = tmp_path / "later"
    shutil.copytree(published.out, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with FakeHub(token=TOKEN) as hub, online(hub):
        hub.fail_commits = 1
        with pytest.raises(SystemExit) as exit_:
            load_recipe("push").main(["--output_dir", str(out), "--hub_repo_id", "org/later"])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert TOKEN not in err  # the server echoed it in its error; we print the error without it
        message = err.strip().splitlines()[-1]
        assert "push to 'org/later' failed (HfHubHTTPError" in message and "500" in message
        assert f"the local output in '{out}' is complete" in message
        retry = f"python recipes/push.py --output_dir {out} --hub_repo_id org/later"
        assert f"retry with `{retry}`" in message
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
        assert len(hub.commits("org/later")) == 1  # nothing but the initial commit

        load_recipe("push").main(retry.split()[2:])  # the command the message gave
        assert "pushed to" in capsys.readouterr().out
        assert [c["message"] for c in hub.commits("org/later")][1:] == ["Upload later (default) with builders"]
        assert (
            hub.files("org/later")["data/train-00000-of-00001.parquet"]
            == before[out / "data" / "train-00000-of-00001.parquet"]
        )


def test_a_second_config_and_a_branch_keep_what_is_already_there(published, tmp_path):
    out = published.out
    repo = "builders-test/smoke"
    hub = published.hub
    with online(hub):
        load_recipe("push").main(["--output_dir", str(out), "--hub_repo_id", repo, "--hub_config_name", "stories"])
        files = hub.files(repo)
        assert files["stories/data/train-00000-of-00001.parquet"] == files["data/train-00000-of-00001.parquet"]
        card = DatasetCard(files["README.md"].decode())
        names = {c["config_name"]: c["data_files"][0]["path"] for c in card.data.configs}
        assert names == {"default": "data/train-*", "stories": "stories/data/train-*"}
        assert "](stories/images/text_length_histogram.png)" in card.text

        # A new version of the default config with two shards: the old shard goes, in the same commit.
        two = tmp_path / "two"
        shutil.copytree(out, two)
        table = pq.read_table(two / "data" / "train-00000-of-00001.parquet")
        (two / "data" / "train-00000-of-00001.parquet").unlink()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), two / "data" / "train-00000-of-00002.parquet")
        pq.write_table(table.slice(half), two / "data" / "train-00001-of-00002.parquet")
        run = json.loads((two / "run.json").read_text())  # as a run that wrote two shards records them
        files = {k: v for k, v in run["files"].items() if not k.startswith("data/")}
        files.update({f"data/{p.name}": p.stat().st_size for p in (two / "data").glob("*.parquet")})
        (two / "run.json").write_text(json.dumps({**run, "files": files}))
        load_recipe("push").main(["--output_dir", str(two), "--hub_repo_id", repo, "--hub_revision", "v2"])
        assert "data/train-00000-of-00001.parquet" in hub.files(repo)  # main is untouched
        on_branch = hub.files(repo, "v2")
        assert sorted(p for p in on_branch if p.startswith("data/")) == [
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
        ]
        assert "stories/data/train-00000-of-00001.parquet" in on_branch  # the other config stays
        assert hub.commits(repo, "v2")[-1]["touched"].count("data/train-00000-of-00001.parquet") == 1  # deleted


def test_only_the_main_process_pushes_once(published, tmp_path):
    """Two real processes (torchrun) run recipes/push.py: one commit arrives."""
    hub = published.hub
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("HF_HUB_OFFLINE",)}
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, PYTHONPATH=str(REPO))
    before = len(hub.commits("builders-test/smoke"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(REPO / "recipes" / "push.py"),
            "--output_dir",
            str(published.out),
            "--hub_repo_id",
            "builders-test/smoke",
            "--hub_revision",
            "two-processes",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("pushed to") == 1
    assert len(hub.commits("builders-test/smoke", "two-processes")) == before + 1


def test_push_refusals_say_what_to_do_and_write_nothing(published, tmp_path, capsys):
    out = tmp_path / "new"
    run = ("--config", SMOKE, "--output_dir", out, "--push_to_hub", "true", "--hub_repo_id", "org/x")
    with online(published.hub, token=None):
        assert "push_to_hub needs a Hub token: set HF_TOKEN" in recipe_error(capsys, "cosmopedia", *run)
        assert "needs a Hub token" in recipe_error(
            capsys, "push", "--output_dir", published.out, "--hub_repo_id", "o/x"
        )
    assert "HF_HUB_OFFLINE is set" in recipe_error(capsys, "cosmopedia", *run)  # conftest keeps the session offline
    message = recipe_error(capsys, "cosmopedia", "--config", SMOKE, "--output_dir", out, "--push_to_hub", "true")
    assert "hub_repo_id is empty" in message
    assert not out.exists()

    unfinished = tmp_path / "unfinished"
    shutil.copytree(published.out, unfinished)
    run_json = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**run_json, "complete": False}))
    with online(published.hub):
        message = recipe_error(capsys, "push", "--output_dir", unfinished, "--hub_repo_id", "org/x")
        assert "has not finished" in message and "run the same recipe command again" in message
        assert "is not a finished output folder" in recipe_error(
            capsys, "push", "--output_dir", tmp_path, "--hub_repo_id", "org/x"
        )
        assert "does not exist" in recipe_error(
            capsys, "push", "--output_dir", tmp_path / "nope", "--hub_repo_id", "o/x"
        )
    assert "org/x" not in published.hub.repos


def test_repo_card_declares_every_config_once_there_are_several(tmp_path):
    from builders.output.hub import repo_card

    body = (
        '![h](images/h.png)\nds = load_dataset("outputs/run", split="train")\n'
        'load_dataset("parquet", data_files="outputs/run/rejected/*.parquet", split="train")\n'
    )
    (tmp_path / "README.md").write_text(f"---\nlicense: mit\n---\n{body}")  # a default run: no configs block

    def names(card):
        return [(c["config_name"], c["data_files"][0]["path"]) for c in card.data.get("configs") or []]

    alone = repo_card(tmp_path / "README.md", "org/data", "default")
    assert names(alone) == [] and 'load_dataset("org/data", split="train")' in alone.text
    assert 'data_files="hf://datasets/org/data/rejected/*.parquet"' in alone.text

    standard = ["README.md", "data/train-00000-of-00001.parquet"]  # a default config already there, undeclared
    math = repo_card(tmp_path / "README.md", "org/data", "math", None, standard)
    assert names(math) == [("default", "data/train-*"), ("math", "math/data/train-*")]
    assert math.text.startswith("![h](math/images/h.png)")
    assert 'load_dataset("org/data", "math", split="train")' in math.text
    assert 'data_files="hf://datasets/org/data/math/rejected/*.parquet"' in math.text

    again = repo_card(tmp_path / "README.md", "org/data", "default", math, [*standard, "math/data/x.parquet"])
    assert names(again) == [("math", "math/data/train-*"), ("default", "data/train-*")]
