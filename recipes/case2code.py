"""Case2Code: learn to write a function from its observed input/output pairs, with pairs made by running code.

The method: Python source -> harvest pure functions with `ast` -> a model writes about ten example inputs per
function -> parse them with `ast.literal_eval` -> run every function on every input in the sandbox -> drop
inputs that raise, over-long outputs, functions that time out or always return the same thing -> training
prompts from m of the n observed pairs, through one of thirteen templates -> target: the function's code.

    python recipes/case2code.py --config configs/case2code/demo.yaml
    python recipes/case2code.py --config configs/case2code/demo.yaml --dataset path/to/repo --include '**/*.py'
    accelerate launch recipes/case2code.py --config configs/case2code/default.yaml
"""

from dataclasses import dataclass
from typing import Literal

from datasets import Dataset, Features, Value

from builders.config import knob, parse_config
from builders.data import ROW_ID
from builders.dedup.minhash import exact_dedup
from builders.errors import UserError, exit_on_user_error
from builders.filters.checks import generation_checks
from builders.generation.prefill import prefilled
from builders.methods.code.case2code import observe
from builders.methods.code.case2code_prompts import (
    TEMPLATES,
    choose_shown,
    describe_example,
    inputs_pattern,
    inputs_prompt,
    parse_inputs,
    strip_docstring,
    training_prompt,
)
from builders.methods.code.harvest import harvest_rows
from builders.methods.code.sources import CodeSourceConfig
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class Case2CodeConfig(CodeSourceConfig):
    """Case2Code: functions from real code, run on model-written inputs -> (input/output pairs -> code)."""

    max_function_lines: int = knob(60, "longest function harvested, in lines")
    max_functions: int | None = knob(None, "use at most N harvested functions, a seeded sample (None: all)")
    num_inputs: int = knob(10, "example inputs asked per function (the paper: about ten)")
    prefill: bool = knob(True, "begin the answer with an open Python list (python format; small models drift)")
    inputs_format: Literal["python", "json"] = knob(
        "python",
        "python: free text parsed with ast.literal_eval; json: structured output, a compact JSON list (weak models)",
    )
    timeout_s: float = knob(2.0, "wall-clock seconds per execution in the sandbox")
    memory_mb: int = knob(1024, "address-space limit of the sandbox process, in MiB")
    max_output_chars: int = knob(200, "drop examples whose output repr is longer than this")
    min_examples: int = knob(3, "drop functions with fewer surviving input/output pairs", min=2)
    prompts_per_function: int = knob(1, "training prompts made from each function (other templates and pairs)")
    min_shown: int = knob(2, "fewest pairs shown in a training prompt (m)")
    max_shown: int = knob(10, "most pairs shown in a training prompt (m <= n, the pairs observed)")
    strip_docstrings: bool = knob(True, "remove the docstring from the target code")
    max_new_tokens: int = knob(768, "most tokens generated per answer (a list of inputs)")
    temperature: float = knob(0.8, "sampling temperature")
    top_p: float = knob(0.95, "nucleus sampling")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.min_shown <= self.max_shown:
            raise UserError(f"need 1 <= min_shown <= max_shown, got {self.min_shown} and {self.max_shown}")


INFO = RecipeInfo(
    name="case2code",
    title="Case2Code: functions inferred from input/output examples",
    method="Case2Code (functions harvested from real code, run on model-written inputs in a sandbox; the task is "
    "to write the function from its observed input/output pairs)",
    summary="Training prompts that show a function's observed input/output pairs and ask for its code; the pairs "
    "come from running real Python functions on model-written inputs in a sandbox, the target is the function.",
    paper_title="Case2Code: Scalable Synthetic Data for Code Generation",
    paper_url="https://arxiv.org/abs/2407.12504",
    tags=["case2code", "code", "program-synthesis"],
    text_column="prompt",
    templates="`builders/prompts/case2code/inputs.jinja` (asking for inputs) and "
    f"{len(TEMPLATES)} training-prompt templates in `builders/prompts/case2code/`",
    columns={
        "function": "the harvested function, with the imports it needs (what was run)",
        "examples": "every observed pair: the input (keyword arguments, a dict literal) and the output's repr",
        "prompt": "the training prompt: m of the pairs, shown through one template",
        "target": "the training target: the function's code",
        "name": "the function's name",
        "template": "the template of `prompt`",
        "num_shown": "m, the number of pairs shown in `prompt`",
        "source": "the file the function came from",
        "model": "the model that wrote the inputs",
    },
)
INPUTS_START = "```python\n["  # the prefilled start of the answer
COLUMNS = ["function", "examples", "prompt", "target", "name", "template", "num_shown", "source", "model"]
FEATURES = Features(
    {
        **{name: Value("string") for name in COLUMNS},
        "examples": [{"input": Value("string"), "output": Value("string")}],
        "num_shown": Value("int32"),
    }
)


