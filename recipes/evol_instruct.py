"""Evol-Instruct: seed instructions rewritten into harder or rarer ones over several rounds, then answered.

The method (WizardLM, Xu et al., 2023): in each round every instruction is rewritten by one operation,
in depth (add a constraint, deepen, concretise, require more reasoning steps, complicate the input) or
in breadth (a new, rarer instruction of the same domain); the model answers the rewrite, and failed
evolutions are eliminated with their reason. Survivors go on to the next round.

    python recipes/evol_instruct.py --config configs/evol_instruct/demo.yaml
    accelerate launch recipes/evol_instruct.py --config configs/evol_instruct/default.yaml

`output: final` keeps the instructions that survived every round; `output: all_rounds` keeps every
round's survivors (WizardLM's pool mixes the generations).
"""

from dataclasses import dataclass
from typing import Literal

from datasets import concatenate_datasets

from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import exit_on_user_error
from builders.methods.evol_instruct import (
    OPERATIONS,
    check_operations,
    choose_operation,
    clean_evolved,
    evolution_prompt,
    instruction_checks,
    response_checks,
)
from builders.methods.reasoning.traces import question_text
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class EvolInstructConfig(RecipeConfig):
    """Evol-Instruct: instructions -> rounds of (rewrite by one operation, answer, eliminate) -> survivors."""

    instruction_column: str = knob("instruction", "column holding the seed instruction")
    input_column: str = knob("input", "column holding the instruction's input, appended when present (Alpaca)")
    rounds: int = knob(4, "evolution rounds (WizardLM ran 4)", min=1)
    operations: list[str] = knob(list(OPERATIONS), "operations drawn from, uniformly, per row and round")
    output: Literal["final", "all_rounds"] = knob("final", "final: survivors of every round; all_rounds: each round's")
    max_similarity: float = knob(0.9, "eliminate rewrites at least this similar to their parent (word sequence)")
    min_response_words: int = knob(10, "eliminate rewrites whose answer has fewer words (characters for Chinese)")
    drop_truncated: bool = knob(True, "eliminate rewrites that hit max_new_tokens")
    drop_truncated_responses: bool = knob(False, "eliminate rewrites whose answer hit response_max_new_tokens")
    evolution_max_new_tokens: int = knob(512, "most tokens of a rewritten instruction", min=1)
    max_new_tokens: int = knob(1024, "most tokens of an answer")
    prompts_folder: str | None = knob(None, "a folder with your own evol_instruct/<operation>.jinja templates")
    dedup: bool = knob(True, "near-dedup the final instructions")


INFO = RecipeInfo(
    name="evol_instruct",
    title="Evol-Instruct instructions",
    method="Evol-Instruct (instructions rewritten in depth or in breadth over several rounds, with elimination)",
    summary="Instructions evolved from seed instructions into harder (in-depth) or rarer (in-breadth) ones over "
    "several rounds, each answered by the model; failed evolutions are eliminated with their reason.",
    paper_title="WizardLM: Empowering Large Language Models to Follow Complex Instructions",
    paper_url="https://arxiv.org/abs/2304.12244",
    tags=["evol-instruct", "instruction-tuning"],
    text_column="instruction",
    templates="`builders/prompts/evol_instruct/*.jinja` (one template per operation; shared rules in `_rules.jinja`)",
    columns={
        "instruction": "the evolved instruction",
        "response": "the model's answer to it",
        "original_instruction": "the seed instruction (with its input) the lineage started from",
        "operations": "the operation applied in each round, in order",
        "history": "the instruction before each round (original first)",
        "rounds": "rounds this instruction went through",
        "model": "the model that rewrote and answered",
        "finish_reason": "stop or length, for the response",
    },
)
COLUMNS = list(INFO.columns)


def seed_rows(batch, *, instruction_column, input_column):
    inputs = batch.get(input_column) or [""] * len(batch[instruction_column])
    texts = [question_text(i, x) for i, x in zip(batch[instruction_column], inputs)]
    return {
        "instruction": texts,
        "original_instruction": texts,
        "operations": [[] for _ in texts],
        "history": [[] for _ in texts],
    }


