"""Self-Instruct and Alpaca: instruction-tuning data bootstrapped from a few human-written seed tasks.

The method (Wang et al. 2023, "Self-Instruct"; Stanford Alpaca's simplified version of it):
seed tasks -> rounds of [prompts that show tasks from the pool -> generation -> parse the numbered lists ->
rule filters -> ROUGE-L novelty against the pool, one task at a time] until `num_instructions_to_generate`
-> (Self-Instruct mode: is it a classification task? -> instances, output-first or input-first -> instance
filters) -> publish.

    python recipes/self_instruct.py --config configs/self_instruct/demo.yaml                # Alpaca mode
    python recipes/self_instruct.py --config configs/self_instruct/demo_self_instruct.yaml  # Self-Instruct mode
    python recipes/self_instruct.py --config configs/self_instruct/default.yaml --mode self_instruct
    accelerate launch recipes/self_instruct.py --config configs/self_instruct/default.yaml

See docs/self_instruct.md.

The accept loop runs in the main process (in every process of a multi-process run, identically): whether a
task is novel depends on every task accepted before it. Generation is checkpointed per round
(`.checkpoints/.../round-0000`), so a rerun resumes where the last one stopped and rebuilds the same pool.
"""

import sys
from dataclasses import dataclass
from typing import Literal

from datasets import Dataset

from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import UserError, exit_on_user_error
from builders.methods.self_instruct.bootstrap import (
    ResponseReader,
    TaskPool,
    bootstrap_stages,
    classification_prompts,
    instance_prompts,
    read_instances,
    round_prompts,
    stop_message,
)
from builders.methods.self_instruct.parsing import parse_yes_no
from builders.methods.self_instruct.prompts import opening
from builders.methods.self_instruct.seeds import read_seed_tasks
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class SelfInstructConfig(RecipeConfig):
    """Self-Instruct / Alpaca: seed tasks -> new instructions (ROUGE-L novelty) -> inputs and outputs."""

    mode: Literal["alpaca", "self_instruct"] = knob(
        "alpaca", "alpaca: instruction, input and output in one list; self_instruct: instructions, then instances"
    )
    num_instructions_to_generate: int = knob(100, "stop once the pool holds this many new instructions", min=1)
    request_batch_size: int = knob(5, "prompts per round, all in one engine call (Alpaca used 5)", min=1)
    num_prompt_instructions: int | None = knob(
        None, "tasks shown per prompt (None: 3 for alpaca, 8 for self_instruct)", min=1
    )
    num_machine_instructions: int = knob(2, "self_instruct: how many of the shown tasks are machine-written")
    tasks_per_request: int | None = knob(
        None, "most new tasks read from one response (None: 20 alpaca, 8 self_instruct)", min=1
    )
    similarity_threshold: float = knob(
        0.7, "drop a task whose ROUGE-L F against any pool instruction is above this", above=0, max=1
    )
    num_most_similar: int = knob(10, "pool instructions recorded in `most_similar_instructions`", min=1)
    max_idle_rounds: int = knob(3, "stop after this many rounds in a row that add no instruction to the pool", min=1)
    max_rounds: int | None = knob(None, "stop after this many rounds whatever the count (None: no limit)")
    max_instances_per_task: int = knob(5, "self_instruct: most instances kept per instruction", min=1)
    instance_max_new_tokens: int = knob(350, "self_instruct: most tokens generated for a task's instances", min=1)
    instance_temperature: float = knob(0.0, "self_instruct: sampling temperature of the instances (paper: 0)", min=0)
    list_regex: str | None = knob(None, "constrain each task-list response to this regex (structured output)")
    instance_regex: str | None = knob(None, "self_instruct: constrain each instances response to this regex")
    # Alpaca's sampling (text-davinci-003): temperature 1.0, top_p 1.0, up to 3,072 new tokens per list
    max_new_tokens: int = knob(3072, "most tokens generated per list of tasks")
    temperature: float = knob(1.0, "sampling temperature of the task lists")
    top_p: float = knob(1.0, "nucleus sampling")
    dedup: bool = knob(False, "not available here: the ROUGE-L novelty filter is this method's deduplication")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dedup:
            raise UserError("self_instruct has no MinHash dedup (ROUGE-L novelty replaces it); remove `dedup: true`")
        self.num_prompt_instructions = self.num_prompt_instructions or (3 if self.mode == "alpaca" else 8)
        self.tasks_per_request = self.tasks_per_request or (20 if self.mode == "alpaca" else 8)
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


# -- the steps ----------------------------------------------------------------------------------------------


