"""Generate: any dataset, any prompt template, generations out.

Each row's columns fill a Jinja template; the model's answer becomes a new column. Steps chain: a later
step's template can use the columns of earlier steps (a question from a document, then an answer to the
question). Structured output (a JSON schema or a choice list) goes through vLLM's structured outputs,
and the fields of a JSON answer become columns; a server that is not vLLM gets plain requests, and each
free-text answer is held to the asked shape (the rows that do not fit are dropped with a reason).

    python recipes/generate.py --config configs/generate/demo.yaml
    python recipes/generate.py --dataset data.jsonl --template "Summarise: {{ text }}" --output_column summary
    accelerate launch recipes/generate.py --config configs/generate/default.yaml
"""

from dataclasses import dataclass, fields, replace

from builders.config import RecipeConfig, knob, parse_config
from builders.errors import UserError, exit_on_user_error
from builders.filters.checks import generation_checks
from builders.methods.generate_steps.samples import collect_samples
from builders.methods.generate_steps.steps import (
    check_columns,
    check_regex,
    fit_batch,
    parse_json_batch,
    parse_step,
    parsed_features,
    render_batch,
)
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class GenerateConfig(RecipeConfig):
    """Fill a prompt template from each row, generate, keep the answer as a new column (steps can chain)."""

    template: str | None = knob(None, "Jinja template (inline, or a .jinja file) filled with each row's columns")
    output_column: str = knob("generation", "column that receives the generation of `template`")
    structured_output: dict | None = knob(None, "{json: schema} | {choice: [...]} | {regex: ...} for `template`")
    n: int = knob(1, "generations per row", min=1)
    samples_as_list: bool = knob(False, "with n > 1: one row holding a list of samples, instead of a row per sample")
    steps: list = knob([], "chained steps [{template, output_column, system_prompt?, structured_output?, n?, ...}]")
    min_tokens: int = knob(1, "drop generations with fewer tokens")
    drop_truncated: bool = knob(False, "drop generations that hit max_new_tokens")
    dedup_column: str | None = knob(None, "near-dedup on this column (default: the last step's output)")


SINGLE_STEP_KEYS = ("output_column", "structured_output", "n")  # each step has its own

INFO = RecipeInfo(
    name="generate",
    title="Generated with a prompt template",
    method="template-driven generation: each row's columns fill a prompt template and the model's answer is kept",
    summary="Rows of an input dataset, each with one or more model generations produced from a prompt template.",
    tags=["generate"],
    text_column="generation",
    templates="given in `config.yaml` (`template` or `steps`)",
)


def steps_from(config: GenerateConfig) -> list:
    if config.steps and config.template:
        raise UserError("give either `template` (one step) or `steps` (a chain), not both")
    if config.steps:
        defaults = {f.name: f.default for f in fields(config)}
        for key in SINGLE_STEP_KEYS:
            if getattr(config, key) != defaults[key]:
                raise UserError(
                    f"`{key}` applies to `template` only; with `steps`, set it in each step (steps[i].{key})"
                )
        return [parse_step(raw, i) for i, raw in enumerate(config.steps)]
    if not config.template:
        raise UserError("no prompt template: set `template` (inline or a .jinja file) or `steps`")
    single = {"template": config.template, "output_column": config.output_column, "n": config.n}
    if config.structured_output:
        single["structured_output"] = config.structured_output
    return [parse_step(single, 0)]


@exit_on_user_error
def main(argv=None):
    config = parse_config(GenerateConfig, argv)
    steps = steps_from(config)
    run = Run(config, replace(INFO, text_column=steps[-1].output_column))
    rows = run.load()
    check_columns(steps, rows.column_names)
    structured = []  # per step: what the engine is asked for; None with a step's structured_output: free text
    for i, step in enumerate(steps):
        where = f"steps[{i}].structured_output" if config.steps else "structured_output"
        structured.append(run.structured(step.structured_output, where))
        if step.structured_output and structured[-1] is None:
            check_regex(step.structured_output, where)  # before any generation

    for i, (step, spec) in enumerate(zip(steps, structured), start=1):
        name = f"step{i}-{step.output_column}"
        rows = rows.map(
            render_batch,
            batched=True,
            fn_kwargs={"template": step.template, "prompt_column": "_prompt"},
            desc=f"Rendering prompts ({name})",
        )
        sampling = run.sampling(n=step.n, structured=spec, **step.sampling)
        rows = run.generate(
            rows,
            prompt_column="_prompt",
            output_column=step.output_column,
            stage=name,
            sampling=sampling,
            use_chat_template=step.use_chat_template,
            system_prompt=step.system_prompt,
        )
        checks = generation_checks(
            step.output_column, min_tokens=config.min_tokens, drop_truncated=config.drop_truncated
        )
        if step.structured_output and spec is None:
            rows = rows.map(
                fit_batch,
                batched=True,
                fn_kwargs={"column": step.output_column, "structured": step.structured_output},
                desc=f"Reading free-text answers ({name})",
            )
            checks.append(lambda row: (row["_unfit"] is None, row["_unfit"]))
        if step.json_fields:
            rows = rows.map(
                parse_json_batch,
                batched=True,
                features=parsed_features(rows.features, step.json_fields),
                fn_kwargs={"column": step.output_column, "fields": step.json_fields},
                desc=f"Parsing JSON ({name})",
            )
            checks.append(lambda row: (row["_parsed"], "unparseable_json"))
        rows = run.filter(rows, checks, stage=f"filter-{step.output_column}")
        rows = rows.remove_columns([c for c in ("_prompt", "_parsed", "_unfit") if c in rows.column_names])

    rows = run.dedup(rows, column=config.dedup_column or steps[-1].output_column)
    if config.samples_as_list and steps[-1].n > 1:
        rows = collect_samples(rows, steps[-1].n, [steps[-1].output_column, "finish_reason", "completion_tokens"])
    run.finish(rows, seed_data=f"`{config.dataset}`")


if __name__ == "__main__":
    main()
