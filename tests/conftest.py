"""Shared fixtures: the real reference data, the tiny model, and a way to run a recipe like a user does."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Before anything from Hugging Face is imported: no network, and vLLM small and in-process on the CPU.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="builders-tests-datasets-"))

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"  # shipped with the repository (data/README.md)
COSMOPEDIA_SEEDS = REPO / "configs" / "cosmopedia" / "seeds.jsonl"
# Self-Instruct/Alpaca list formats for structured output: the tiny model's noise, held to them, parses as tasks.
WORDS = r"[a-z]{1,8}( [a-z]{1,8}){%d,%d}"
ALPACA_LIST = (
    rf"(\d\. Instruction: [A-Z]{WORDS % (4, 8)}\.\n\d\. Input:\n(<noinput>|{WORDS % (1, 5)})\n"
    rf"\d\. Output:\n[A-Z]{WORDS % (1, 8)}\.\n###\n){{3,4}}"
)
INSTRUCTION_LIST = rf"(\d{{1,2}}\. [A-Z]{WORDS % (4, 8)}\.\n){{3,5}}"
INSTANCES = (
    rf"(Class label: [a-z]{{1,8}}\nInput: {WORDS % (1, 5)}\n){{2,3}}"
    rf"|(Example [1-3]\nInput: {WORDS % (1, 5)}\nOutput: {WORDS % (1, 5)}\n){{2,3}}"
)


def shipped_data(name: str) -> Path:
    """A file of the real data shipped in data/ (sources and licenses in data/README.md)."""
    path = DATA / name
    if not path.exists():
        pytest.fail(f"shipped data {path} is missing: restore it with `git checkout -- data/`")
    return path


def load_recipe(name: str):
    """Import recipes/<name>.py as a module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_recipe(name: str, *args: str) -> None:
    """Run a recipe's main() in this process (engines are reused across runs); raises SystemExit on errors."""
    load_recipe(name).main([str(a) for a in args])


def run_recipe_cli(name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a recipe as a user does, in a fresh process; returns the completed process."""
    return subprocess.run(
        [sys.executable, str(REPO / "recipes" / f"{name}.py"), *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def stats_of(out: Path) -> dict:
    """The run's stats.json."""
    return json.loads((Path(out) / "stats.json").read_text())


def stages_of(out: Path) -> dict[str, dict]:
    """The funnel's stages by name."""
    return {s["name"]: s for s in stats_of(out)["stages"]}


def assert_funnel_adds_up(stats: dict) -> None:
    """Every row a stage lost is a drop with a named reason."""
    for stage in stats["stages"]:
        assert stage["rows_in"] - stage["rows_out"] == sum(stage["dropped"].values()), stage
        assert "unaccounted" not in stage["dropped"]


def recipe_error(capsys, recipe: str, *args) -> str:
    """Run a recipe that must refuse: exit 2, no traceback, the last line of stderr an `error: ` line (returned)."""
    with pytest.raises(SystemExit) as exit_:
        run_recipe(recipe, *args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()  # progress bars may come first
    assert [line for line in err if line.startswith("error: ")] == err[-1:]  # one error line, the last
    assert not any("Traceback" in line for line in err)
    return err[-1]


def read_output(out: Path, part: str = "data") -> tuple[list[str], list[dict]]:
    """Column names and rows of an output folder's parquet files (an empty dataset has columns, no rows)."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(out) / part)
    return table.schema.names, table.to_pylist()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_model() -> str:
    from builders.generation.models import resolve_model

    return resolve_model("tiny-random")
