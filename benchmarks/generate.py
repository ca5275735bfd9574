"""Does the recipe's generation stage keep the engine's throughput?

In one process, with one vLLM engine and the same prompts and sampling, time:
- `recipe`: the Cosmopedia recipe's generation stage (`Run.generate`: Dataset.map, per-row seeds,
  checkpoint writes), with the recipe's batch size;
- `bare`: one `LLM.chat` call over all prompts with the same per-row seeded SamplingParams;
- `bare, unseeded`: one `LLM.chat` call with a single unseeded SamplingParams (what per-row
  reproducibility costs).
Runs alternate (recipe, bare, ...) `--repeats` times; the best of each is compared.

    python benchmarks/generate.py                                  # SmolLM2-135M on this machine
    python benchmarks/generate.py --num_prompts 4096 --max_new_tokens 1024 --model Qwen/Qwen2.5-1.5B-Instruct
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--num_prompts", type=int, default=160)
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=1024, help="the recipe's map batch size")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import cosmopedia
    from datasets import concatenate_datasets
    from vllm import SamplingParams

    from builders.config import parse_config
    from builders.data import ROW_ID
    from builders.generation.stage import as_prompt, row_seed
    from builders.run import Run

    workdir = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    config = parse_config(
        cosmopedia.CosmopediaConfig,
        [
            "--config",
            str(REPO / "configs/cosmopedia/demo.yaml"),
            "--model",
            args.model,
            "--dtype",
            args.dtype,
            "--max_new_tokens",
            str(args.max_new_tokens),
            "--batch_size",
            str(args.batch_size),
            "--output_dir",
            str(workdir / "out"),
        ],
    )
    run = Run(config, cosmopedia.INFO)
    seeds = run.load(columns=["text"])
    copies = -(-args.num_prompts // len(seeds))
    seeds = concatenate_datasets([seeds] * copies).select(range(args.num_prompts))
    seeds = seeds.remove_columns(ROW_ID).add_column(ROW_ID, list(range(len(seeds))))
    prompts = seeds.map(
        cosmopedia.build_prompts,
        batched=True,
        remove_columns=seeds.column_names,
        fn_kwargs=dict(
            pairs=cosmopedia.style_pairs(config.formats, config.audiences),
            seed=config.seed,
            per_seed=1,
            seed_column="text",
            topic_column="topic",
            tokenizer=run.tokenizer,
            max_seed_tokens=config.max_seed_tokens,
        ),
    )
    llm = run.engine.llm
    sampling = run.sampling()
    messages = [as_prompt(p, True, None) for p in prompts["prompt"]]

    def params(seed):
        return SamplingParams(
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            repetition_penalty=sampling.repetition_penalty,
            seed=seed,
        )

    seeded = [params(row_seed(config.seed, rid, "bench")) for rid in prompts[ROW_ID]]
    unseeded = params(None)

    def recipe(i):
        out = run.generate(prompts, prompt_column="prompt", output_column="text", stage=f"bench-{i}")
        return sum(out["completion_tokens"])

    def bare(i):
        outs = llm.chat(messages, seeded, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs)

    def bare_unseeded(i):
        outs = llm.chat(messages, unseeded, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs)

    llm.chat(messages[:8], seeded[:8], use_tqdm=False)  # warm-up
    results: dict[str, list[tuple[int, float]]] = {"recipe": [], "bare": [], "bare, unseeded": []}
    for i in range(args.repeats):
        for name, fn in (("recipe", recipe), ("bare", bare), ("bare, unseeded", bare_unseeded)):
            began = time.perf_counter()
            tokens = fn(i)
            results[name].append((tokens, time.perf_counter() - began))

    best = {name: max(t / s for t, s in runs) for name, runs in results.items()}
    print(
        f"\nmodel {args.model} ({args.dtype}), {args.num_prompts} prompts, max_new_tokens {args.max_new_tokens}, "
        f"recipe batch_size {args.batch_size}, best of {args.repeats}"
    )
    print(f"{'variant':<16} {'tokens':>8} {'seconds':>8} {'tokens/s':>9}")
    for name, runs in results.items():
        tokens, seconds = max(runs, key=lambda r: r[0] / r[1])
        print(f"{name:<16} {tokens:>8} {seconds:>8.1f} {tokens / seconds:>9.1f}")
    print(f"ratio recipe / bare (same seeded sampling): {best['recipe'] / best['bare']:.3f}   (goal >= 0.95)")
    print(f"ratio recipe / bare unseeded:               {best['recipe'] / best['bare, unseeded']:.3f}")


if __name__ == "__main__":
    main()
