"""Self-Instruct and Alpaca: instruction-tuning data bootstrapped from a few human-written seed tasks.

The method (Wang et al. 2023, "Self-Instruct"; Stanford Alpaca's simplified version of it):
seed tasks -> rounds of [prompts that show tasks from the pool -> generation -> parse the numbered lists ->
rule filters -> ROUGE-L novelty against the pool, one task at a time] until `num_instructions_to_generate`
-> (Self-Instruct mode: is it a classification task? -> instances, output-first or input-first -> instance
filters) -> publish.

    python recipes/self_instruct.py --config configs/self_instruct/demo.yaml
    python recipes/self_instruct.py --config configs/self_instruct/demo.yaml --mode self_instruct
    python recipes/self_instruct.py --config configs/self_instruct/default.yaml
    accelerate launch recipes/self_instruct.py --config configs/self_instruct/default.yaml

The accept loop runs in the main process (in every process of a multi-process run, identically): whether a
task is novel depends on every task accepted before it. Generation is checkpointed per round
(`.checkpoints/.../round-0000`), so a rerun resumes where the last one stopped and rebuilds the same pool.
"""

import sys
from dataclasses import dataclass
from typing import Literal

from datasets import Dataset

from builders.card import RecipeInfo
from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import UserError, exit_on_user_error
from builders.prompts.self_instruct import (
    alpaca_prompt,
    classify_prompt,
    instances_prompt,
    opening,
    self_instruct_prompt,
)
from builders.run import Run
from builders.self_instruct import (
    ResponseReader,
    TaskPool,
    filter_instances,
    parse_classification_instances,
    parse_generation_instances,
    parse_yes_no,
    read_seed_tasks,
    sample_examples,
)

RULE_REASONS = (
    "too_short",
    "too_long",
    "blacklisted_word",
    "starts_with_write_a_program",
    "starts_with_punctuation",
    "starts_with_non_ascii",
)


@dataclass
class SelfInstructConfig(RecipeConfig):
    """Self-Instruct / Alpaca: seed tasks -> new instructions (ROUGE-L novelty) -> inputs and outputs."""

    mode: Literal["alpaca", "self_instruct"] = knob(
        "alpaca", "alpaca: instruction, input and output in one list; self_instruct: instructions, then instances"
    )
    num_instructions_to_generate: int = knob(100, "stop once the pool holds this many new instructions")
    request_batch_size: int = knob(5, "prompts per round, all in one engine call (Alpaca used 5)")
    num_prompt_instructions: int | None = knob(
        None, "tasks shown per prompt (None: 3 for alpaca, 8 for self_instruct)"
    )
    num_machine_instructions: int = knob(2, "self_instruct: how many of the shown tasks are machine-written")
    tasks_per_request: int | None = knob(
        None, "most new tasks read from one response (None: 20 alpaca, 8 self_instruct)"
    )
    similarity_threshold: float = knob(0.7, "drop a task whose ROUGE-L F against any pool instruction is above this")
    num_most_similar: int = knob(10, "pool instructions recorded in `most_similar_instructions`")
    max_idle_rounds: int = knob(3, "stop after this many rounds in a row that add no instruction to the pool")
    max_rounds: int | None = knob(None, "stop after this many rounds whatever the count (None: no limit)")
    max_instances_per_task: int = knob(5, "self_instruct: most instances kept per instruction")
    instance_max_new_tokens: int = knob(350, "self_instruct: most tokens generated for a task's instances")
    instance_temperature: float = knob(0.0, "self_instruct: sampling temperature of the instances (paper: 0)")
    # Alpaca's sampling (text-davinci-003): temperature 1.0, top_p 1.0, up to 3,072 new tokens per list
    max_new_tokens: int = knob(3072, "most tokens generated per list of tasks")
    temperature: float = knob(1.0, "sampling temperature of the task lists")
    top_p: float = knob(1.0, "nucleus sampling")
    dedup: bool = knob(False, "not available here: the ROUGE-L novelty filter is this method's deduplication")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dedup:
            raise UserError("self_instruct has no MinHash dedup (ROUGE-L novelty replaces it); remove `dedup: true`")
        if not 0 < self.similarity_threshold <= 1:
            raise UserError(f"similarity_threshold must be in (0, 1], got {self.similarity_threshold}")
        self.num_prompt_instructions = self.num_prompt_instructions or (3 if self.mode == "alpaca" else 8)
        self.tasks_per_request = self.tasks_per_request or (20 if self.mode == "alpaca" else 8)
        for name in (
            "num_instructions_to_generate",
            "request_batch_size",
            "max_idle_rounds",
            "num_most_similar",
            "num_prompt_instructions",
            "tasks_per_request",
            "max_instances_per_task",
        ):
            if getattr(self, name) < 1:
                raise UserError(f"config key '{name}' must be >= 1, got {getattr(self, name)}")
        if self.mode == "self_instruct" and not 0 <= self.num_machine_instructions < self.num_prompt_instructions:
            raise UserError(
                f"num_machine_instructions ({self.num_machine_instructions}) must be at least 0 and below "
                f"num_prompt_instructions ({self.num_prompt_instructions}): the prompts need seed tasks too"
            )


