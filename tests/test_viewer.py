"""The viewer (`python -m builders.view`) as a user meets it: started on 127.0.0.1 against smoke runs' output
folders and driven in headless Chromium (tests/browser.py), plus its refusals and a Hub id (tests/fake_hub.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
from browser import chromium, open_tab, table_rows, text_of, viewer, wait_for
from fake_hub import FakeHub
from huggingface_hub import constants
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from builders.generation.checkpoint import CheckpointStore
from builders.output.hub import push_output_dir
from builders.view.reading import categories, open_run, search
from conftest import REPO, free_port, read_output, run_recipe, stats_of

pytestmark = pytest.mark.vllm
SMOKE = REPO / "configs" / "cosmopedia" / "smoke.yaml"
TOKEN = "hf_TESTtoken0123456789abcdefSECRET"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two smoke runs of Cosmopedia on the same 16 prompts at two temperatures, keeping their rejected rows: the
    tiny model's noise fails the replacement-character check often enough that both runs keep and drop rows."""
    base = tmp_path_factory.mktemp("viewer")
    for name, temperature in (("a", 0.6), ("b", 0.9)):
        run_recipe(
            "cosmopedia",
            *("--config", SMOKE, "--output_dir", base / name, "--num_samples", 16, "--batch_size", 4),
            *("--keep_rejected", "true", "--quality_max_replacement_chars", 2, "--temperature", temperature),
        )
    a, b = base / "a", base / "b"
    for out in (a, b):
        assert read_output(out)[1] and read_output(out, "rejected")[1], "the fixture needs kept and rejected rows"
    return a, b


def folder_state(folder) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_overview_rows_rejected_and_compare_in_chromium(runs):
    a, b = runs
    before = folder_state(a), folder_state(b)
    with viewer(a, b, port=free_port(), repo=REPO) as url, chromium() as driver:
        driver.get(url)
        # Overview: every stage's rows in -> out and every drop reason with its count, as stats.json has them
        wait_for(driver, lambda d: text_of(d, "#overview-funnel .funnel-stage"))
        for stage in stats_of(a)["stages"]:
            shown = text_of(driver, f"#overview-funnel [data-stage='{stage['name']}']")
            assert f"{stage['rows_in']} → {stage['rows_out']}" in shown
            for reason, count in stage["dropped"].items():
                assert f"{reason}: {count}" in shown

        # Rows: a search for a phrase of one row finds that row alone; selecting it opens prompt, output, metadata
        _, rows = read_output(a)
        target = next(i for i, row in enumerate(rows) if _unique_phrase(row["text"], rows))
        phrase = _unique_phrase(rows[target]["text"], rows)
        open_tab(driver, "Rows")
        box = wait_for(
            driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#rows-search textarea, #rows-search input")
        )[0]
        box.send_keys(phrase, Keys.ENTER)
        wait_for(driver, lambda d: f"1 of {len(rows)} rows match" in text_of(d, "#rows-count"))
        cells = driver.find_elements(By.CSS_SELECTOR, "#rows-table [role=gridcell]")
        assert cells[0].text == str(target)
        cells[1].click()
        topic = rows[target]["prompt"].split(":")[0]  # "Below is a passage taken from a web page about <topic>"
        wait_for(driver, lambda d: topic in text_of(d, "#rows-left"))
        assert "<passage>" in text_of(driver, "#rows-left")  # the prompt's tags stay visible
        assert rows[target]["format"] in text_of(driver, "#rows-meta")

        # Rejected: the rows grouped by stage and reason, with their counts
        _, rejected = read_output(a, "rejected")
        open_tab(driver, "Rejected")
        groups = wait_for(driver, lambda d: table_rows(d, "#rejected-groups"))
        expected = pd.DataFrame(rejected).groupby(["stage", "reason"]).size()
        assert sorted(groups) == sorted([stage, reason, str(n)] for (stage, reason), n in expected.items())

        # Compare: both funnels, and the prompts of both runs aligned (the same 16 prompts; rows kept by either)
        open_tab(driver, "Compare")
        wait_for(driver, lambda d: text_of(d, "#compare-funnel-B .funnel-stage"))
        for side, out in (("A", a), ("B", b)):
            last = stats_of(out)["stages"][-1]
            assert f"{last['rows_in']} → {last['rows_out']}" in text_of(driver, f"#compare-funnel-{side}")
        prompts = {row["prompt"] for out in (a, b) for row in read_output(out)[1]}
        wait_for(driver, lambda d: f"{len(prompts)} of {len(prompts)} rows match" in text_of(d, "#compare-count"))
    assert (folder_state(a), folder_state(b)) == before  # the viewer wrote nothing into the folders it showed


