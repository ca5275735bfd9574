"""Persona Hub: personas from texts, more personas from their relations, then data written for each persona.

The method (Scaling Synthetic Data Creation with 1,000,000,000 Personas):
documents -> text-to-persona (who would read, write, like or dislike this?) -> persona-to-persona over `hops`
rounds (someone in a relation to each persona) -> dedup of the personas (MinHash on words, then embedding
similarity) -> "create {data} with {persona}" for math problems, logical reasoning puzzles, user instructions,
knowledge-rich texts, game NPCs and tools (function definitions, held to a JSON schema).

    python recipes/persona_hub.py --config configs/persona_hub/demo.yaml
    python recipes/persona_hub.py --config configs/persona_hub/demo.yaml --stages text_to_persona,persona_to_persona
    accelerate launch recipes/persona_hub.py --config configs/persona_hub/default.yaml

Stages are selectable: without `text_to_persona` the personas come from `dataset` (column `persona_column`);
without `synthesize` the output is the persona pool itself.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from datasets import Dataset, concatenate_datasets

from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import UserError, exit_on_user_error
from builders.filters.checks import generation_checks
from builders.methods.persona_hub.personas import (
    PERSONA_COLUMNS,
    cut_documents,
    input_persona_rows,
    lineage_only,
    parse_personas,
    persona_checks,
    persona_to_persona_rows,
    source_checks,
    synthesis_rows,
    text_to_persona_rows,
)
from builders.methods.persona_hub.prompts import PERSONA_SCHEMA, RELATIONS, TASKS, TOOL_SCHEMA, VIEWPOINTS, check_names
from builders.methods.persona_hub.tools import parse_tool_rows, tool_check
from builders.output.card import RecipeInfo
from builders.run import Run

STAGES = ("text_to_persona", "persona_to_persona", "synthesize")


@dataclass
class PersonaHubConfig(RecipeConfig):
    """Persona Hub: texts -> personas -> related personas -> dedup -> data written for each persona."""

    stages: list[str] = knob(
        list(STAGES), "stages to run, in this order: text_to_persona, persona_to_persona, synthesize"
    )
    text_column: str = knob("text", "column of `dataset` holding the documents (text_to_persona)")
    persona_column: str = knob("persona", "column of `dataset` holding personas when text_to_persona is not run")
    min_source_words: int = knob(0, "skip documents with fewer words (0: keep all)")
    max_source_tokens: int = knob(512, "documents are cut to this many tokens of the model's tokenizer")
    viewpoints: list[str] = knob(list(VIEWPOINTS), "whom text-to-persona asks for: reader, writer, admirer, critic")
    persona_format: Literal["text", "json"] = knob("text", "text: a plain reply; json: structured output {persona}")
    persona_max_new_tokens: int = knob(128, "most tokens generated per persona", min=1)
    min_persona_words: int = knob(5, "drop personas with fewer words")
    max_persona_words: int = knob(80, "drop personas with more words")
    hops: int = knob(6, "persona-to-persona rounds (the paper used six, after the six degrees of separation)", min=1)
    relations: list[str] = knob(list(RELATIONS), "relations persona-to-persona follows (see prompts/persona_hub.py)")
    relations_per_persona: int = knob(
        1,
        "new personas per persona and hop; the pool grows geometrically with it (r + r^2 + ... + r^hops each)",
        min=1,
    )
    persona_dedup: bool = knob(True, "dedup the persona pool: MinHash, then embedding similarity")
    persona_minhash_threshold: float = knob(0.9, "Jaccard threshold of the persona MinHash (the paper: 0.9)")
    persona_minhash_ngram: int = knob(1, "word n-grams of the persona MinHash (the paper: 1, personas are short)")
    embedding_model: str = knob("all-minilm-l6-v2", "sentence-transformers model for the embedding dedup")
    embedding_threshold: float = knob(0.9, "cosine similarity at which two personas are duplicates (the paper: 0.9)")
    tasks: list[str] = knob(list(TASKS), "synthesis tasks: math, reasoning, instruction, knowledge, npc, tool")
    tasks_per_persona: int = knob(1, "synthesis prompts per persona, each for a different task", min=1)
    few_shot: int = knob(0, "examples in each synthesis prompt (0: zero-shot)")
    min_output_tokens: int = knob(16, "drop synthesized outputs shorter than this many tokens")
    drop_truncated: bool = knob(True, "drop personas and outputs that hit their token limit")
    max_new_tokens: int = knob(1024, "most tokens generated per synthesized output")

    def __post_init__(self) -> None:
        super().__post_init__()
        stages = check_names("stages", self.stages, STAGES)
        if stages != sorted(stages, key=STAGES.index):
            raise UserError(f"config key 'stages' must follow the order {', '.join(STAGES)}; got {', '.join(stages)}")
        check_names("viewpoints", self.viewpoints, VIEWPOINTS)
        check_names("relations", self.relations, RELATIONS)
        check_names("tasks", self.tasks, TASKS)


INFO = RecipeInfo(
    name="persona_hub",
    title="Persona Hub: personas and persona-driven synthetic data",
    method="Persona Hub (personas from texts and from each other's relations, deduplicated, then used to vary "
    "the prompts of math, reasoning, instruction, knowledge, game-character and tool data)",
    summary="Synthetic personas (one specific person each, with how it was made) and, for each persona, data a "
    "language model wrote with that persona in mind: math problems, logical reasoning puzzles, user instructions, "
    "knowledge-rich articles, game NPCs or tools (one function's interface, as JSON).",
    paper_title="Scaling Synthetic Data Creation with 1,000,000,000 Personas",
    paper_url="https://arxiv.org/abs/2406.20094",
    tags=["persona-hub", "personas"],
    text_column="persona",
    templates="`builders/prompts/persona_hub/*.jinja` (text-to-persona, persona-to-persona, one per task; few-shot "
    "examples in `examples.json`)",
    columns={
        "persona": "a description of one specific person",
        "persona_id": "the persona's id; `parent_id` of the personas made from it",
        "hop": "0: made from a text (or given); n: made from a persona of hop n-1",
        "relation": "hop 0: whom the text was asked about (reader, writer, admirer, critic); later hops: the "
        "relation to `parent_persona`",
        "source_text": "the document the persona was made from (hop 0)",
        "parent_id": "the id of the persona it was made from (hops >= 1)",
        "parent_persona": "the persona it was made from (hops >= 1)",
        "task": "what was synthesized: math, reasoning, instruction, knowledge, npc or tool",
        "prompt": "the synthesis prompt given to the model",
        "output": "the synthesized data",
        "finish_reason": "stop (ended on its own) or length (hit max_new_tokens)",
    },
)
SYNTHESIS_COLUMNS = [*PERSONA_COLUMNS, "task", "prompt", "output", "finish_reason"]


def make_personas(run: Run, prompts: Dataset, stage: str, config: PersonaHubConfig, structured: bool) -> Dataset:
    """Generate a persona for every prompt row, parse it, and keep the good ones (with their lineage columns).

    `structured`: the prompts ask for JSON, which structured output holds to `PERSONA_SCHEMA`."""
    if len(prompts) == 0:
        return lineage_only(prompts)
    sampling = run.sampling(
        max_new_tokens=config.persona_max_new_tokens, structured={"json": PERSONA_SCHEMA} if structured else None
    )
    out = run.generate(prompts, prompt_column="prompt", output_column="generation", stage=stage, sampling=sampling)
    out = out.map(parse_personas, batched=True, fn_kwargs={"column": "generation", "structured": structured})
    checks = persona_checks(config.min_persona_words, config.max_persona_words, config.drop_truncated)
    return lineage_only(run.filter(out, checks, stage=f"{stage}_filter"))


def personas_from_texts(run: Run, config: PersonaHubConfig, structured: bool) -> Dataset:
    """Text-to-persona: who would read, write, like or dislike each document (cut to `max_source_tokens`)?"""
    docs = run.load(columns=[config.text_column], key_hint="text_column")
    if config.min_source_words:
        docs = run.filter(docs, source_checks(config.text_column, config.min_source_words), stage="sources")
    docs = docs.map(
        cut_documents,
        batched=True,
        fn_kwargs=dict(text_column=config.text_column, tokenizer=run.tokenizer, max_tokens=config.max_source_tokens),
        desc="Cutting documents",
    )
    prompts = docs.map(
        text_to_persona_rows,
        batched=True,
        remove_columns=[c for c in docs.column_names if c != ROW_ID],
        fn_kwargs=dict(
            text_column=config.text_column, viewpoints=config.viewpoints, seed=config.seed, structured=structured
        ),
        desc="Building text-to-persona prompts",
    )
    return make_personas(run, prompts, "text_to_persona", config, structured)


def expand_personas(run: Run, personas: Dataset, config: PersonaHubConfig, structured: bool) -> Dataset:
    """Persona-to-persona over `hops` rounds: the pool of every hop's personas, each with its lineage."""
    next_id = max(personas["persona_id"], default=-1) + 1
    pool, frontier = [personas], personas
    for hop in range(1, config.hops + 1):
        if len(frontier) == 0:
            break
        prompts = frontier.map(
            persona_to_persona_rows,
            batched=True,
            with_indices=True,
            remove_columns=frontier.column_names,
            fn_kwargs=dict(
                relations=config.relations,
                per_persona=config.relations_per_persona,
                seed=config.seed,
                hop=hop,
                first_id=next_id,
                structured=structured,
            ),
            desc=f"Building persona-to-persona prompts (hop {hop})",
        )
        next_id += len(frontier) * config.relations_per_persona
        frontier = make_personas(run, prompts, f"persona_to_persona_{hop}", config, structured)
        pool.append(frontier)
    personas = concatenate_datasets(pool).flatten_indices()  # one table: later selections stay simple
    by_hop = {str(h): personas["hop"].count(h) for h in range(config.hops + 1)}
    run.record("persona_pool", len(personas), len(personas), by_hop=by_hop)
    return personas