INFO = RecipeInfo(
    name="self_instruct",
    title="Self-Instruct instruction data",
    method="Self-Instruct (instructions bootstrapped from seed tasks, kept when their ROUGE-L F-measure against "
    "every earlier instruction is at most 0.7), in Stanford Alpaca's or the paper's variant",
    summary="Instructions with inputs and outputs for instruction tuning, written by a language model from a "
    "small set of human-written seed tasks and kept only when new enough compared with all earlier ones.",
    paper_title="Self-Instruct: Aligning Language Models with Self-Generated Instructions",
    paper_url="https://arxiv.org/abs/2212.10560",
    task_categories=["text-generation"],
    tags=["self-instruct", "alpaca", "instruction-tuning"],
    text_column="instruction",
    templates="`builders/prompts/self_instruct/*.jinja`",
    columns={
        "instruction": "the task, written by the model",
        "input": "the material the task works on (empty when it needs none)",
        "output": "the answer, written by the model",
        "most_similar_instructions": "the pool instructions most similar to this one (ROUGE-L F), most similar first",
        "avg_similarity_score": "mean ROUGE-L F of the instruction against the whole pool when it was accepted",
        "is_classification": "whether the model judged the task a classification task (self_instruct mode)",
    },
)
COLUMNS = [
    "instruction",
    "input",
    "output",
    "most_similar_instructions",
    "avg_similarity_score",
    "is_classification",
]


def nonzero(**counts: int) -> dict[str, int]:
    return {reason: n for reason, n in counts.items() if n}


# -- bootstrapping instructions -----------------------------------------------------------------------------


def round_prompts(config: SelfInstructConfig, pool: TaskPool, round_id: int) -> Dataset:
    """`request_batch_size` prompts, each showing tasks drawn from (seed, row id); rows are numbered globally."""
    k, raw = config.num_prompt_instructions, not config.use_chat_template
    rows = range(round_id * config.request_batch_size, (round_id + 1) * config.request_batch_size)
    prompts = []
    for row in rows:
        if config.mode == "alpaca":  # Alpaca shows seed tasks only
            shown = sample_examples(pool.seeds, k, config.seed, row, "alpaca-examples")
            examples = [{"instruction": t["instruction"], **t["instances"][0]} for t in shown]
            prompts.append(alpaca_prompt(examples, config.tasks_per_request, open_item=raw))
        else:  # Self-Instruct: 6 seed + 2 machine-written (fewer while the pool has fewer), in random order
            machine = sample_examples(
                pool.machine_instructions(), config.num_machine_instructions, config.seed, row, "m"
            )
            human = sample_examples([t["instruction"] for t in pool.seeds], k - len(machine), config.seed, row, "h")
            shown = sample_examples(machine + human, k, config.seed, row, "order")
            prompts.append(self_instruct_prompt(shown, config.tasks_per_request, open_item=raw))
    return Dataset.from_dict({"prompt": prompts, ROW_ID: list(rows)})


