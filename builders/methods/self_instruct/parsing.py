"""Parsers for the model's lists (tasks, instructions, instances, yes/no) and the rule filters of both modes.

Every model output that does not parse is counted with a reason, never an exception.
"""

from __future__ import annotations

import re
import string
from collections import Counter

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