def is_python(row):
    return row["lang"] == "python", "other_language"


def add_inputs_prompt(row, num_inputs, start, chat, system_prompt):
    prompt = inputs_prompt(row["function"], row["name"], row["params"], num_inputs)
    return {"prompt": prefilled(prompt, start, chat, system_prompt)}


def read_inputs(row, num_inputs, start):
    inputs, reason = parse_inputs((start or "") + row["response"], row["params"], row["required"], num_inputs)
    return {"inputs": [repr(i) for i in inputs or []], "_parse_error": reason}


def inputs_parsed(row):
    return not row["_parse_error"], row["_parse_error"]


def training_rows(functions, *, seed, per_function, min_shown, max_shown, strip, model) -> dict[str, list]:
    """`per_function` training rows per observed function: m of its pairs through a template, its code as target."""
    out = {name: [] for name in COLUMNS}
    for row in functions:
        described = [describe_example(row["name"], e["input"], e["output"]) for e in row["examples"]]
        for k in range(per_function):
            shown, template = choose_shown(len(described), seed, row[ROW_ID] * per_function + k, min_shown, max_shown)
            out["function"].append(row["function"])
            out["examples"].append(row["examples"])
            out["prompt"].append(training_prompt(template, row["name"], row["params"], [described[j] for j in shown]))
            out["target"].append(strip_docstring(row["function"]) if strip else row["function"])
            out["name"].append(row["name"])
            out["template"].append(template)
            out["num_shown"].append(len(shown))
            out["source"].append(row["path"])
            out["model"].append(model)
    return out


@exit_on_user_error
def main(argv=None):
    config = parse_config(Case2CodeConfig, argv)
    run = Run(config, INFO)

    docs = config.load_code()
    run.record("input", len(docs), len(docs))
    docs = run.filter(docs, [is_python], stage="python_documents")
    harvest = harvest_rows(docs, max_lines=config.max_function_lines)
    functions = harvest.to_dataset(ROW_ID)
    run.record("harvest", harvest.considered, len(functions), harvest.dropped, documents=len(docs))
    unique, stats = exact_dedup(functions, "function")
    run.record(
        "dedup_functions",
        len(functions),
        len(unique),
        {"exact_duplicate": stats["removed"]} if stats["removed"] else {},
    )
    if config.max_functions is not None and config.max_functions < len(unique):
        sampled = unique.shuffle(seed=config.seed).select(range(config.max_functions))
        run.record("sample", len(unique), len(sampled), {"over_max_functions": len(unique) - len(sampled)})
        unique = sampled
    if len(unique) == 0:
        raise UserError(f"no function in '{config.dataset}' passed the harvest ({dict(harvest.dropped)}); give code")

    structured = None
    if config.inputs_format == "json":  # one pattern per call: objects fitting any function of the run
        signatures = [required or params for params, required in zip(unique["params"], unique["required"])]
        pattern = {"regex": inputs_pattern(signatures, config.num_inputs)}
        structured = run.structured(pattern, "inputs_format", "set inputs_format: python")
    # The pattern starts the list itself; without it (a server that is not vLLM), the python format's prefill.
    sampling = run.sampling(structured=structured)
    start = INPUTS_START if config.prefill and not structured else None
    prompts = unique.map(
        add_inputs_prompt,
        fn_kwargs=dict(
            num_inputs=config.num_inputs,
            start=start,
            chat=config.use_chat_template,
            system_prompt=config.system_prompt,
        ),
        desc="Asking for inputs",
    )
    answers = run.generate(
        prompts, prompt_column="prompt", output_column="response", stage="inputs", sampling=sampling
    )
    answers = answers.map(
        read_inputs, fn_kwargs={"num_inputs": config.num_inputs, "start": start}, desc="Parsing inputs"
    )
    answers = run.filter(answers, generation_checks("response") + [inputs_parsed], stage="parse_inputs")

    observed, report = observe(
        answers.to_list(),
        timeout_s=config.timeout_s,
        max_output_chars=config.max_output_chars,
        min_examples=config.min_examples,
        memory_mb=config.memory_mb,
        workers=run.num_proc,
    )
    run.record("execute", len(answers), len(observed), report.functions_dropped, **report.details())

    rows = Dataset.from_dict(
        training_rows(
            observed,
            seed=config.seed,
            per_function=config.prompts_per_function,
            min_shown=config.min_shown,
            max_shown=config.max_shown,
            strip=config.strip_docstrings,
            model=config.model,
        ),
        features=FEATURES,
    )
    run.record("prompts", len(observed), len(rows))
    run.finish(rows, seed_data=f"functions harvested from `{config.dataset}`", columns=COLUMNS)


if __name__ == "__main__":
    main()
