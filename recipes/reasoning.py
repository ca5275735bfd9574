"""Reasoning traces: questions -> a thinking model -> `<think>` trace + answer -> filters -> SFT-ready messages.

The method (as in the open distillations of DeepSeek-R1 and Qwen3): ask a model that thinks before it
answers, keep its trace and its answer apart, and drop what a trainer should not see: traces that never
close, empty or truncated answers, answers in another language than the question, traces that loop,
and, where the question has a math reference answer, wrong final answers.

    python recipes/reasoning.py --config configs/reasoning/demo.yaml
    accelerate launch recipes/reasoning.py --config configs/reasoning/default.yaml

Models that think on their own need nothing more (Qwen3 needs `chat_template_kwargs: {enable_thinking:
true}`; DeepSeek-R1 distills open the block in their template). Models that do not think get the
opening tag prefilled in their reply (`prefill_think: true`); `budget_forcing: true` closes a trace that
runs out of `max_new_tokens` and lets the model answer after it.
"""

from dataclasses import dataclass

from datasets import concatenate_datasets

from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import UserError, exit_on_user_error
from builders.methods.reasoning.traces import (
    CLOSE_TAG,
    OPEN_TAG,
    assistant_content,
    forced_answer_prefill,
    needs_forcing,
    parse_thinking,
    question_text,
    reasoning_checks,
    template_opens_think,
    unclosed_trace,
)
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class ReasoningConfig(RecipeConfig):
    """Reasoning traces: questions -> thinking model -> <think> trace + answer -> filters -> messages."""

    instruction_column: str = knob("instruction", "column holding the question (or instruction)")
    input_column: str = knob("input", "column holding the instruction's input, appended when present (Alpaca)")
    reference_column: str | None = knob(
        None, "column with reference answers; math ones (numbers, \\boxed{}) check the final answer"
    )
    prefill_think: bool = knob(False, "start the model's reply with open_tag (models that do not think on their own)")
    open_tag: str = knob(OPEN_TAG, "tag that opens the reasoning trace")
    close_tag: str = knob(CLOSE_TAG, "tag that closes the reasoning trace")
    budget_forcing: bool = knob(False, "close a trace that hits max_new_tokens and generate the answer after it")
    force_unclosed: bool = knob(
        False, "budget_forcing also closes a trace the model ended without closing (small models answer inside it)"
    )
    answer_max_new_tokens: int = knob(
        1024, "most tokens of an answer generated after a closed trace (budget_forcing)", min=1
    )
    drop_truncated: bool = knob(True, "drop outputs that hit the token limit")
    check_language: bool = knob(True, "drop answers whose language differs from the question's (zh/en/...)")
    max_repeated_ngrams: float | None = knob(0.3, "drop traces whose share of repeated n-grams is above this (loops)")
    answer_tolerance: float = knob(
        1e-6, "numeric answers are compared to -log10(this) decimal places (math-verify's float_rounding)", min=0
    )
    dedup: bool = knob(False, "near-dedup the questions before generation")
    # Sampling recommended for thinking models (Qwen3, DeepSeek-R1): T=0.6, top_p=0.95, top_k=20; long outputs.
    max_new_tokens: int = knob(4096, "most tokens per output (trace + answer)")
    temperature: float = knob(0.6, "sampling temperature")
    top_p: float = knob(0.95, "nucleus sampling")
    top_k: int = knob(20, "top-k sampling")


INFO = RecipeInfo(
    name="reasoning",
    title="Reasoning traces",
    method="reasoning-trace distillation (questions answered by a model that thinks in `<think>` blocks first)",
    summary="Questions answered by a thinking model, each with its reasoning trace kept apart from its answer, "
    "filtered for closed traces, complete answers in the question's language, no loops and, where a reference "
    "exists, a correct final answer; `messages` is ready for SFT trainers.",
    paper_title="DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement Learning",
    paper_url="https://arxiv.org/abs/2501.12948",
    language=["en", "zh"],
    tags=["reasoning", "chain-of-thought", "distillation"],
    text_column="reasoning",
    templates="none: the question is the user's turn as it is (`system_prompt` and `prefill_think` are the only additions)",
    columns={
        "instruction": "the question",
        "input": "its input, if any (appended to the user's turn)",
        "reasoning": "the model's reasoning trace, without the tags",
        "answer": "the model's answer after the trace",
        "messages": "user turn + assistant turn holding the trace in its tags and the answer (for SFT)",
        "reference_answer": "the reference answer the final answer was checked against, if any",
        "model": "the model that wrote the trace",
        "finish_reason": "stop (ended on its own) or length (hit the token limit)",
        "completion_tokens": "tokens generated (trace + answer)",
    },
)
COLUMNS = list(INFO.columns)


def build_requests(batch, *, config, prefill):
    """The user's turn (instruction + input) and the prompt given to the model (a message list)."""
    inputs = batch.get(config.input_column) or [""] * len(batch[config.instruction_column])
    system = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    out = {"instruction": [], "input": [], "question": [], "prompt": []}
    for instruction, input_ in zip(batch[config.instruction_column], inputs):
        question = question_text(instruction, input_)
        reply = [{"role": "assistant", "content": prefill}] if prefill else []
        out["instruction"].append((instruction or "").strip())
        out["input"].append((input_ or "").strip())
        out["question"].append(question)
        out["prompt"].append(system + [{"role": "user", "content": question}] + reply)
    if config.reference_column:
        out["reference_answer"] = [None if r is None else str(r) for r in batch[config.reference_column]]
    return out


