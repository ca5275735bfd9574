"""OSS-Instruct (Magicoder): coding problems and solutions written by a model from fragments of real code.

The method: source documents -> 1-15 consecutive lines from each (seeded per row) -> the model writes a
self-contained problem inspired by the fragment and a solution, in two marked sections -> parse -> filters
(missing section, no code block, Python that does not parse, a problem that refers to the fragment) ->
decontamination against code benchmarks -> dedup -> publish.

    python recipes/oss_instruct.py --config configs/oss_instruct/demo.yaml
    python recipes/oss_instruct.py --config configs/oss_instruct/demo.yaml --dataset path/to/repo --include '**/*.py'
    accelerate launch recipes/oss_instruct.py --config configs/oss_instruct/default.yaml
"""

from dataclasses import dataclass

from datasets import Features, Value

from builders.config import knob, parse_config
from builders.data import ROW_ID
from builders.errors import UserError, exit_on_user_error
from builders.filters.checks import generation_checks
from builders.generation.prefill import prefilled
from builders.methods.code.oss_instruct import PROBLEM_HEADING, build_prompt, parse_problem_solution, solution_checks
from builders.methods.code.sources import CodeSourceConfig, extract_snippet
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class OSSInstructConfig(CodeSourceConfig):
    """OSS-Instruct: code fragments -> self-contained problems with solutions."""

    languages: list[str] = knob([], "keep documents in these languages, e.g. [python] (empty: every language)")
    snippet_min_lines: int = knob(1, "fewest consecutive lines taken from a document (Magicoder: 1)")
    snippet_max_lines: int = knob(15, "most consecutive lines taken from a document (Magicoder: 15)")
    snippets_per_document: int = knob(1, "fragments drawn from each document, each its own prompt")
    whole_documents: bool = knob(
        False, "each document is the fragment as it is (a dataset of fragments, e.g. Magicoder's `seed` column)"
    )
    max_snippet_chars: int = knob(2000, "fragments are cut to this many characters (minified code has long lines)")
    min_problem_words: int = knob(10, "drop problems shorter than this many words (they cannot state a task)")
    prefill: bool = knob(True, "start the model's answer with the problem heading (small models skip the format)")
    max_new_tokens: int = knob(1536, "most tokens generated per answer")
    temperature: float = knob(0.7, "sampling temperature")
    top_p: float = knob(0.95, "nucleus sampling")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.snippet_min_lines <= self.snippet_max_lines:
            raise UserError(
                f"snippet lines must satisfy 1 <= snippet_min_lines <= snippet_max_lines, got "
                f"{self.snippet_min_lines} and {self.snippet_max_lines}"
            )


INFO = RecipeInfo(
    name="oss_instruct",
    title="OSS-Instruct coding problems and solutions",
    method="OSS-Instruct (Magicoder): a model writes a new problem and its solution inspired by a random fragment "
    "of open-source code",
    summary="Programming problems with solutions, each written by a language model from a few lines of real source "
    "code, for instruction-tuning code models.",
    paper_title="Magicoder: Empowering Code Generation with OSS-Instruct",
    paper_url="https://arxiv.org/abs/2312.02120",
    task_categories=["text-generation"],
    tags=["oss-instruct", "magicoder", "code"],
    text_column="problem",
    templates="`builders/prompts/oss_instruct/problem_solution.jinja`",
    columns={
        "seed_snippet": "the fragment of real code the problem was inspired by",
        "lang": "the fragment's programming language",
        "problem": "the generated problem (the instruction)",
        "solution": "the generated solution: a code block and a short explanation (the response)",
        "source": "the file or dataset row the fragment came from",
        "model": "the model that wrote problem and solution",
    },
)
COLUMNS = ["seed_snippet", "lang", "problem", "solution", "source", "model"]
FEATURES = Features({name: Value("string") for name in COLUMNS})


def build_prompts(batch, *, seed, per_document, whole, min_lines, max_lines, max_chars, prefill, chat, system_prompt):
    """`per_document` fragments per document (`whole`: the document itself, once); each prompt row gets its own
    `_row` id for its seeds."""
    per_document = 1 if whole else per_document
    out = {"seed_snippet": [], "lang": [], "source": [], "prompt": [], ROW_ID: []}
    for row_id, code, lang, path in zip(batch[ROW_ID], batch["code"], batch["lang"], batch["path"]):
        for k in range(per_document):
            prompt_row = row_id * per_document + k
            snippet = (code if whole else extract_snippet(code, seed, prompt_row, min_lines, max_lines))[:max_chars]
            out["seed_snippet"].append(snippet)
            out["lang"].append(lang)
            out["source"].append(path)
            prompt = build_prompt(snippet, lang) if snippet else ""
            out["prompt"].append(prefilled(prompt, PROBLEM_HEADING if prefill else None, chat, system_prompt))
            out[ROW_ID].append(prompt_row)
    return out


def parse_answer(row, model, prefill):
    problem, solution = parse_problem_solution((PROBLEM_HEADING if prefill else "") + row["response"])
    return {"problem": problem or "", "solution": solution or "", "model": model}


def seed_checks(languages):
    wanted = set(languages)

    def in_languages(row):
        return (not wanted or row["lang"] in wanted), "other_language"

    def has_snippet(row):
        return bool(row["seed_snippet"].strip()), "empty_snippet"

    return [in_languages, has_snippet]


@exit_on_user_error
def main(argv=None):
    config = parse_config(OSSInstructConfig, argv)
    run = Run(config, INFO)

    docs = config.load_code()
    run.record("input", len(docs), len(docs))
    prompts = run.map(
        docs,
        build_prompts,
        stage="snippets",
        batched=True,
        remove_columns=docs.column_names,
        fn_kwargs=dict(
            seed=config.seed,
            per_document=config.snippets_per_document,
            whole=config.whole_documents,
            min_lines=config.snippet_min_lines,
            max_lines=config.snippet_max_lines,
            max_chars=config.max_snippet_chars,
            prefill=config.prefill,
            chat=config.use_chat_template,
            system_prompt=config.system_prompt,
        ),
        desc="Extracting snippets",
    )
    prompts = run.filter(prompts, seed_checks(config.languages), stage="seeds")

    answers = run.generate(prompts, prompt_column="prompt", output_column="response")
    answers = answers.map(
        parse_answer, fn_kwargs={"model": config.model, "prefill": config.prefill}, desc="Parsing problem and solution"
    )
    rows = run.filter(
        answers, generation_checks("response") + solution_checks(config.min_problem_words), stage="filter"
    )
    # as Magicoder did: a row whose problem or solution overlaps a benchmark (HumanEval, MBPP, ...) is dropped
    rows = run.decontaminate(rows, column="problem", stage="decontaminate_problem")
    rows = run.decontaminate(rows, column="solution", stage="decontaminate_solution")
    rows = run.dedup(rows, column="problem")
    run.finish(
        rows.select_columns(COLUMNS).cast(FEATURES),
        seed_data=f"`{config.dataset}` (fragments of source code)",
        columns=COLUMNS,
    )


if __name__ == "__main__":
    main()