def add_evolution_prompts(batch, *, operations, seed, round_, folder):
    ops = [choose_operation(operations, seed, row_id, round_) for row_id in batch[ROW_ID]]
    return {
        "operation": ops,
        "evolution_prompt": [evolution_prompt(i, op, folder) for i, op in zip(batch["instruction"], ops)],
    }


def take_evolution(batch):
    return {"evolved": [clean_evolved(t) for t in batch["evolved_raw"]]}


def advance(batch, *, round_):
    return {
        "history": [h + [parent] for h, parent in zip(batch["history"], batch["instruction"])],
        "operations": [o + [op] for o, op in zip(batch["operations"], batch["operation"])],
        "instruction": batch["evolved"],
        "rounds": [round_] * len(batch["evolved"]),
    }


@exit_on_user_error
def main(argv=None):
    config = parse_config(EvolInstructConfig, argv)
    operations = check_operations(config.operations)
    run = Run(config, INFO)

    seeds = run.load(columns=[config.instruction_column], key_hint="instruction_column")
    rows = seeds.map(
        seed_rows,
        batched=True,
        remove_columns=[c for c in seeds.column_names if c != ROW_ID],
        fn_kwargs={"instruction_column": config.instruction_column, "input_column": config.input_column},
        desc="Seed instructions",
    )
    evolve_sampling = run.sampling(max_new_tokens=config.evolution_max_new_tokens)
    survivors = []
    for round_ in range(1, config.rounds + 1):
        rows = rows.map(
            add_evolution_prompts,
            batched=True,
            fn_kwargs={
                "operations": operations,
                "seed": config.seed,
                "round_": round_,
                "folder": config.prompts_folder,
            },
            desc=f"Choosing operations (round {round_})",
        )
        rows = run.generate(
            rows,
            prompt_column="evolution_prompt",
            output_column="evolved_raw",
            stage=f"evolve_{round_}",
            sampling=evolve_sampling,
        )
        rows = rows.map(take_evolution, batched=True, desc="Rewritten instructions")
        checks = instruction_checks("instruction", "evolved", config.max_similarity, config.drop_truncated)
        rows = run.filter(rows, checks, stage=f"eliminate_{round_}")
        rows = run.generate(rows, prompt_column="evolved", output_column="response", stage=f"respond_{round_}")
        checks = response_checks("response", config.min_response_words, config.drop_truncated_responses)
        rows = run.filter(rows, checks, stage=f"eliminate_responses_{round_}")
        rows = rows.map(advance, batched=True, fn_kwargs={"round_": round_}, desc="Next generation")
        survivors.append(rows)
        if len(rows) == 0:
            break

    if config.output == "all_rounds":
        rows = concatenate_datasets([s.select_columns(rows.column_names) for s in survivors if len(s)] or [rows])
        rows = rows.flatten_indices()  # dedup's select([]) on a concatenation of selections fails otherwise
        run.record("all_rounds", len(survivors[-1]), len(rows), rounds=len(survivors))
    rows = run.dedup(rows, column="instruction", stage="dedup")
    rows = rows.map(lambda b: {"model": [config.model] * len(b["instruction"])}, batched=True, desc="Metadata")
    run.finish(
        rows,
        seed_data=f"`{config.dataset}` (column `{config.instruction_column}`)",
        columns=COLUMNS,
        card_sections=[("Operations", operations_table(rows, operations))],
    )


def operations_table(rows, operations):
    """How often each operation appears in the lineages of the kept rows."""
    counts = {op: 0 for op in operations}
    for ops in rows["operations"] if len(rows) else []:
        for op in ops:
            counts[op] = counts.get(op, 0) + 1
    lines = ["| operation | uses in kept lineages |", "|---|---|"]
    lines += [f"| {op} | {n} |" for op, n in counts.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