def synthesize(run: Run, prompts: Dataset) -> Dataset:
    """Every prompt's data, in persona order. Tool definitions are generated apart: structured output holds them to
    `TOOL_SCHEMA` (a sampling setting, so one per generation stage); then each is checked as a definition."""
    is_tool = np.array(prompts["task"]) == "tool"
    parts = []
    if not is_tool.all():
        rest = prompts.select(np.flatnonzero(~is_tool))
        parts.append(run.generate(rest, prompt_column="prompt", output_column="output", stage="synthesize"))
    if is_tool.any():
        schema = run.structured({"json": TOOL_SCHEMA}, "tasks: tool", "leave tool out of tasks")
        tools = prompts.select(np.flatnonzero(is_tool))
        sampling = run.sampling(structured=schema)
        parts.append(
            run.generate(
                tools, prompt_column="prompt", output_column="output", stage="synthesize_tool", sampling=sampling
            )
        )
    data = concatenate_datasets(parts).sort(ROW_ID) if len(parts) > 1 else parts[0]
    return data.map(parse_tool_rows, batched=True, desc="Reading tool definitions")


def hop_table(before: Dataset, after: Dataset) -> str:
    rows = ["| hop | personas made | kept after dedup |", "|---|---|---|"]
    made, kept = before["hop"], after["hop"]
    rows += [f"| {h} | {made.count(h)} | {kept.count(h)} |" for h in sorted(set(made))]
    return "\n".join(rows)


