"""Self-Instruct and Alpaca: seed tasks, parsers for the model's lists, the rule filters, and the task pool.

The pool starts with the seed tasks and grows with every accepted instruction. A new instruction is
accepted when it passes the rule filters (length, words a text model cannot act on, how it starts) and
its ROUGE-L F-measure against every instruction already in the pool is at most the threshold
(`builders.novelty.RougeLNovelty`). Acceptance depends on what was accepted before, so `TaskPool.offer`
runs sequentially, in the order the model produced the tasks.

Every model output that does not parse is counted with a reason, never an exception.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from pathlib import Path

from datasets import Dataset

from builders.data import load_rows
from builders.errors import UserError
from builders.filters import REASON
from builders.generate import row_seed
from builders.novelty import RougeLNovelty
from builders.prompts.self_instruct import (
    alpaca_prompt,
    classify_prompt,
    instances_prompt,
    opening,
    self_instruct_prompt,
)

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


# -- parsing the model's lists ------------------------------------------------------------------------------

NO_INPUT = re.compile(r"^\s*<?\s*no[\s_-]*input\s*>?\s*\.?\s*$", re.IGNORECASE)
# "4. Instruction: ...", "**Instruction 4:**", "Task 4 - Input:", "- Output:" ... (the label may stand alone on its line)
FIELD_LABEL = re.compile(
    r"^[\s#>*_-]*(?:(?:task|example)?\s*\d{1,3}\s*[.):-]?\s*)?[*_]*\s*(instruction|input|output)\s*\d{0,3}\s*[*_]*\s*:"
    r"[*_]*\s?(.*)$",
    re.IGNORECASE,
)
SEPARATOR = re.compile(r"^\s*(?:#{2,}|-{3,}|\*{3,}|={3,})\s*$")
NUMBERED_ITEM = re.compile(r"^\s*(?:\*\*)?(\d{1,3})\s*[.)]\s*(?:\*\*)?\s*(.*)$")


def parse_task_list(text: str, finish_reason: str, max_tasks: int) -> tuple[list[dict], Counter]:
    """Tasks {instruction, input, output} from a numbered list in Alpaca's format, and the items dropped.

    An item is one `Instruction:` label with the `Input:` and `Output:` that follow it (a label may carry its
    text on the same line or on the next ones). `<noinput>` becomes an empty input. Dropped items:
    `incomplete` (no instruction or no output), `truncated` (the last item when the generation hit its token
    limit, as Alpaca does), `beyond_tasks_per_request` (items past `max_tasks`).
    """
    items: list[dict] = []
    current: dict | None = None
    key = None
    for line in text.splitlines():
        label = FIELD_LABEL.match(line)
        if label:
            key = label.group(1).lower()
            if key == "instruction" or current is None or key in current:
                current = {}
                items.append(current)
            current[key] = [label.group(2)]
        elif SEPARATOR.match(line):
            key = None
        elif current is not None and key is not None:
            current[key].append(line)
    tasks, dropped = [], Counter()
    if items and finish_reason == "length":
        items.pop()
        dropped["truncated"] += 1
    for item in items:
        fields = {k: "\n".join(v).strip() for k, v in item.items()}
        instruction = " ".join(fields.get("instruction", "").split())
        if not instruction or not fields.get("output"):
            dropped["incomplete"] += 1
            continue
        if len(tasks) == max_tasks:
            dropped["beyond_tasks_per_request"] += 1
            continue
        task_input = fields.get("input", "")
        tasks.append(
            {
                "instruction": instruction,
                "input": "" if NO_INPUT.match(task_input) else task_input,
                "output": fields["output"],
            }
        )
    return tasks, dropped


def parse_instruction_list(text: str, finish_reason: str, max_tasks: int) -> tuple[list[str], Counter]:
    """Instructions from a numbered list ("9. ...", "10) ..."), Self-Instruct's format: one per numbered line.

    Lines without a number (a chat model's explanation or answer under an item) are not part of it; markdown
    bold markers are removed. Dropped: `truncated` (the last item of a response that hit its token limit),
    `beyond_tasks_per_request`.
    """
    items = [m.group(2) for m in map(NUMBERED_ITEM.match, text.splitlines()) if m]
    dropped = Counter()
    if items and finish_reason == "length":
        items.pop()
        dropped["truncated"] += 1
    instructions = []
    for item in items:
        instruction = " ".join(item.replace("**", "").replace("__", "").split()).strip("*_ ")
        if not instruction:
            dropped["incomplete"] += 1
        elif len(instructions) == max_tasks:
            dropped["beyond_tasks_per_request"] += 1
        else:
            instructions.append(instruction)
    return instructions, dropped


# -- the rule filters (both modes) --------------------------------------------------------------------------

BLACKLIST = (
    "image",
    "picture",
    "graph",
    "file",
    "map",
    "draw",
    "plot",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
)
BLACKLISTED = re.compile(r"\b(?:(?:" + "|".join(BLACKLIST) + r")s?|go to)\b", re.IGNORECASE)


def instruction_rule(instruction: str, min_words: int = 4, max_words: int = 150) -> str | None:
    """The first rule `instruction` breaks (the drop reason), or None. Alpaca's and Self-Instruct's rules."""
    words = len(instruction.split())
    if words < min_words:
        return "too_short"
    if words > max_words:
        return "too_long"
    if BLACKLISTED.search(instruction):
        return "blacklisted_word"
    if instruction.startswith("Write a program"):
        return "starts_with_write_a_program"
    if instruction[0] in string.punctuation:
        return "starts_with_punctuation"
    if not instruction[0].isascii():
        return "starts_with_non_ascii"
    return None


# -- instances (Self-Instruct mode) -------------------------------------------------------------------------

EXAMPLE_HEADER = re.compile(r"^\s*[#*_]*\s*example\s*\d{0,3}\s*[.:)]?\s*[*_]*\s*$", re.IGNORECASE)
CLASS_LABEL = re.compile(r"^[\s#>*_-]*(?:class\s*)?label\s*\d{0,3}\s*[*_]*\s*:[*_]*\s?(.*)$", re.IGNORECASE)


def parse_generation_instances(text: str, finish_reason: str) -> tuple[list[dict], Counter]:
    """Input-first instances: `Example N` blocks (or a single block) of `Input:` then `Output:`."""
    blocks: list[dict] = []
    current, key = None, None
    for line in text.splitlines():
        label = FIELD_LABEL.match(line)
        if EXAMPLE_HEADER.match(line):
            current, key = None, None
        elif label and label.group(1).lower() in ("input", "output"):
            key = label.group(1).lower()
            if current is None or key in current:
                current = {}
                blocks.append(current)
            current[key] = [label.group(2)]
        elif current is not None and key is not None:
            current[key].append(line)
    return _finish_instances(blocks, finish_reason)


def parse_classification_instances(text: str, finish_reason: str) -> tuple[list[dict], Counter]:
    """Output-first instances: `Class label: X` then `Input: ...` (the label is the output)."""
    blocks: list[dict] = []
    current, key = None, None
    for line in text.splitlines():
        label = CLASS_LABEL.match(line)
        field_label = FIELD_LABEL.match(line)
        if label:
            current, key = {"output": [label.group(1)]}, "output"
            blocks.append(current)
        elif field_label and field_label.group(1).lower() == "input" and current is not None:
            key = "input"
            current["input"] = [field_label.group(2)]
        elif EXAMPLE_HEADER.match(line):
            key = None
        elif current is not None and key is not None:
            current[key].append(line)
    return _finish_instances(blocks, finish_reason)


def _finish_instances(blocks: list[dict], finish_reason: str) -> tuple[list[dict], Counter]:
    dropped = Counter()
    if blocks and finish_reason == "length":
        blocks.pop()
        dropped["truncated"] += 1
    instances = []
    for block in blocks:
        fields = {k: "\n".join(v).strip() for k, v in block.items()}
        task_input = fields.get("input", "")
        instances.append(
            {"input": "" if NO_INPUT.match(task_input) else task_input, "output": fields.get("output", "")}
        )
    return instances, dropped


def filter_instances(instances: list[dict], max_instances: int) -> tuple[list[dict], Counter]:
    """Self-Instruct's instance filters, then at most `max_instances` per task.

    Drops: `empty_output`, `output_copies_input`, `same_input_different_output` (every instance of a task
    whose non-empty input appears with two different outputs: the task is ambiguous), `duplicate_instance`
    (the same input and output again), `beyond_max_instances`.
    """
    dropped = Counter()
    valid = []
    for instance in instances:
        if not instance["output"].strip():
            dropped["empty_output"] += 1
        elif instance["output"].strip() == instance["input"].strip():
            dropped["output_copies_input"] += 1
        else:
            valid.append(instance)
    outputs: dict[str, set[str]] = {}
    for instance in valid:
        if instance["input"].strip():
            outputs.setdefault(instance["input"].strip(), set()).add(instance["output"].strip())
    if any(len(v) > 1 for v in outputs.values()):
        dropped["same_input_different_output"] += len(valid)
        return [], dropped
    kept, seen = [], set()
    for instance in valid:
        key = (instance["input"].strip(), instance["output"].strip())
        if key in seen:
            dropped["duplicate_instance"] += 1
        elif len(kept) == max_instances:
            dropped["beyond_max_instances"] += 1
        else:
            seen.add(key)
            kept.append(instance)
    return kept, dropped


def parse_yes_no(text: str) -> bool | None:
    answer = text.strip().strip("*_.:").lower()
    if answer.startswith("yes"):
        return True
    if answer.startswith("no"):
        return False
    return None


# -- the task pool ------------------------------------------------------------------------------------------


class ResponseReader:
    """Reads the model's task lists, counting what it could not use.

    `responses`: read so far; `failed`: requests that failed; `unparseable`: responses without a single item
    of the list format; `item_drops`: items dropped while parsing (incomplete, truncated, ...); `tasks`: read.
    """

    def __init__(self, mode: str, max_tasks: int, opening: str = ""):
        self.mode = mode
        self.max_tasks = max_tasks
        self.opening = opening  # raw completion: the prompt ended with the start of the next item
        self.responses = self.failed = self.unparseable = self.tasks = 0
        self.item_drops = Counter()

    def read(self, text: str, finish_reason: str) -> list[dict]:
        self.responses += 1
        if finish_reason == "error":
            self.failed += 1
            return []
        text = self.opening + (text or "")
        if self.mode == "alpaca":
            tasks, dropped = parse_task_list(text, finish_reason, self.max_tasks)
        else:
            instructions, dropped = parse_instruction_list(text, finish_reason, self.max_tasks)
            tasks = [{"instruction": i} for i in instructions]
        if not tasks and not dropped:
            self.unparseable += 1
        self.item_drops.update(dropped)
        self.tasks += len(tasks)
        return tasks


class TaskPool:
    """Seed tasks plus accepted machine tasks; decides, one task at a time, which new ones join.

    pool = TaskPool(seeds, target=100)
    pool.offer({"instruction": ..., "input": ..., "output": ...})   # -> None (accepted) or a drop reason
    """

    def __init__(
        self, seeds: list[dict], target: int, threshold: float = 0.7, top_k: int = 10, keep_rejected: bool = False
    ):
        self.seeds = seeds
        self.target = target
        self.novelty = RougeLNovelty(threshold, top_k)
        self.novelty.extend(s["instruction"] for s in seeds)
        self.accepted: list[dict] = []
        self.keep_rejected = keep_rejected
        self.rejected: list[dict] = []  # the dropped tasks with their reason, when keep_rejected
        self.dropped = Counter()  # by reason: rules and novelty
        self.offered = 0

    @property
    def full(self) -> bool:
        return len(self.accepted) >= self.target

    def offer(self, task: dict) -> str | None:
        """Accept `task` into the pool, or say why not. Sequential: novelty depends on what came before.

        The rules come first; a task that passes them once the target is reached is `target_reached`.
        """
        self.offered += 1
        reason = instruction_rule(task["instruction"])
        if reason is None and self.full:
            reason = "target_reached"
        # every task gets both similarity columns, null when the novelty test was not reached (a rule drop, a
        # full pool): the rejected split's columns would otherwise depend on which drop came first
        task = {**task, "most_similar_instructions": None, "avg_similarity_score": None}
        if reason is None:
            accepted, similar, avg = self.novelty.add(task["instruction"])
            task["most_similar_instructions"] = [{"instruction": i, "score": s} for i, s in similar]
            task["avg_similarity_score"] = avg
            reason = None if accepted else "too_similar"
        if reason is None:
            self.accepted.append(task)
        else:
            self.dropped[reason] += 1
            if self.keep_rejected:
                self.rejected.append({**task, REASON: reason})
        return reason

    def machine_instructions(self) -> list[str]:
        return [t["instruction"] for t in self.accepted]


def sample_examples(items: list, k: int, seed: int, row_id: int, salt: str) -> list:
    """k distinct items for prompt `row_id`, drawn from (seed, row id): the same in every run and process."""
    rng = random.Random(row_seed(seed, row_id, salt))
    return rng.sample(items, min(k, len(items)))


# -- prompts for each step ----------------------------------------------------------------------------------


def round_prompts(
    mode: str,
    pool: TaskPool,
    rows: range,
    *,
    num_shown: int,
    num_machine: int,
    tasks_per_request: int,
    seed: int,
    open_item: bool,
) -> list[str]:
    """One prompt per row id, showing tasks drawn from (seed, row id).

    Alpaca shows `num_shown` seed tasks with their first instance; Self-Instruct shows `num_shown`
    instructions, `num_machine` of them machine-written (fewer while the pool has fewer), in random order.
    """
    prompts = []
    for row in rows:
        if mode == "alpaca":
            shown = sample_examples(pool.seeds, num_shown, seed, row, "alpaca-examples")
            examples = [{"instruction": t["instruction"], **t["instances"][0]} for t in shown]
            prompts.append(alpaca_prompt(examples, tasks_per_request, open_item))
        else:
            machine = sample_examples(pool.machine_instructions(), num_machine, seed, row, "machine")
            human = sample_examples(
                [t["instruction"] for t in pool.seeds], num_shown - len(machine), seed, row, "seed"
            )
            shown = sample_examples(machine + human, num_shown, seed, row, "order")
            prompts.append(self_instruct_prompt(shown, tasks_per_request, open_item))
    return prompts


def classification_prompts(tasks: list[dict], seeds: list[dict], seed: int) -> list[str]:
    """Is it a classification task? Three labelled seed tasks of each kind as examples, in random order."""
    clf = [s for s in seeds if s["is_classification"]]
    other = [s for s in seeds if not s["is_classification"]]
    prompts = []
    for row, task in enumerate(tasks):
        examples = sample_examples(clf, 3, seed, row, "clf") + sample_examples(other, 3, seed, row, "other")
        examples = sample_examples(examples, len(examples), seed, row, "clf-order")
        prompts.append(classify_prompt(task["instruction"], examples))
    return prompts


def instance_prompts(tasks: list[dict], seeds: list[dict], seed: int, max_instances: int, open_item: bool):
    """Output-first prompts for classification tasks, input-first otherwise; two seed tasks of the same kind."""
    prompts = []
    for row, task in enumerate(tasks):
        same_kind = [s for s in seeds if s["is_classification"] == task["is_classification"]] or seeds
        examples = sample_examples(same_kind, 2, seed, row, "instances")
        prompts.append(
            instances_prompt(task["instruction"], task["is_classification"], examples, max_instances, open_item)
        )
    return prompts


def read_instances(tasks: list[dict], responses: Dataset, max_instances: int, opened: bool):
    """Parse and filter each task's instances; returns (rows, tasks without any parsed instance,
    instances parsed, instances dropped by reason)."""
    rows, unparseable, parsed, drops = [], 0, 0, Counter()
    for task, text, finish_reason in zip(tasks, responses["instances"], responses["finish_reason"]):
        kind = "instances_classification" if task["is_classification"] else "instances_generation"
        text = opening(kind) + (text or "") if opened else text or ""
        parse = parse_classification_instances if task["is_classification"] else parse_generation_instances
        instances, dropped = parse(text, finish_reason)
        kept, filtered = filter_instances(instances, max_instances)
        parsed += len(instances) + sum(dropped.values())
        unparseable += not instances and not dropped
        drops.update(dropped + filtered)
        rows += [{**task, **instance} for instance in kept]
    return rows, unparseable, parsed, drops


# -- the funnel of the bootstrap loop -----------------------------------------------------------------------

RULE_REASONS = (
    "too_short",
    "too_long",
    "blacklisted_word",
    "starts_with_write_a_program",
    "starts_with_punctuation",
    "starts_with_non_ascii",
)


def bootstrap_stages(reader: ResponseReader, pool: TaskPool, rounds: int) -> list[tuple]:
    """The loop's funnel as (stage, rows in, rows out, dropped by reason, details) records:
    generate (responses), parse (responses with a list), filter (the rules), novelty (ROUGE-L)."""
    rule_drops = {r: n for r, n in pool.dropped.items() if r in RULE_REASONS}
    passed = pool.offered - sum(rule_drops.values())
    answered = reader.responses - reader.failed
    novelty_drops = {r: pool.dropped[r] for r in ("too_similar", "target_reached") if pool.dropped[r]}
    items = {f"items_{reason}": n for reason, n in reader.item_drops.items()}
    return [
        ("generate", reader.responses, answered, _nonzero(request_failed=reader.failed), {"rounds": rounds}),
        (
            "parse",
            answered,
            answered - reader.unparseable,
            _nonzero(unparseable=reader.unparseable),
            {"tasks_parsed": reader.tasks, **items},
        ),  # fmt: skip
        ("filter", pool.offered, passed, rule_drops, {}),
        ("novelty", passed, len(pool.accepted), novelty_drops, {"threshold": pool.novelty.threshold}),
    ]


def stop_message(reader: ResponseReader, pool: TaskPool, rounds: int, why: str) -> str:
    rules = sum(n for r, n in pool.dropped.items() if r in RULE_REASONS)
    return (
        f"warning: stopped after {rounds} rounds: {why}. {len(pool.accepted)} of {pool.target} instructions; "
        f"{reader.responses} responses, {reader.failed} failed, {reader.unparseable} unparseable, "
        f"{reader.tasks} tasks parsed, {rules} dropped by the rules, {pool.dropped['too_similar']} too similar. "
        "A model that does not write the numbered list format (see stats.json, or keep_rejected: true) or too "
        "small a max_new_tokens are the usual causes."
    )


def _nonzero(**counts: int) -> dict[str, int]:
    return {reason: n for reason, n in counts.items() if n}