def split_outputs(batch, *, config, started_inside):
    parsed = [parse_thinking(o, config.open_tag, config.close_tag, started_inside) for o in batch["output"]]
    return {
        "reasoning": [p.reasoning or "" for p in parsed],
        "answer": [p.answer for p in parsed],
        "think_closed": [p.closed for p in parsed],
    }


def force_answers(run, parsed, config, prefill):
    """Budget forcing: a trace cut off by the token limit (with `force_unclosed`, any trace left open) is closed,
    and the model answers after it."""

    def to_force(row) -> bool:
        return needs_forcing(row["think_closed"], row["finish_reason"], config.force_unclosed)

    out_of_budget = parsed.filter(to_force, desc="Finding traces out of budget")
    if len(out_of_budget) == 0:
        return parsed
    rest = parsed.filter(lambda r: not to_force(r), desc="Keeping the others")

    def closed_prompt(row):
        trace = forced_answer_prefill(prefill + row["output"], config.open_tag, config.close_tag)
        messages = [m for m in row["prompt"] if m["role"] != "assistant"]
        return {
            "forced_prompt": messages + [{"role": "assistant", "content": trace}],
            "trace_tokens": row["completion_tokens"],
        }

    forced = run.generate(
        out_of_budget.map(closed_prompt, desc="Closing traces"),
        prompt_column="forced_prompt",
        output_column="forced_answer",
        stage="budget_forcing",
        sampling=run.sampling(max_new_tokens=config.answer_max_new_tokens),
    )

    def take_answer(row):
        return {
            "reasoning": unclosed_trace(prefill + row["output"], config.open_tag),
            "answer": row["forced_answer"].strip(),
            "think_closed": True,
            "completion_tokens": row["trace_tokens"] + row["completion_tokens"],
        }

    forced = forced.map(take_answer, remove_columns=["forced_prompt", "forced_answer", "trace_tokens"], desc="Answers")
    return concatenate_datasets([rest, forced.cast(rest.features)]).sort(ROW_ID)


def to_messages(batch, *, config):
    return {
        "messages": [
            [
                {"role": "user", "content": q},
                {"role": "assistant", "content": assistant_content(r, a, config.open_tag, config.close_tag)},
            ]
            for q, r, a in zip(batch["question"], batch["reasoning"], batch["answer"])
        ],
        "model": [config.model] * len(batch["question"]),
    }


def format_note(config, template_opens, prefill):
    opened_by = "the chat template" if template_opens else "a prefill of the reply" if prefill else "the model itself"
    forced = "Traces that hit `max_new_tokens`" + (
        " or that the model ended without closing the block" if config.force_unclosed else ""
    )
    forcing = (
        f" {forced} were closed and answered in up to {config.answer_max_new_tokens} tokens (budget forcing)."
        if config.budget_forcing
        else ""
    )
    return (
        f"The trace sits between `{config.open_tag}` and `{config.close_tag}`; the block was opened by {opened_by}."
        f"{forcing} `messages` holds the user's turn and the assistant's turn with the trace in its tags."
    )


@exit_on_user_error
def main(argv=None):
    config = parse_config(ReasoningConfig, argv)
    if not config.use_chat_template:
        raise UserError("the reasoning recipe talks to a chat model; remove `use_chat_template: false`")
    run = Run(config, INFO)

    questions = run.load(columns=[config.instruction_column], key_hint="instruction_column")
    if config.reference_column and config.reference_column not in questions.column_names:
        raise UserError(
            f"dataset '{config.dataset}' has no column '{config.reference_column}'; its columns are "
            f"{', '.join(c for c in questions.column_names if c != ROW_ID)}: fix `reference_column`"
        )
    template_opens = run.tokenizer is not None and template_opens_think(
        run.tokenizer, config.open_tag, config.chat_template_kwargs
    )
    prefill = f"{config.open_tag}\n" if config.prefill_think and not template_opens else ""
    questions = questions.map(
        build_requests,
        batched=True,
        remove_columns=[c for c in questions.column_names if c != ROW_ID],
        fn_kwargs={"config": config, "prefill": prefill},
        desc="Building requests",
    )
    questions = run.dedup(questions, column="question", stage="dedup_questions")

    outputs = run.generate(questions, prompt_column="prompt", output_column="output", stage="generate")
    parsed = outputs.map(
        split_outputs,
        batched=True,
        fn_kwargs={"config": config, "started_inside": bool(prefill) or template_opens},
        desc="Splitting trace and answer",
    )
    if config.budget_forcing:
        parsed = force_answers(run, parsed, config, prefill)
    checks = reasoning_checks(
        question_column="question",
        reference_column="reference_answer" if config.reference_column else None,
        drop_truncated=config.drop_truncated,
        check_language=config.check_language,
        max_repeated_ngrams=config.max_repeated_ngrams,
        tolerance=config.answer_tolerance,
        open_tag=config.open_tag,
        close_tag=config.close_tag,
    )
    kept = run.filter(parsed, checks, stage="filter")
    kept = kept.map(to_messages, batched=True, fn_kwargs={"config": config}, desc="Building messages")
    run.finish(
        kept,
        seed_data=f"`{config.dataset}` (column `{config.instruction_column}`)",
        columns=COLUMNS,
        card_sections=[("Reasoning format", format_note(config, template_opens, prefill))],
    )


if __name__ == "__main__":
    main()
