"""Cosmopedia: textbook-quality synthetic text from seed extracts.

The method (Hugging Face's open reproduction of the Phi-1.5 data):
seed extracts -> prompts (extract + format + audience) -> generation -> filters -> dedup -> publish.

    python recipes/cosmopedia.py --config configs/cosmopedia/demo.yaml
    accelerate launch recipes/cosmopedia.py --config configs/cosmopedia/default.yaml
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml recipes/cosmopedia.py --config ...

Reproduce mode regenerates `text` from an existing prompt column (e.g. HuggingFaceTB/cosmopedia-100k):

    python recipes/cosmopedia.py --config configs/cosmopedia/reproduce_cosmopedia.yaml   # the public columns too
"""

from dataclasses import dataclass

from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import exit_on_user_error
from builders.filters.checks import generation_checks
from builders.filters.quality import quality_checks
from builders.generation.engines import check_context
from builders.methods.cosmopedia import AUDIENCES, FORMATS, build_prompt, choose_styles, style_pairs, truncate_extracts
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class CosmopediaConfig(RecipeConfig):
    """Cosmopedia: seed extracts -> prompts (format x audience) -> textbook-quality text."""

    seed_column: str = knob("text", "column of `dataset` holding the seed extract")
    topic_column: str = knob("topic", "column holding the extract's topic, used when present (see curate_seeds)")
    prompt_column: str | None = knob(None, "reproduce mode: generate from this existing prompt column")
    formats: list[str] = knob(list(FORMATS), "formats to draw from")
    audiences: list[str] = knob(list(AUDIENCES), "audiences to draw from")
    prompts_per_seed: int = knob(1, "distinct (format, audience) prompts built from each extract", min=1)
    max_seed_tokens: int = knob(1000, "extracts are cut to this many tokens of the model's tokenizer", min=1)
    min_text_tokens: int = knob(150, "drop texts shorter than this many tokens (Cosmopedia used 150)")
    drop_truncated: bool = knob(False, "drop texts that hit max_new_tokens")
    # Cosmopedia's sampling (Mixtral-8x7B-Instruct): 2,500 new tokens, T=0.6, top_p=0.95, top_k=50, rep. 1.2
    max_new_tokens: int = knob(2500, "most tokens generated per text")
    temperature: float = knob(0.6, "sampling temperature")
    top_p: float = knob(0.95, "nucleus sampling")
    top_k: int = knob(50, "top-k sampling")
    repetition_penalty: float = knob(1.2, "repetition penalty")
    quality_language: str | None = knob("en", "expected language of the text (the quality filter); null: any")


INFO = RecipeInfo(
    name="cosmopedia",
    title="Cosmopedia-style synthetic textbooks",
    method="Cosmopedia (seed extracts rewritten as textbooks, blog posts, tutorials and stories for several audiences)",
    summary="Synthetic textbooks, blog posts, how-to tutorials and stories, each written by a language model from a "
    "seed extract in a given format and for a given audience, for language-model pre-training.",
    paper_title="Cosmopedia: how to create large-scale synthetic data for pre-training",
    paper_url="https://huggingface.co/blog/cosmopedia",
    tags=["cosmopedia", "textbooks"],
    templates="`builders/prompts/cosmopedia/*.jinja` (one template per format; audience guidance in `_macros.jinja`)",
    columns={
        "prompt": "the prompt given to the model",
        "text": "the generated text",
        "text_token_length": "tokens in `text` (the model's tokenizer)",
        "seed_data": "the seed extract the prompt was built from",
        "format": "the text format asked for",
        "audience": "the target audience",
        "model": "the model that wrote `text`",
        "finish_reason": "stop (ended on its own) or length (hit max_new_tokens)",
    },
)
COLUMNS = ["prompt", "text", "text_token_length", "seed_data", "format", "audience", "model", "finish_reason"]


def build_prompts(batch, *, pairs, seed, per_seed, seed_column, topic_column, tokenizer, max_seed_tokens):
    """One to `per_seed` prompts per extract; each prompt row gets its own `_row` id for its sampling seed."""
    extracts = truncate_extracts(batch[seed_column], tokenizer, max_seed_tokens)
    topics = batch.get(topic_column) or [None] * len(extracts)
    out = {"prompt": [], "seed_data": [], "format": [], "audience": [], ROW_ID: []}
    for row_id, extract, topic in zip(batch[ROW_ID], extracts, topics):
        for k, (fmt, audience) in enumerate(choose_styles(pairs, seed, row_id, per_seed)):
            out["prompt"].append(build_prompt(extract, fmt, audience, topic))
            out["seed_data"].append(extract)
            out["format"].append(fmt)
            out["audience"].append(audience)
            out[ROW_ID].append(row_id * per_seed + k)
    return out


def add_metadata(batch, model):
    return {"text_token_length": batch["completion_tokens"], "model": [model] * len(batch["text"])}


@exit_on_user_error
def main(argv=None):
    config = parse_config(CosmopediaConfig, argv)
    if not config.prompt_column:  # extracts are cut to max_seed_tokens: the context must hold one and the text
        check_context(config, ("max_seed_tokens", config.max_seed_tokens))
    run = Run(config, INFO)

    if config.prompt_column:  # reproduce mode: the prompts exist already
        prompts = run.load(columns=[config.prompt_column], key_hint="prompt_column")
        if config.prompt_column != "prompt":
            prompts = prompts.rename_column(config.prompt_column, "prompt")
        seed_data = f"prompts from `{config.dataset}` (column `{config.prompt_column}`)"
    else:
        seeds = run.load(columns=[config.seed_column], key_hint="seed_column")
        prompts = run.map(
            seeds,
            build_prompts,
            stage="prompts",
            batched=True,
            remove_columns=seeds.column_names,
            fn_kwargs=dict(
                pairs=style_pairs(config.formats, config.audiences),
                seed=config.seed,
                per_seed=config.prompts_per_seed,
                seed_column=config.seed_column,
                topic_column=config.topic_column,
                tokenizer=run.tokenizer,
                max_seed_tokens=config.max_seed_tokens,
            ),
            desc="Building prompts",
        )
        seed_data = f"`{config.dataset}` (column `{config.seed_column}`)"

    texts = run.generate(prompts, prompt_column="prompt", output_column="text")
    texts = texts.map(add_metadata, batched=True, fn_kwargs={"model": config.model}, desc="Counting tokens")
    checks = generation_checks("text", min_tokens=config.min_text_tokens, drop_truncated=config.drop_truncated)
    checks += quality_checks(config, "text", prompt_column="prompt", token_column="text_token_length")
    texts = run.filter(texts, checks, stage="filter")
    texts = run.decontaminate(texts, column="text")
    texts = run.dedup(texts, column="text")
    run.finish(texts, seed_data=seed_data, columns=COLUMNS)


if __name__ == "__main__":
    main()
