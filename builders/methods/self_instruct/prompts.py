"""Self-Instruct and Alpaca prompts: Jinja templates in `prompts/self_instruct/`, our own wording.

Each builder takes the examples already drawn (see `bootstrap.sample_examples`). With
`open_item` (raw completion, for base models) the prompt ends with the opening of the next item, which the
model continues; `opening(...)` gives that text back so the parser can read the response as a whole list.
"""

from __future__ import annotations

from builders.prompts import render


def alpaca_prompt(examples: list[dict], num_tasks: int, open_item: bool) -> str:
    """Alpaca: seed tasks (instruction, input, output) as a numbered list; up to `num_tasks` new ones."""
    examples = [{**t, "instruction": t["instruction"].rstrip(":")} for t in examples]
    return render("self_instruct/alpaca_tasks.jinja", examples=examples, num_tasks=num_tasks, open_item=open_item)


def self_instruct_prompt(instructions: list[str], num_new: int, open_item: bool) -> str:
    """Self-Instruct: 8 instructions (6 seed, 2 machine-written) as a numbered list to continue."""
    instructions = [i.rstrip(":") for i in instructions]
    return render(
        "self_instruct/self_instruct_tasks.jinja", instructions=instructions, num_new=num_new, open_item=open_item
    )


def classify_prompt(instruction: str, examples: list[dict]) -> str:
    return render("self_instruct/classify.jinja", instruction=instruction, examples=examples)


def instances_prompt(
    instruction: str, is_classification: bool, examples: list[dict], max_instances: int, open_item: bool
) -> str:
    """Output-first (label, then input) for classification tasks, input-first otherwise."""
    name = "instances_classification" if is_classification else "instances_generation"
    return render(
        f"self_instruct/{name}.jinja",
        instruction=instruction,
        examples=examples,
        max_instances=max_instances,
        open_item=open_item,
    )


def opening(kind: str, num_examples: int = 0) -> str:
    """The text a raw-completion prompt of `kind` ends with (the response continues it)."""
    return {
        "alpaca": f"{num_examples + 1}. Instruction:",
        "self_instruct": f"{num_examples + 1}.",
        "instances_generation": "Example 1",
        "instances_classification": "Class label:",
    }[kind]
