"""A recipe run: the stages every recipe composes, and the bookkeeping they share.

    run = Run(config, INFO)                        # checks output_dir, Hub token
    seeds = run.load(columns=["text"])             # input rows (+ `_row` id)
    rows = run.generate(prompts, prompt_column="prompt", output_column="text")
    rows = run.filter(rows, generation_checks("text", min_tokens=150), stage="quality")
    rows = run.dedup(rows, column="text")
    run.finish(rows, seed_data="...")              # data + card + config + stats, then push

Each stage records rows in, rows out and drops by reason in the funnel (`stats.json`, the card).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from functools import cached_property
from pathlib import Path

import datasets
from datasets import Dataset, concatenate_datasets

from builders import distributed
from builders.card import RecipeInfo, build_card, length_stats
from builders.checkpoint import CheckpointStore
from builders.config import RecipeConfig, save_config
from builders.data import load_rows
from builders.dedup import exact_dedup, minhash_dedup
from builders.engines import Engine, Sampling, build_engine
from builders.filters import REASON, Check, apply_checks
from builders.generate import GenerationReport, generate_column
from builders.sink import (
    claim_output_dir,
    guard_output_dir,
    publish,
    recover,
    staging_dir,
    write_parquet_shards,
)
from builders.stats import Funnel

logger = logging.getLogger("builders")


class Run:
    def __init__(self, config: RecipeConfig, info: RecipeInfo):
        # Every map of a run works on freshly generated rows; a cached result from an earlier run with the same
        # fingerprint would silently pair old verdicts with new rows. Checkpoints are the run's cache.
        datasets.disable_caching()
        self.config = config
        self.info = info
        self.output_dir = Path(config.output_dir)
        self.funnel = Funnel(recipe=info.name, model=config.model)
        self.report = GenerationReport()
        self.rejected: list[Dataset] = []
        self._claimed = False
        if config.backend != "openai":  # this process's GPUs (or CPU cores) in a launch of several, before CUDA starts
            distributed.place_engine(config.tensor_parallel_size * config.pipeline_parallel_size)
        if not distributed.is_main_process():
            datasets.disable_progress_bars()  # the main process shows its own; N interleaved bars show nothing
        self._benchmarks = None  # loaded on the first `decontaminate`
        self._retries_before = 0
        self.resuming = guard_output_dir(
            self.output_dir, info.name, config.data_fingerprint(), config.fingerprint_hash(), config.overwrite
        )
        distributed.wait_for_everyone("output_dir checked")  # by every process, before the main one claims it
        if config.push_to_hub and distributed.is_main_process():
            from builders.hub import check_can_push

            check_can_push()  # fail now, not after hours of generation
        if distributed.is_main_process() and recover(self.output_dir):
            logger.info("finished moving the final files of the previous run into %s", self.output_dir)
        self.store = CheckpointStore(self.output_dir / ".checkpoints" / config.fingerprint_hash())

    # -- input ---------------------------------------------------------------------------------------------

    def load(self, columns: list[str] = (), dataset: str | None = None, key_hint: str | None = None) -> Dataset:
        """The recipe's input rows (`config.dataset` unless given), checked for `columns`."""
        c = self.config
        ds = load_rows(
            dataset or c.dataset, c.dataset_split, c.dataset_config, c.num_samples, list(columns), key_hint=key_hint
        )
        self.funnel.record("input", len(ds), len(ds))
        return ds

    def record(self, stage: str, rows_in: int, rows_out: int, dropped: dict | None = None, **details) -> None:
        self.funnel.record(stage, rows_in, rows_out, dropped, **details)

    # -- generation ----------------------------------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
        """Built once per process, on first use."""
        engine = build_engine(self.config)
        self._retries_before = getattr(engine, "retries", 0)  # the engine outlives a run: count this run's retries
        return engine

    @cached_property
    def tokenizer(self):
        """The model's Hugging Face tokenizer (token budgets, chat-template prefixes); None if not loadable.

        A model reached only through a server (backend: openai, a hosted name) may have no local tokenizer;
        callers then fall back to word counts.
        """
        from transformers import AutoTokenizer

        from builders.models import EMBEDDED_MODELS, resolve_model

        if self.config.backend != "openai" or self.config.model in EMBEDDED_MODELS:
            path = resolve_model(self.config.model, revision=self.config.model_revision)
            return AutoTokenizer.from_pretrained(path, revision=self.config.model_revision)
        try:  # a server's model name may also be a Hub id or a local folder
            return AutoTokenizer.from_pretrained(self.config.model, revision=self.config.model_revision)
        except Exception as err:
            logger.warning("no local tokenizer for %s (%s); budgets count words", self.config.model, err)
            return None

    def sampling(self, **overrides) -> Sampling:
        c = self.config
        base = Sampling(
            max_new_tokens=c.max_new_tokens,
            temperature=c.temperature,
            top_p=c.top_p,
            top_k=c.top_k,
            repetition_penalty=c.repetition_penalty,
            chat_template_kwargs=dict(c.chat_template_kwargs),
        )
        return base.replace(**overrides) if overrides else base

    def structured(self, spec: dict | None, what: str, off: str | None = None) -> dict | None:
        """`spec` for `Sampling.structured` when the engine honours structured output; else None (free text, which
        the recipe parses), with a one-line note naming what asked for it (`what`: a config key, a stage) and the
        change that stops asking (`off`, e.g. "set structured_labels: false"). A `spec` of None stays None."""
        if spec is None or getattr(self.engine, "structured_output", False):
            return spec
        where = f"the server at {self.config.base_url}" if self.config.base_url else f"backend {self.config.backend}"
        logger.warning(
            "%s: %s offers no structured output (vLLM's is the one used); the answers are parsed as free text%s",
            what,
            where,
            f" ({off} to skip this note)" if off else "",
        )
        return None

    def generate(
        self,
        ds: Dataset,
        *,
        prompt_column: str,
        output_column: str,
        stage: str = "generate",
        sampling: Sampling | None = None,
        use_chat_template: bool | None = None,
        system_prompt: str | None = None,
        record: bool = True,
    ) -> Dataset:
        """Generate `output_column` for every row; finished batches are checkpointed and never redone.

        `record=False` leaves the funnel to the caller (e.g. many rounds of one loop recorded as one stage).
        """
        engine = self.engine  # built first: a model or server that fails leaves the output folder untouched
        self._claim()
        if len(ds) == 0:  # nothing survived the earlier stages; the funnel shows why
            if record:
                self.funnel.record(stage, 0, 0)
            return ds
        done = self.store.count_done(stage)
        if done:
            logger.info("%s: resuming, %d finished batches found in %s", stage, done, self.store.root)
        chat = self.config.use_chat_template if use_chat_template is None else use_chat_template
        out = generate_column(
            ds,
            engine,
            sampling or self.sampling(),
            prompt_column=prompt_column,
            output_column=output_column,
            stage=stage,
            store=self.store,
            seed=self.config.seed,
            batch_size=self.config.batch_size,
            use_chat_template=chat,
            system_prompt=system_prompt if system_prompt is not None else self.config.system_prompt,
            report=self.report,
        )
        self.funnel.prompt_tokens += sum(out["prompt_tokens"])
        self.funnel.completion_tokens += sum(out["completion_tokens"])
        if record:
            self.funnel.record(stage, len(ds), len(out))
        return out

    # -- filtering -----------------------------------------------------------------------------------------

    def filter(self, ds: Dataset, checks: list[Check], stage: str) -> Dataset:
        """Keep the rows that pass every check; count the others by reason."""
        kept, rejected, counts = apply_checks(ds, checks, desc=f"Filtering ({stage})")
        self.funnel.record(stage, len(ds), len(kept), counts)
        self._keep_rejected(rejected, stage)
        return kept

    def dedup(
        self,
        ds: Dataset,
        column: str,
        stage: str = "dedup",
        threshold: float | None = None,
        ngram: int | None = None,
        num_perm: int | None = None,
        force: bool = False,
        tokenizer: str = "auto",
        exact: bool = True,
        engine: str = "memory",
        spark_master: str | None = None,
    ) -> Dataset:
        """Exact dedup (normalised text), then MinHash near-dedup; the first row of each cluster survives.

        The MinHash settings come from the config unless given (e.g. Persona Hub dedups short personas with
        1-grams at 0.9). `force` runs it even when the config's `dedup` is off (a method's own dedup step).
        `tokenizer`: word or char n-grams, or auto (per row); `exact=False` skips the exact pass.
        `engine="spark"` computes the same kept rows on Apache Spark (`spark_master`, default `local[*]`).
        """
        c = self.config
        if not (c.dedup or force) or len(ds) == 0:
            return ds
        settings = (threshold, ngram, num_perm, tokenizer, exact, engine, spark_master)
        return self._global(stage, lambda: self._dedup(ds, column, stage, *settings))

    def _dedup(self, ds, column, stage, threshold, ngram, num_perm, tokenizer, exact, engine, spark_master):
        c = self.config
        rows_in, exact_removed = len(ds), 0
        ngram = ngram or c.dedup_ngram
        settings = {
            "threshold": threshold or c.dedup_threshold,
            "ngram": ngram,
            "num_perm": num_perm or c.dedup_num_perm,
            "seed": c.seed,
            "tokenizer": tokenizer,
        }
        if engine == "spark":
            from builders.spark_dedup import dedup_stages

            scratch = self.output_dir / ".checkpoints"  # on a cluster, output_dir is where every executor reads
            exact_result, near_result = dedup_stages(ds, column, exact, spark_master, scratch, **settings)
        else:  # rows too short for MinHash are skipped by exact dedup too
            exact_result = exact_dedup(ds, column, min_length=ngram, return_removed=True) if exact else None
            near_result = minhash_dedup(exact_result[0] if exact else ds, column, return_removed=True, **settings)
        if exact_result:
            _, exact_stats, removed = exact_result
            exact_removed = exact_stats["removed"]
            self._keep_rejected(removed.add_column(REASON, ["exact_duplicate"] * len(removed)), stage)
        near, near_stats, removed = near_result
        dropped = {"exact_duplicate": exact_removed, "near_duplicate": near_stats["removed"]}
        details = {k: v for k, v in near_stats.items() if k != "removed"}  # the drop reasons hold the counts
        self.funnel.record(stage, rows_in, len(near), {k: v for k, v in dropped.items() if v}, **details)
        self._keep_rejected(removed.add_column(REASON, ["near_duplicate"] * len(removed)), stage)
        return near

    def _global(self, stage: str, compute) -> Dataset:
        """A global stage (dedup, decontamination, embedding dedup) runs once on the whole dataset: in a launch of
        several processes, on the main process only (its funnel and rejected rows are the run's); the others wait
        and read its rows from the checkpoint folder."""
        if distributed.num_processes() == 1:
            return compute()
        self._claim()
        shared = self.store.root / "global" / stage
        if distributed.is_main_process():
            rows = compute()
            shutil.rmtree(shared, ignore_errors=True)
            rows.save_to_disk(str(shared))
        distributed.wait_for_everyone(f"{stage} (main process)")
        return rows if distributed.is_main_process() else datasets.load_from_disk(str(shared))

    def decontaminate(self, ds: Dataset, column: str, stage: str = "decontaminate") -> Dataset:
        """Remove rows that overlap the config's `decontaminate` benchmarks; the funnel counts them per benchmark.

        A no-op (and no funnel stage) when the config names no benchmark.
        """
        if not self.config.decontaminate:
            return ds
        return self._global(stage, lambda: self._decontaminate(ds, column, stage))

    def _decontaminate(self, ds: Dataset, column: str, stage: str) -> Dataset:
        from builders.decontaminate import decontaminate, load_benchmarks

        c = self.config
        if self._benchmarks is None:
            self._benchmarks = load_benchmarks(c.decontaminate)
        kept, removed, per_benchmark = decontaminate(
            ds, column, self._benchmarks, ngram=c.decontamination_ngram, threshold=c.decontamination_threshold
        )
        details = {"ngram": c.decontamination_ngram, "min_similarity": c.decontamination_threshold}
        details.update({f"removed_by_{label}": n for label, n in per_benchmark.items()})
        dropped = {"contaminated": len(removed)} if len(removed) else {}
        self.funnel.record(stage, len(ds), len(kept), dropped, **details)
        self._keep_rejected(removed.add_column(REASON, ["contaminated"] * len(removed)), stage)
        return kept

    def keep_rejected(self, rejected: Dataset, stage: str) -> None:
        """Keep rows a recipe dropped itself (with a `_drop_reason` column) for the `rejected` split."""
        self._keep_rejected(rejected, stage)

    def embedding_dedup(
        self, ds: Dataset, column: str, stage: str, threshold: float = 0.9, model: str = "all-minilm-l6-v2"
    ) -> Dataset:
        """Drop rows whose `column` embeds within cosine `threshold` of an earlier kept row (blocked, never n x n)."""
        return self._global(stage, lambda: self._embedding_dedup(ds, column, stage, threshold, model))

    def _embedding_dedup(self, ds: Dataset, column: str, stage: str, threshold: float, model: str) -> Dataset:
        from builders.embedding_dedup import embedding_dedup

        kept, stats, removed = embedding_dedup(ds, column, threshold=threshold, model=model, return_removed=True)
        removed_count = stats.pop("removed")
        dropped = {"semantic_duplicate": removed_count} if removed_count else {}
        self.funnel.record(stage, len(ds), len(kept), dropped, **stats)
        self._keep_rejected(removed.add_column(REASON, ["semantic_duplicate"] * len(removed)), stage)
        return kept

    def _keep_rejected(self, rejected: Dataset, stage: str) -> None:
        if not self.config.keep_rejected or len(rejected) == 0:
            return
        rows = [
            {"stage": stage, "reason": row.pop(REASON), "row": json.dumps(row, ensure_ascii=False, default=str)}
            for row in rejected
        ]
        self.rejected.append(Dataset.from_list(rows))

    # -- output --------------------------------------------------------------------------------------------

    def finish(
        self,
        ds: Dataset,
        seed_data: str,
        columns: list[str] | None = None,
        card_sections: list[tuple[str, str]] = (),
        images: dict[str, bytes] | None = None,
    ) -> Path | None:
        """Write data, card, config and stats to output_dir (main process only), then push if asked.

        `card_sections` are extra (heading, Markdown) sections for the card, e.g. a recipe's cluster table;
        `images` are PNG files (name -> bytes) written to `images/`, which sections can link to.
        """
        reports = distributed.gather("generation reports", dataclasses.asdict(self.report))
        if not distributed.is_main_process():
            return None
        self._claim(everyone=False)
        generated = ds["completion_tokens"] if "completion_tokens" in ds.column_names else None
        private = [c for c in ds.column_names if c.startswith("_")]
        ds = ds.remove_columns(private)
        if columns:
            ds = ds.select_columns([c for c in columns if c in ds.column_names])
        if len(ds) == 0:
            logger.warning("every row was dropped; the output holds an empty dataset (see the funnel)")
        self.funnel.extra["generation"] = self._throughput(reports)
        images = dict(images or {})
        figures = self._text_figures(ds, images, generated)

        staging = staging_dir(self.output_dir)
        write_parquet_shards(ds, staging / "data")
        if self.rejected:
            write_parquet_shards(concatenate_datasets(self.rejected), staging / "rejected", split="rejected")
        for name, data in images.items():
            (staging / "images").mkdir(exist_ok=True)
            (staging / "images" / name).write_bytes(data)
        save_config(self.config, staging / "config.yaml")
        self.funnel.write(staging / "stats.json")
        card = build_card(
            ds,
            self.info,
            self.config,
            self.funnel,
            seed_data=seed_data,
            has_rejected=bool(self.rejected),
            sections=list(card_sections),
            **figures,
        )
        card.save(staging / "README.md")
        publish(staging, self.output_dir)
        self._summary(ds)

        if self.config.push_to_hub:
            from builders.hub import push_output_dir

            url = push_output_dir(
                self.output_dir,
                self.config.hub_repo_id,
                private=self.config.hub_private,
                revision=self.config.hub_revision,
                config_name=self.config.hub_config_name,
            )
            print(f"pushed to {url}")
        return self.output_dir

    def _text_figures(self, ds: Dataset, images: dict[str, bytes], generated: list[int] | None) -> dict:
        """Length statistics, the length histogram (added to `images`) and diversity of the text column.

        Lengths are the generated token counts when the rows carry them (the text column is what the last
        generation wrote), else the text column measured with the model's tokenizer (words without a model).
        """
        from builders.diversity import diversity_figures
        from builders.figures import LENGTH_HISTOGRAM, length_histogram, text_lengths

        column = self.info.text_column
        feature = ds.features.get(column)
        if len(ds) == 0 or getattr(feature, "dtype", None) not in ("string", "large_string"):
            return {}  # no rows, or no text column to measure
        texts = ds[column]
        if generated is not None:
            lengths, unit = generated, "tokens"
        else:  # a recipe that transforms a dataset (dedup) has no model: words then
            lengths, unit = text_lengths(texts, self.tokenizer if self.info.generated else None)
        images[LENGTH_HISTOGRAM] = length_histogram(lengths, unit, column)
        diversity = diversity_figures(texts, seed=self.config.seed, ngram=self.config.dedup_ngram)
        self.funnel.extra["text_length"] = {"column": column, "unit": unit, **length_stats(lengths)}
        self.funnel.extra["diversity"] = diversity
        return {
            "lengths": lengths,
            "length_unit": unit,
            "histogram": f"images/{LENGTH_HISTOGRAM}",
            "diversity": diversity,
        }

    def _claim(self, everyone: bool = True) -> None:
        """Record in output_dir that this run owns it; `everyone`: all processes call this, none writes before."""
        if self._claimed:
            return
        if distributed.is_main_process():
            claim_output_dir(
                self.output_dir, self.info.name, self.config.data_fingerprint(), self.config.fingerprint_hash()
            )
        if everyone:
            distributed.wait_for_everyone("output_dir claimed")
        self._claimed = True

    def _throughput(self, reports: list[dict]) -> dict:
        """What the engines did, summed over the processes; tokens/s adds up the processes' own rates."""
        total = {name: sum(r[name] for r in reports) for name in reports[0]}
        rates = [r["completion_tokens"] / r["engine_seconds"] for r in reports if r["engine_seconds"]]
        out = {
            "batches_generated": total["chunks_generated"],
            "batches_resumed": total["chunks_resumed"],
            "batches_retried": total["chunks_retried"],
            # this process's engine (the main one's); an OpenAI-compatible server retries per request
            "requests_retried": getattr(self.__dict__.get("engine"), "retries", 0) - self._retries_before,
            "completion_tokens_generated": total["completion_tokens"],
            "engine_seconds": round(total["engine_seconds"], 2),
            "tokens_per_s": round(sum(rates), 1) if rates else None,
        }
        if len(reports) > 1:
            out["processes"] = len(reports)
            out["batches_generated_per_process"] = [r["chunks_generated"] for r in reports]
        return out

    def _summary(self, ds: Dataset) -> None:
        t = self.funnel.extra["generation"]
        print()
        print(self.funnel.table())
        print()
        line = f"rows kept: {len(ds)}   elapsed: {time.time() - self.funnel.started:.0f}s"
        if t["tokens_per_s"] is not None or t["batches_resumed"]:  # a recipe that generates nothing shows none
            speed = f"{t['tokens_per_s']} tokens/s" if t["tokens_per_s"] is not None else "- tokens/s"
            line += (
                f"   generation: {t['completion_tokens_generated']} tokens at {speed} "
                f"({t['batches_resumed']} batches resumed from checkpoints)"
            )
        print(line)
        print(f"output: {self.output_dir.resolve()}")
        if len(ds):
            sample = str(ds[0].get(self.info.text_column, ds[0]))
            print(f"sample {self.info.text_column}: {sample[:400]}{' ...' if len(sample) > 400 else ''}")
