"""The seed tasks of Self-Instruct: read, checked field by field, with the line of a bad one named."""

from __future__ import annotations

import json
from pathlib import Path

from builders.data import load_rows
from builders.errors import UserError

# -- seed tasks ---------------------------------------------------------------------------------------------

SEED_FIELDS = "{id, name, instruction, instances: [{input, output}], is_classification}"


def read_seed_tasks(source: str, split: str = "train", name: str | None = None, num_samples: int | None = None):
    """Seed tasks from a jsonl file, another local file, or a Hub id; a malformed task names its line (row)."""
    if source and Path(source).is_file() and Path(source).suffix == ".jsonl":
        numbered = _read_jsonl(Path(source))
        where = "line"
    else:
        rows = load_rows(source, split, name, what="dataset").remove_columns("_row").to_list()
        numbered = list(enumerate(rows, start=1))
        where = "row"
    if num_samples is not None:
        numbered = numbered[:num_samples]
    if not numbered:
        raise UserError(f"dataset '{source}' holds no seed tasks; point `dataset` at a file of {SEED_FIELDS}")
    return [_check_seed(task, f"dataset '{source}' {where} {n}") for n, task in numbered]


def _read_jsonl(path: Path) -> list[tuple[int, object]]:
    tasks = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            tasks.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise UserError(f"dataset '{path}' line {number} is not valid JSON ({err.msg}); fix that line") from None
    return tasks


def _check_seed(task, where: str) -> dict:
    if not isinstance(task, dict):
        raise UserError(f"{where} is not a JSON object; each seed task is {SEED_FIELDS}")
    instruction = task.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise UserError(f"{where} has no 'instruction' text; each seed task is {SEED_FIELDS}")
    instances = task.get("instances")
    if (
        not isinstance(instances, list)
        or not instances
        or not all(isinstance(i, dict) and isinstance(i.get("output"), str) for i in instances)
    ):
        raise UserError(f"{where} needs 'instances': a non-empty list of {{input, output}} with text outputs")
    is_classification = task.get("is_classification", False)
    if not isinstance(is_classification, bool):
        raise UserError(f"{where} has 'is_classification' {is_classification!r}; it must be true or false")
    return {
        "instruction": " ".join(instruction.split()),
        "instances": [{"input": i.get("input") or "", "output": i["output"]} for i in instances],
        "is_classification": is_classification,
    }