def _unique_phrase(text: str, rows: list[dict]) -> str | None:
    """Three words of `text` that no other row holds anywhere (the search looks in every column)."""
    words = text.split()
    for i in range(len(words) - 2):
        phrase = " ".join(words[i : i + 3])
        if len(phrase) > 12 and sum(phrase.lower() in json.dumps(r, ensure_ascii=False).lower() for r in rows) == 1:
            return phrase
    return None


def test_live_view_counts_rows_as_checkpoints_arrive(runs, tmp_path):
    """A run that is going: run.json says incomplete and finished batches appear in .checkpoints/ one by one (the
    smoke run's own batches, saved through the checkpoint store as the generation stage saves them)."""
    a, _ = runs
    run = json.loads((a / "run.json").read_text())
    live = tmp_path / "live"
    live.mkdir()
    (live / "run.json").write_text(json.dumps({**run, "complete": False}))
    source = CheckpointStore(a / ".checkpoints" / run["checkpoints"])
    target = CheckpointStore(live / ".checkpoints" / run["checkpoints"])
    batches = [tuple(map(int, p.stem.split("-"))) for p in source.chunks("generate")]
    assert len(batches) == 4
    with viewer(live, port=free_port(), repo=REPO) as url, chromium() as driver:
        driver.get(url)
        open_tab(driver, "Rows")
        wait_for(driver, lambda d: "No rows yet" in d.find_element(By.TAG_NAME, "body").text)
        open_tab(driver, "Live")
        wait_for(driver, lambda d: text_of(d, "#live-rows") == "0")
        rows = 0
        for start, end in batches:
            target.save("generate", start, end, source.load("generate", start, end))
            rows += end - start
            wait_for(driver, lambda d, n=rows: text_of(d, "#live-rows") == str(n), timeout=30)
        assert "4 batches · 16 rows" in text_of(driver, ".live-stage[data-stage='generate']")
        assert "rows/s" in text_of(driver, ".live-stage")
    assert not (live / "data").exists() and not (live / "stats.json").exists()


def test_a_folder_that_is_not_a_run_gets_one_line_and_exit_2(tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("not a run")
    cases = {
        str(foreign): "is not the output of a recipe run (it has no stats.json or run.json)",
        str(tmp_path / "missing"): "is not a folder",
        str(foreign / "todo.txt"): "is not a folder",
    }
    for target, message in cases.items():
        done = subprocess.run(
            [sys.executable, "-m", "builders.view", target, "--port", str(free_port())],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["todo.txt"]


def test_a_hub_dataset_id_is_viewed_from_what_push_uploaded(runs, tmp_path, monkeypatch):
    a, _ = runs
    with FakeHub(token=TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        push_output_dir(a, "builders-test/viewer")
        run = open_run("builders-test/viewer")
    assert run.path.is_relative_to(tmp_path / "hub-cache")
    assert run.finished and run.stats == stats_of(a)
    assert run.rows.to_dict("records") == pq.read_table(a / "data").to_pandas().to_dict("records")
    assert len(run.rejected) == len(read_output(a, "rejected")[1])


def test_filters_are_the_label_columns_and_search_combines_with_them(runs):
    run = open_run(str(runs[0]))
    rows = run.rows
    labels = categories(rows, skip=run.text_columns(rows))
    assert {"format", "audience"} <= set(labels) and not {"prompt", "text", "text_token_length"} & set(labels)
    fmt = rows["format"].iloc[0]
    hits = search(rows, "below is a passage", {"format": fmt})
    assert len(hits) == (rows["format"] == fmt).sum()  # every prompt begins so: the filter alone decides
    assert search(rows, "no such phrase anywhere", {}).empty
