"""Instructions from documents: Self-Instruct from context.

Given a document and a description of an application, the model writes N diverse requests a user of
that application could make about the document; the list is parsed into one row per request,
too-short and near-duplicate requests are dropped (within and across documents), and optionally each
request is answered from the document.

    python recipes/instructions_from_documents.py --config configs/instructions_from_documents/demo.yaml
    accelerate launch recipes/instructions_from_documents.py --config configs/instructions_from_documents/default.yaml
"""

from dataclasses import dataclass

from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import exit_on_user_error
from builders.filters.checks import generation_checks
from builders.methods.instructions_from_documents import parse_list
from builders.output.card import RecipeInfo
from builders.prompts import render
from builders.run import Run


@dataclass
class InstructionsFromDocumentsConfig(RecipeConfig):
    """Diverse user requests about each document (and their answers), for instruction tuning."""

    context_column: str = knob("text", "column holding the document or context")
    application_description: str = knob(
        "An AI assistant that helps people understand documents.", "what the application does (steers the requests)"
    )
    num_instructions: int = knob(5, "requests asked for per document")
    answer: bool = knob(True, "answer each request from its document in a second step")
    constrain_list: bool = knob(
        False, "force the output into a numbered list (a regex; vLLM or a vLLM server; elsewhere the text is parsed)"
    )
    min_words: int = knob(4, "drop requests with fewer words")
    query_dedup_ngram: int = knob(3, "n-gram size for near-dedup of the (short) requests")
    max_new_tokens: int = knob(512, "most tokens generated per list or answer")


INFO = RecipeInfo(
    name="instructions_from_documents",
    title="Instructions from documents",
    method="Self-Instruct from context: diverse user requests generated from documents, then answered",
    summary="User requests about documents, written by a language model for a described application, with answers "
    "grounded in the documents.",
    paper_title="Self-Instruct: Aligning Language Models with Self-Generated Instructions",
    paper_url="https://arxiv.org/abs/2212.10560",
    tags=["self-instruct", "instructions"],
    text_column="instruction",
    templates="`builders/prompts/instructions_from_documents/{queries,answer}.jinja`",
    columns={
        "context": "the document the request is about",
        "instruction": "a request a user could make about the document",
        "response": "the model's answer, grounded in the document",
    },
)


def queries_prompt(row, description, count):
    return {
        "prompt": render(
            "instructions_from_documents/queries.jinja",
            context=row["context"],
            application_description=description,
            num_instructions=count,
        )
    }


def one_row_per_request(batch, count):
    out = {"context": [], "instruction": [], ROW_ID: []}
    for row_id, context, text in zip(batch[ROW_ID], batch["context"], batch["requests"]):
        for k, request in enumerate(parse_list(text)[:count]):
            out["context"].append(context)
            out["instruction"].append(request)
            out[ROW_ID].append(row_id * count + k)
    return out


def list_regex(count: int) -> str:
    """Exactly `count` numbered lines of 3 to 60 words (small models otherwise drift out of the list format)."""
    line = r"[A-Za-z][^\n]{10,400}"
    return "".join(rf"{i}\. {line}\n" for i in range(1, count + 1))


def has_items(row):
    return len(parse_list(row["requests"])) > 0, "unparseable_list"


def long_enough(min_words):
    def check(row):
        return len(row["instruction"].split()) >= min_words, "too_short"

    return check


def answer_prompt(row):
    return {
        "prompt": render(
            "instructions_from_documents/answer.jinja", context=row["context"], instruction=row["instruction"]
        )
    }


@exit_on_user_error
def main(argv=None):
    config = parse_config(InstructionsFromDocumentsConfig, argv)
    run = Run(config, INFO)
    docs = run.load(columns=[config.context_column], key_hint="context_column")
    docs = docs.select_columns([config.context_column, ROW_ID]).rename_column(config.context_column, "context")

    docs = docs.map(
        queries_prompt,
        fn_kwargs={"description": config.application_description, "count": config.num_instructions},
        desc="Building prompts",
    )
    pattern = {"regex": list_regex(config.num_instructions)} if config.constrain_list else None
    sampling = run.sampling(structured=run.structured(pattern, "constrain_list", "set constrain_list: false"))
    lists = run.generate(docs, prompt_column="prompt", output_column="requests", stage="requests", sampling=sampling)
    lists = run.filter(lists, [*generation_checks("requests"), has_items], stage="parse-lists")

    requests = run.map(
        lists,
        one_row_per_request,
        stage="split-lists",
        batched=True,
        remove_columns=lists.column_names,
        fn_kwargs={"count": config.num_instructions},
        desc="One row per request",
    )
    requests = run.filter(requests, [long_enough(config.min_words)], stage="filter-requests")
    requests = run.dedup(
        requests, column="instruction", stage="dedup-requests", ngram=config.query_dedup_ngram, force=True
    )

    if config.answer:
        requests = requests.map(answer_prompt, desc="Building answer prompts")
        requests = run.generate(requests, prompt_column="prompt", output_column="response", stage="answers")
        requests = run.filter(requests, generation_checks("response"), stage="filter-answers")
    run.finish(
        requests,
        seed_data=f"`{config.dataset}` (column `{config.context_column}`)",
        columns=["context", "instruction", "response"],
    )


if __name__ == "__main__":
    main()