def bootstrap_instructions(run: Run, config: SelfInstructConfig, pool: TaskPool) -> None:
    """Rounds of generation, each read task by task into the pool (in order), until it holds enough.

    Stops early when `max_idle_rounds` rounds in a row add nothing (a model that does not write the list
    format never spins forever), or after `max_rounds`.
    """
    opened = not config.use_chat_template  # raw completion: prompts end with the opening of the next item
    reader = ResponseReader(
        config.mode, config.tasks_per_request, opening(config.mode, config.num_prompt_instructions) if opened else ""
    )
    pattern = {"regex": config.list_regex} if config.list_regex else None
    sampling = run.sampling(structured=run.structured(pattern, "list_regex", "remove list_regex"))
    rounds, idle, stopped = 0, 0, None
    while not pool.full:
        if rounds == config.max_rounds:
            stopped = f"max_rounds ({config.max_rounds}) reached"
            break
        rows = range(rounds * config.request_batch_size, (rounds + 1) * config.request_batch_size)
        prompts = round_prompts(
            config.mode,
            pool,
            rows,
            num_shown=config.num_prompt_instructions,
            num_machine=config.num_machine_instructions,
            tasks_per_request=config.tasks_per_request,
            seed=config.seed,
            open_item=opened,
        )
        responses = run.generate(
            Dataset.from_dict({"prompt": prompts, ROW_ID: list(rows)}),
            prompt_column="prompt",
            output_column="response",
            stage=f"round-{rounds:04d}",  # checkpointed per round
            sampling=sampling,
            record=False,  # the rounds are recorded together below
        )
        before = len(pool.accepted)
        for text, finish_reason in zip(responses["response"], responses["finish_reason"]):
            for task in reader.read(text, finish_reason):
                pool.offer(task)  # the accept loop: sequential, in the order the model wrote the tasks
        rounds += 1
        idle = 0 if len(pool.accepted) > before else idle + 1
        if idle == config.max_idle_rounds:
            stopped = f"the last {idle} rounds added no instruction"
            break

    for stage, rows_in, rows_out, dropped, details in bootstrap_stages(reader, pool, rounds):
        run.record(stage, rows_in, rows_out, dropped, **details)
    if pool.rejected:
        run.keep_rejected(Dataset.from_list(pool.rejected), "bootstrap")
    if stopped:
        print(stop_message(reader, pool, rounds, stopped), file=sys.stderr, flush=True)


def classify_tasks(run: Run, config: SelfInstructConfig, tasks: list[dict], seeds: list[dict]) -> list[dict]:
    """Ask the model whether each instruction is a classification task (a Yes/No answer, constrained where the
    engine has structured output)."""
    prompts = classification_prompts(tasks, seeds, config.seed)
    ds = Dataset.from_dict({"prompt": prompts, ROW_ID: list(range(len(tasks)))})
    choice = run.structured({"choice": ["Yes", "No"]}, "classify")
    sampling = run.sampling(structured=choice, max_new_tokens=4, temperature=0.0)
    answers = run.generate(ds, prompt_column="prompt", output_column="answer", stage="classify", sampling=sampling)
    labels = [parse_yes_no(a) for a in answers["answer"]]
    kept = [{**task, "is_classification": label} for task, label in zip(tasks, labels) if label is not None]
    n_clf = sum(t["is_classification"] for t in kept)
    unclear = {"unclear_answer": len(tasks) - len(kept)} if len(kept) < len(tasks) else {}
    run.record("classification", len(tasks), len(kept), unclear, classification=n_clf, other=len(kept) - n_clf)
    return kept


def generate_instances(run: Run, config: SelfInstructConfig, tasks: list[dict], seeds: list[dict]) -> Dataset:
    """Instances for each task (output-first for classification, input-first otherwise), then their filters."""
    opened = not config.use_chat_template
    prompts = instance_prompts(tasks, seeds, config.seed, config.max_instances_per_task, opened)
    ds = Dataset.from_dict({"prompt": prompts, ROW_ID: list(range(len(tasks)))})
    pattern = {"regex": config.instance_regex} if config.instance_regex else None
    sampling = run.sampling(
        max_new_tokens=config.instance_max_new_tokens,
        temperature=config.instance_temperature,
        structured=run.structured(pattern, "instance_regex", "remove instance_regex"),
    )
    responses = run.generate(
        ds, prompt_column="prompt", output_column="instances", stage="instances", sampling=sampling
    )
    rows, unparseable, parsed, drops = read_instances(tasks, responses, config.max_instances_per_task, opened)
    no_instances = {"unparseable": unparseable} if unparseable else {}
    run.record("instance_parse", len(tasks), len(tasks) - unparseable, no_instances, instances_parsed=parsed)
    run.record("instance_filter", parsed, len(rows), drops)
    return Dataset.from_list(rows) if rows else empty_rows()


def empty_rows() -> Dataset:
    return Dataset.from_dict({c: [] for c in COLUMNS})


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
        rows = Dataset.from_list(pool.accepted) if pool.accepted else empty_rows()
    elif pool.accepted:
        tasks = classify_tasks(run, config, pool.accepted, seeds)
        rows = generate_instances(run, config, tasks, seeds)
    else:
        rows = empty_rows()
    run.finish(rows, seed_data=f"{len(seeds)} seed tasks from `{config.dataset}`", columns=COLUMNS)


if __name__ == "__main__":
    main()