@exit_on_user_error
def main(argv=None):
    config = parse_config(PersonaHubConfig, argv)
    run = Run(config, INFO)
    # JSON personas need structured output; without it (a server that is not vLLM) they are asked for as text.
    makes_personas = {"text_to_persona", "persona_to_persona"} & set(config.stages)
    schema = {"json": PERSONA_SCHEMA} if config.persona_format == "json" and makes_personas else None
    structured = run.structured(schema, "persona_format", "set persona_format: text") is not None

    # 1. Personas from texts, or given as input.
    if "text_to_persona" in config.stages:
        personas = personas_from_texts(run, config, structured)
        seed_data = f"`{config.dataset}` (column `{config.text_column}`)"
    else:
        given = run.load(columns=[config.persona_column], key_hint="persona_column")
        personas = lineage_only(
            given.map(input_persona_rows, batched=True, fn_kwargs={"persona_column": config.persona_column})
        )
        seed_data = f"personas from `{config.dataset}` (column `{config.persona_column}`)"

    # 2. Persona-to-persona: every persona made in a hop leads to `relations_per_persona` new ones in the next.
    if "persona_to_persona" in config.stages:
        personas = expand_personas(run, personas, config, structured)

    # 3. Dedup of the personas: MinHash on words (1-grams, 0.9), then embedding similarity (cosine 0.9).
    made = personas
    if config.persona_dedup and {"text_to_persona", "persona_to_persona"} & set(config.stages):
        personas = run.dedup(
            personas,
            column="persona",
            stage="persona_minhash",
            threshold=config.persona_minhash_threshold,
            ngram=config.persona_minhash_ngram,
            force=True,
        )
        personas = run.embedding_dedup(
            personas,
            column="persona",
            stage="persona_embedding",
            threshold=config.embedding_threshold,
            model=config.embedding_model,
        )
    sections = [("Personas by hop", hop_table(made, personas))]

    if "synthesize" not in config.stages or len(personas) == 0:
        run.finish(personas, seed_data=seed_data, columns=PERSONA_COLUMNS, card_sections=sections)
        return

    # 4. Persona-driven synthesis: "create {data} with {persona}".
    prompts = run.map(
        personas,
        synthesis_rows,
        stage="synthesis_prompts",
        batched=True,
        remove_columns=personas.column_names,
        fn_kwargs=dict(
            tasks=config.tasks, per_persona=config.tasks_per_persona, few_shot=config.few_shot, seed=config.seed
        ),
        desc="Building synthesis prompts",
    )
    data = synthesize(run, prompts)
    checks = generation_checks("output", min_tokens=config.min_output_tokens, drop_truncated=config.drop_truncated)
    data = run.filter(data, [*checks, tool_check], stage="synthesize_filter")
    data = run.dedup(data, column="output", stage="output_dedup")
    run.finish(data, seed_data=seed_data, columns=SYNTHESIS_COLUMNS, card_sections=sections)


if __name__ == "__main__":
    main()