def bootstrap_instructions(run: Run, config: SelfInstructConfig, pool: TaskPool) -> None:
    """Rounds of generation, each read task by task into the pool, until it holds enough new instructions.

    Stops early when `max_idle_rounds` rounds in a row add nothing (a model that does not write the list
    format never spins forever), or after `max_rounds`.
    """
    raw = not config.use_chat_template
    reader = ResponseReader(
        config.mode, config.tasks_per_request, opening(config.mode, config.num_prompt_instructions) if raw else ""
    )
    idle, round_id, stopped = 0, 0, None
    while not pool.full:
        if config.max_rounds is not None and round_id == config.max_rounds:
            stopped = f"max_rounds ({config.max_rounds}) reached"
            break
        prompts = round_prompts(config, pool, round_id)
        responses = run.generate(
            prompts, prompt_column="prompt", output_column="response", stage=f"round-{round_id:04d}", record=False
        )
        before = len(pool.accepted)
        for text, finish_reason in zip(responses["response"], responses["finish_reason"]):
            for task in reader.read(text, finish_reason):
                pool.offer(task)
        round_id += 1
        idle = 0 if len(pool.accepted) > before else idle + 1
        if idle == config.max_idle_rounds:
            stopped = f"the last {idle} rounds added no instruction"
            break

    rule_drops = {r: n for r, n in pool.dropped.items() if r in RULE_REASONS}
    passed = pool.offered - sum(rule_drops.values())
    answered = reader.responses - reader.failed
    run.record("generate", reader.responses, answered, nonzero(request_failed=reader.failed), rounds=round_id)
    run.record(
        "parse",
        answered,
        answered - reader.unparseable,
        nonzero(unparseable=reader.unparseable),
        tasks_parsed=reader.tasks,
        **{f"items_{k}": v for k, v in reader.item_drops.items()},
    )
    run.record("filter", pool.offered, passed, rule_drops)
    novelty_drops = {r: pool.dropped[r] for r in ("too_similar", "target_reached") if pool.dropped[r]}
    run.record("novelty", passed, len(pool.accepted), novelty_drops, threshold=config.similarity_threshold)
    if pool.rejected:
        run.keep_rejected(Dataset.from_list(pool.rejected), "bootstrap")
    if stopped:
        print(
            f"warning: stopped after {round_id} rounds: {stopped}. {len(pool.accepted)} of "
            f"{config.num_instructions_to_generate} instructions; {reader.responses} responses, "
            f"{reader.failed} failed, {reader.unparseable} unparseable, {reader.tasks} tasks parsed, "
            f"{sum(rule_drops.values())} dropped by the rules, {pool.dropped['too_similar']} too similar. "
            "A model that does not write the numbered list format (see stats.json, or keep_rejected: true) "
            "or too small a max_new_tokens are the usual causes.",
            file=sys.stderr,
            flush=True,
        )


# -- Self-Instruct: classification, then instances ----------------------------------------------------------


def classify_tasks(run: Run, config: SelfInstructConfig, tasks: list[dict], seeds: list[dict]) -> list[dict]:
    """Ask the model whether each instruction is a classification task (a constrained Yes/No answer)."""
    if not tasks:
        run.record("classification", 0, 0)
        return []
    clf = [s for s in seeds if s["is_classification"]]
    other = [s for s in seeds if not s["is_classification"]]
    prompts = []
    for row, task in enumerate(tasks):
        examples = sample_examples(clf, 3, config.seed, row, "clf") + sample_examples(
            other, 3, config.seed, row, "gen"
        )
        examples = sample_examples(examples, len(examples), config.seed, row, "clf-order")
        prompts.append(classify_prompt(task["instruction"], examples))
    ds = Dataset.from_dict({"prompt": prompts, ROW_ID: list(range(len(tasks)))})
    sampling = run.sampling(structured={"choice": ["Yes", "No"]}, max_new_tokens=4, temperature=0.0)
    answers = run.generate(ds, prompt_column="prompt", output_column="answer", stage="classify", sampling=sampling)
    kept, unclear = [], 0
    for task, answer in zip(tasks, answers["answer"]):
        is_classification = parse_yes_no(answer)
        if is_classification is None:
            unclear += 1
        else:
            kept.append({**task, "is_classification": is_classification})
    n_clf = sum(t["is_classification"] for t in kept)
    run.record(
        "classification",
        len(tasks),
        len(kept),
        nonzero(unclear_answer=unclear),
        classification=n_clf,
        other=len(kept) - n_clf,
    )
    return kept


