"""`backend: openai` against a real vLLM OpenAI-compatible server on 127.0.0.1 with the tiny model.

The server needs an API key, which the recipe reads from the variable named by `api_key_env`.
"""

import json
import subprocess
import sys
import time

import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard
from vllm_server import VLLMServer

from conftest import REPO, run_recipe

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
KEY_ENV, KEY = "BUILDERS_TEST_VLLM_KEY", "sk-test-4c1d2e"


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    vllm = VLLMServer(tiny_model, "tiny-random", KEY, tmp_path_factory.mktemp("server")).start()
    yield vllm
    vllm.stop()


def openai_args(server, out, *extra):
    return [
        *("--config", SMOKE, "--output_dir", out, "--batch_size", 4),
        *("--backend", "openai", "--base_url", server.url, "--api_key_env", KEY_ENV, "--max_concurrency", 4),
        *extra,
    ]


def test_cosmopedia_smoke_through_a_vllm_server(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, KEY)
    out = tmp_path / "openai"
    run_recipe("cosmopedia", *openai_args(server, out))
    ds = load_dataset(str(out), split="train")
    stats = json.loads((out / "stats.json").read_text())
    assert [s["rows_out"] for s in stats["stages"]] == [8, 8, 8, 8, 8]  # no request failed, no row lost
    assert stats["generation"]["batches_generated"] == 2 and stats["generation"]["requests_retried"] == 0
    assert set(ds["finish_reason"]) <= {"stop", "length"} and all(t.strip() for t in ds["text"])
    assert stats["tokens"]["completion"] == sum(ds["text_token_length"]) > 0
    card = DatasetCard.load(out / "README.md")
    assert "| backend | openai (chat template) |" in card.text
    for path in out.rglob("*"):  # the key is read from the environment and written nowhere
        assert not path.is_file() or KEY.encode() not in path.read_bytes()
    assert KEY not in capsys.readouterr().out

    run_recipe("cosmopedia", *openai_args(server, out))  # the same command again: every batch comes from disk
    again = json.loads((out / "stats.json").read_text())["generation"]
    assert (again["batches_resumed"], again["batches_generated"]) == (2, 0)
    assert load_dataset(str(out), split="train").to_list() == ds.to_list()


def test_a_wrong_key_is_refused_before_any_output(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BUILDERS_TEST_WRONG_KEY", "sk-wrong")
    with pytest.raises(SystemExit) as exit_:
        run_recipe("cosmopedia", *openai_args(server, tmp_path / "o", "--api_key_env", "BUILDERS_TEST_WRONG_KEY"))
    assert exit_.value.code == 2
    assert "refused the API key (401); put the right key in $BUILDERS_TEST_WRONG_KEY" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two server start-ups: minutes on a busy 2-core machine
def test_the_run_survives_a_server_that_dies_and_comes_back(server, tmp_path, monkeypatch):
    """Kill the server (SIGKILL) while the recipe runs, start it again: the run finishes, every row once."""
    monkeypatch.setenv(KEY_ENV, KEY)
    args = ["--num_samples", 16, "--batch_size", 2, "--max_concurrency", 2, "--max_retries", 12]  # 8 batches
    uninterrupted = tmp_path / "uninterrupted"
    run_recipe("cosmopedia", *openai_args(server, uninterrupted, *args))

    out = tmp_path / "interrupted"
    command = [sys.executable, str(REPO / "recipes" / "cosmopedia.py"), *map(str, openai_args(server, out, *args))]
    run = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    chunks = out / ".checkpoints"
    while len(list(chunks.rglob("*.parquet"))) < 2:  # the run is under way: 2 of its 8 batches are done
        assert run.poll() is None, run.stderr.read()[-3000:]
        time.sleep(0.05)
    server.stop()
    done_when_stopped = len(list(chunks.rglob("*.parquet")))
    time.sleep(2)  # requests fail and back off meanwhile
    server.start()
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    assert done_when_stopped < 8
    assert "retrying in" in stderr  # the outage was seen and outlived

    stats = json.loads((out / "stats.json").read_text())
    assert stats["generation"]["requests_retried"] > 0
    funnel = [(s["name"], s["rows_in"], s["rows_out"], s["dropped"]) for s in stats["stages"]]
    assert funnel[2] == ("generate", 16, 16, {})  # every row generated, none lost
    assert not any("request_failed" in dropped for *_, dropped in funnel)  # the outage cost no row
    expected_stats = json.loads((uninterrupted / "stats.json").read_text())
    assert funnel == [(s["name"], s["rows_in"], s["rows_out"], s["dropped"]) for s in expected_stats["stages"]]
    rows = load_dataset(str(out), split="train").to_list()
    expected = load_dataset(str(uninterrupted), split="train").to_list()
    assert [r["prompt"] for r in rows] == [r["prompt"] for r in expected]  # every row once, in order
    assert rows == expected  # per-row seeds: the server wrote the same texts
