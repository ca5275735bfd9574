"""The default engine: vLLM's offline `LLM`, one instance per process, fed a whole batch per call."""

from __future__ import annotations

import os

from builders.errors import UserError
from builders.generation import distributed
from builders.generation.engines import Completion, Prompt, Sampling
from builders.generation.models import resolve_model


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _cpu_defaults() -> None:
    """Settings measured to work on CPU-only machines; a user's own values win."""
    # vLLM logs every engine step detail at INFO and repeats a CPU thread warning per call; errors still show.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    if _has_cuda():
        return
    # In-process engine core: starts in ~8 s instead of ~20 s and leaves no stray logging errors at exit.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


class VLLMEngine:
    structured_output = True

    def __init__(self, llm, model: str):
        self.llm = llm
        self.model = model

    @classmethod
    def from_config(cls, config) -> VLLMEngine:
        # In a launch of several processes, this one's GPUs (or CPU cores): before CUDA starts in _cpu_defaults.
        distributed.place_engine(config.tensor_parallel_size * config.pipeline_parallel_size)
        _cpu_defaults()
        path = resolve_model(config.model, revision=config.model_revision)
        from vllm import LLM

        kwargs = dict(
            model=path,
            revision=config.model_revision,
            dtype=config.dtype,
            seed=config.seed,
            tensor_parallel_size=config.tensor_parallel_size,
            pipeline_parallel_size=config.pipeline_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            enforce_eager=config.enforce_eager,
        )
        optional = {
            "max_model_len": config.max_model_len,
            "max_num_seqs": config.max_num_seqs,
            "enable_prefix_caching": config.enable_prefix_caching,
            "quantization": config.quantization,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        # Structured JSON without free whitespace: the grammar otherwise allows any amount of it, and small models
        # fill max_new_tokens with spaces and newlines instead of closing the object. (An engine-level setting.)
        kwargs["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
        if not _has_cuda():
            # Per-row seeds give every request its own torch generator; on a chunked prefill vLLM rewinds it with
            # `set_offset`, which CPU generators do not support ("CPU Generator does not use offset").
            kwargs["enable_chunked_prefill"] = False
        kwargs.update(config.engine_kwargs)
        try:
            with distributed.outside_the_launch():
                llm = LLM(**kwargs)
        except (OSError, ValueError) as err:
            raise UserError(
                f"vLLM could not load model '{config.model}' ({str(err).splitlines()[0][:200]}); "
                "check `model`, `dtype`, `max_model_len` and `engine_kwargs`"
            ) from None
        return cls(llm, config.model)

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[Completion]]:
        """One engine call for the batch. A prompt vLLM refuses (longer than max_model_len, empty) fails the whole
        call before anything runs; the batch is then split in halves until the refused prompts stand alone, each a
        `rejected` completion (a drop with its reason), and the others are generated as usual (same seeds)."""
        if not prompts:
            return []
        try:
            return self._generate(prompts, sampling, seeds)
        except _validation_error() as err:
            if len(prompts) == 1:
                return [[Completion("", "rejected", error=str(err).splitlines()[0][:300])] * sampling.n]
            half = len(prompts) // 2
            return self.generate(prompts[:half], sampling, seeds[:half]) + self.generate(
                prompts[half:], sampling, seeds[half:]
            )

    def _generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[Completion]]:
        params = [self._params(sampling, seed) for seed in seeds]
        if isinstance(prompts[0], str):
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        else:
            # A conversation that ends with an assistant message is continued (a prefilled reply).
            prefill = prompts[0][-1]["role"] == "assistant"
            if any((p[-1]["role"] == "assistant") != prefill for p in prompts):
                raise ValueError("a batch mixes prefilled and open conversations; split it")
            outputs = self.llm.chat(
                prompts,
                params,
                use_tqdm=False,
                add_generation_prompt=not prefill,
                continue_final_message=prefill,
                chat_template_kwargs=sampling.chat_template_kwargs or None,
            )
        return [
            [
                Completion(
                    text=o.text,
                    finish_reason=o.finish_reason or "stop",
                    prompt_tokens=len(out.prompt_token_ids or ()),
                    completion_tokens=len(o.token_ids),
                )
                for o in out.outputs
            ]
            for out in outputs
        ]

    @staticmethod
    def _params(sampling: Sampling, seed: int):
        from vllm import SamplingParams

        return SamplingParams(
            n=sampling.n,
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            repetition_penalty=sampling.repetition_penalty,
            stop=list(sampling.stop) or None,
            seed=seed,
            skip_special_tokens=sampling.skip_special_tokens,
            structured_outputs=_structured(sampling.structured),
        )


def _validation_error() -> type[Exception]:
    """vLLM's error for a request it refuses (older versions raise a ValueError)."""
    try:
        from vllm.exceptions import VLLMValidationError
    except ImportError:
        return ValueError
    return VLLMValidationError


def engine_arguments() -> set[str]:
    """The keyword arguments `vllm.LLM` accepts: its own and, through **kwargs, every field of `EngineArgs`."""
    import dataclasses
    import inspect

    from vllm import LLM
    from vllm.engine.arg_utils import EngineArgs

    own = {
        name
        for name, p in inspect.signature(LLM.__init__).parameters.items()
        if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    }
    return (own | {f.name for f in dataclasses.fields(EngineArgs)}) - {"self"}


def _structured(spec: dict | None):
    from vllm.sampling_params import StructuredOutputsParams

    return StructuredOutputsParams(**spec) if spec else None
