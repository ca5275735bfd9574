"""The task pool of Self-Instruct and Alpaca, the prompts of each step, and the funnel of the bootstrap loop.

The pool starts with the seed tasks and grows with every accepted instruction. A new instruction is
accepted when it passes the rule filters (length, words a text model cannot act on, how it starts) and
its ROUGE-L F-measure against every instruction already in the pool is at most the threshold
(`novelty.RougeLNovelty`). Acceptance depends on what was accepted before, so `TaskPool.offer` runs
sequentially, in the order the model produced the tasks.
"""

from __future__ import annotations

import random
from collections import Counter

from datasets import Dataset

from builders.filters.checks import REASON
from builders.generation.stage import row_seed
from builders.methods.self_instruct.novelty import RougeLNovelty
from builders.methods.self_instruct.parsing import (
    filter_instances,
    instruction_rule,
    parse_classification_instances,
    parse_generation_instances,
    parse_instruction_list,
    parse_task_list,
)
from builders.methods.self_instruct.prompts import (
    alpaca_prompt,
    classify_prompt,
    instances_prompt,
    opening,
    self_instruct_prompt,
)

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
        ),
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
