"""A recipe run: the stages every recipe composes, and the bookkeeping they share.

    run = Run(config, INFO)                        # checks output_dir, Hub token
    seeds = run.load(columns=["text"])             # input rows (+ `_row` id)
    prompts = run.map(seeds, build_prompts, stage="prompts", batched=True)
    rows = run.generate(prompts, prompt_column="prompt", output_column="text")
    rows = run.filter(rows, generation_checks("text", min_tokens=150), stage="quality")
    rows = run.dedup(rows, column="text")
    run.finish(rows, seed_data="...")              # data + card + config + stats, then push

Each stage records rows in, rows out and drops by reason in the funnel (`stats.json`, the card). `Run` is a
façade: the work is done in `generation/`, `filters/`, `dedup/stages.py` and `output/`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from functools import cached_property
from pathlib import Path

import datasets
from datasets import Dataset

from builders.config import RecipeConfig
from builders.data import load_rows
from builders.dedup.stages import DedupSettings, decontaminate_rows, dedup_rows, embedding_dedup_rows
from builders.filters.checks import Check, apply_checks
from builders.generation import distributed
from builders.generation.checkpoint import CheckpointStore
from builders.generation.engines import Engine, Sampling, build_engine
from builders.generation.models import load_tokenizer
from builders.generation.stage import GenerationReport, generate_column
from builders.output.card import RecipeInfo, build_card
from builders.output.funnel import Funnel
from builders.output.sink import claim_output_dir, guard_output_dir, recover
from builders.output.summary import print_summary, throughput
from builders.output.writer import rejected_rows, text_figures, write_output

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
            from builders.output.hub import check_can_push

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

    def map(self, ds: Dataset, function, stage: str, **map_kwargs) -> Dataset:
        """`ds.map(function, **map_kwargs)`, recorded in the funnel as `stage`: for a batched map that turns each
        row into several (prompts per seed, one row per request) or none."""
        out = ds.map(function, **map_kwargs)
        self.funnel.record(stage, len(ds), len(out))
        return out

    # -- generation ----------------------------------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
        """Built once per process, on first use."""
        engine = build_engine(self.config)
        self._retries_before = getattr(engine, "retries", 0)  # the engine outlives a run: count this run's retries
        return engine

    @cached_property
    def tokenizer(self):
        """The model's tokenizer, loaded once; None for a served model with no local tokenizer (words then)."""
        return load_tokenizer(self.config.model, self.config.backend, self.config.model_revision)

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
        self.keep_rejected(rejected, stage)
        return kept

    def dedup(self, ds: Dataset, column: str, stage: str = "dedup", force: bool = False, **overrides) -> Dataset:
        """Exact dedup (normalised text), then MinHash near-dedup; the first row of each cluster survives.

        `overrides` are `DedupSettings` fields a method sets itself (e.g. Persona Hub dedups short personas with
        `ngram=1, threshold=0.9`); the rest come from the config's `dedup_*` keys. `force` runs it even when the
        config's `dedup` is off (a method's own dedup step).
        """
        if not (self.config.dedup or force) or len(ds) == 0:
            return ds
        settings = DedupSettings.from_config(self.config, **overrides)
        scratch = self.output_dir / ".checkpoints"  # on a cluster, output_dir is where every executor reads
        return self._global(stage, ds, lambda: dedup_rows(ds, column, settings, scratch))

    def decontaminate(self, ds: Dataset, column: str, stage: str = "decontaminate") -> Dataset:
        """Remove rows that overlap the config's `decontaminate` benchmarks; the funnel counts them per benchmark.

        A no-op (and no funnel stage) when the config names no benchmark.
        """
        c = self.config
        if not c.decontaminate:
            return ds

        def compute():
            from builders.filters.decontaminate import load_benchmarks

            if self._benchmarks is None:
                self._benchmarks = load_benchmarks(c.decontaminate)
            return decontaminate_rows(
                ds, column, self._benchmarks, c.decontamination_ngram, c.decontamination_threshold
            )

        return self._global(stage, ds, compute)

    def embedding_dedup(
        self, ds: Dataset, column: str, stage: str, threshold: float = 0.9, model: str = "all-minilm-l6-v2"
    ) -> Dataset:
        """Drop rows whose `column` embeds within cosine `threshold` of an earlier kept row (blocked, never n x n)."""
        return self._global(stage, ds, lambda: embedding_dedup_rows(ds, column, threshold, model))

    def _global(self, stage: str, ds: Dataset, compute) -> Dataset:
        """A global stage runs once on the whole dataset: in a launch of several processes, on the main process
        only (its funnel and rejected rows are the run's); the others wait and read its rows from disk."""

        def run_and_record() -> Dataset:
            result = compute()
            self.funnel.record(stage, len(ds), len(result.kept), result.dropped, **result.details)
            self.keep_rejected(result.removed, stage)
            return result.kept

        if distributed.num_processes() == 1:
            return run_and_record()
        self._claim()
        shared = self.store.root / "global" / stage
        if distributed.is_main_process():
            rows = run_and_record()
            shutil.rmtree(shared, ignore_errors=True)
            rows.save_to_disk(str(shared))
        distributed.wait_for_everyone(f"{stage} (main process)")
        return rows if distributed.is_main_process() else datasets.load_from_disk(str(shared))

    def keep_rejected(self, rejected: Dataset, stage: str) -> None:
        """Keep dropped rows (with a `_drop_reason` column) for the `rejected` split, when `keep_rejected` is on."""
        if self.config.keep_rejected and len(rejected):
            self.rejected.append(rejected_rows(rejected, stage))

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
        ds = ds.remove_columns([c for c in ds.column_names if c.startswith("_")])
        if columns:
            ds = ds.select_columns([c for c in columns if c in ds.column_names])
        if len(ds) == 0:
            logger.warning("every row was dropped; the output holds an empty dataset (see the funnel)")
        retried = getattr(self.__dict__.get("engine"), "retries", 0) - self._retries_before
        self.funnel.extra["generation"] = throughput(reports, retried)
        images = dict(images or {})
        figures = self._text_figures(ds, images, generated)
        if self.config.compare_to:
            card_sections = [*card_sections, *self._compare(ds, images)]
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
        write_output(
            self.output_dir,
            ds,
            rejected=self.rejected,
            images=images,
            config=self.config,
            funnel=self.funnel,
            card=card,
        )
        print_summary(self.funnel, ds, self.output_dir, self.info.text_column)
        if self.config.push_to_hub:
            from builders.output.hub import push_output_dir

            c = self.config
            url = push_output_dir(
                self.output_dir,
                c.hub_repo_id,
                private=c.hub_private,
                revision=c.hub_revision,
                config_name=c.hub_config_name,
            )
            print(f"pushed to {url}")
        return self.output_dir

    def _compare(self, ds: Dataset, images: dict[str, bytes]) -> list[tuple[str, str]]:
        """The output against `compare_to` (builders/output/compare.py): figures in stats.json, sections for the card."""
        from builders.output.compare import compare

        c = self.config
        reference = load_rows(c.compare_to, what="compare_to")
        column = c.compare_column or self.info.text_column
        result = compare(ds, reference, column=column, key=c.compare_key, seed=c.seed)
        self.funnel.extra["comparison"] = result.figures
        images.update(result.images)
        return result.sections

    def _text_figures(self, ds: Dataset, images: dict[str, bytes], generated: list[int] | None) -> dict:
        """The card's figures for the text column (its histogram added to `images`); none without one.

        Lengths are the generated token counts when the rows carry them (the text column is what the last
        generation wrote), else the text column measured with the model's tokenizer (words without a model).
        """
        from builders.output.figures import text_lengths

        column = self.info.text_column
        if (
            column is None
            or len(ds) == 0
            or getattr(ds.features.get(column), "dtype", None) not in ("string", "large_string")
        ):
            return {}
        if generated is not None:
            lengths, unit = generated, "tokens"
        else:  # a recipe that transforms a dataset (dedup) has no model: words then
            lengths, unit = text_lengths(ds[column], self.tokenizer if self.info.generated else None)
        c = self.config
        histogram, figures = text_figures(ds, column, lengths, unit, c.seed, c.dedup_ngram, self.funnel)
        images.update(histogram)
        return figures

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