def generate_instances(run: Run, config: SelfInstructConfig, tasks: list[dict], seeds: list[dict]) -> Dataset:
    """Instances for each task (output-first for classification, input-first otherwise), then their filters."""
    if not tasks:
        run.record("instance_filter", 0, 0)
        return Dataset.from_dict({c: [] for c in COLUMNS})
    raw = not config.use_chat_template
    prompts = []
    for row, task in enumerate(tasks):
        same_kind = [s for s in seeds if s["is_classification"] == task["is_classification"]] or seeds
        examples = sample_examples(same_kind, 2, config.seed, row, "instances")
        prompts.append(
            instances_prompt(
                task["instruction"], task["is_classification"], examples, config.max_instances_per_task, open_item=raw
            )
        )
    ds = Dataset.from_dict({"prompt": prompts, ROW_ID: list(range(len(tasks)))})
    sampling = run.sampling(max_new_tokens=config.instance_max_new_tokens, temperature=config.instance_temperature)
    responses = run.generate(
        ds, prompt_column="prompt", output_column="instances", stage="instances", sampling=sampling
    )

    rows, parsed, unparseable, drops = [], 0, 0, {}
    for task, text, finish_reason in zip(tasks, responses["instances"], responses["finish_reason"]):
        kind = "instances_classification" if task["is_classification"] else "instances_generation"
        text = opening(kind) + text if raw else text
        parse = parse_classification_instances if task["is_classification"] else parse_generation_instances
        instances, dropped = parse(text, finish_reason)
        kept, filtered = filter_instances(instances, config.max_instances_per_task)
        parsed += len(instances) + sum(dropped.values())
        unparseable += not instances and not dropped
        for reason, n in (dropped + filtered).items():
            drops[reason] = drops.get(reason, 0) + n
        rows += [{**task, **instance} for instance in kept]
    run.record(
        "instance_parse",
        len(tasks),
        len(tasks) - unparseable,
        nonzero(unparseable=unparseable),
        instances_parsed=parsed,
    )
    run.record("instance_filter", parsed, len(rows), drops)
    return Dataset.from_list(rows) if rows else Dataset.from_dict({c: [] for c in COLUMNS})


@exit_on_user_error
def main(argv=None):
    config = parse_config(SelfInstructConfig, argv)
    run = Run(config, INFO)
    seeds = read_seed_tasks(config.dataset, config.dataset_split, config.dataset_config, config.num_samples)
    run.record("input", len(seeds), len(seeds))

    pool = TaskPool(
        seeds,
        target=config.num_instructions_to_generate,
        threshold=config.similarity_threshold,
        top_k=config.num_most_similar,
        keep_rejected=config.keep_rejected,
    )
    bootstrap_instructions(run, config, pool)
    if config.mode == "alpaca":
        rows = Dataset.from_list(pool.accepted) if pool.accepted else Dataset.from_dict({c: [] for c in COLUMNS[:5]})
    else:
        tasks = classify_tasks(run, config, pool.accepted, seeds)
        rows = generate_instances(run, config, tasks, seeds)
    run.finish(rows, seed_data=f"{len(seeds)} seed tasks from `{config.dataset}`", columns=COLUMNS)


if __name__ == "__main__":
    main()
