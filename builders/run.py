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
import hashlib
import json
import logging
import shutil
from functools import cached_property
from pathlib import Path

import datasets
from datasets import Dataset

from builders import prompts
from builders.config import RecipeConfig
from builders.data import input_digests, load_rows, split_bad_text
from builders.dedup.stages import (
    DedupSettings,
    decontaminate_rows,
    dedup_rows,
    embedding_dedup_rows,
    largest_rows,
    neighbour_rows,
)
from builders.errors import UserError
from builders.filters.checks import Check, apply_checks
from builders.generation import distributed
from builders.generation.checkpoint import CheckpointStore
from builders.generation.engines import Engine, Sampling, build_engine, check_context, check_engine_kwargs
from builders.generation.models import load_tokenizer
from builders.generation.stage import GenerationReport, generate_column
from builders.output import lock
from builders.output.card import RecipeInfo, build_card
from builders.output.funnel import Funnel
from builders.output.schema import public_schema
from builders.output.sink import check_output_dir, claim_output_dir, discard_claim, guard_output_dir
from builders.output.summary import print_summary, throughput
from builders.output.writer import rejected_rows, text_figures, write_output
from builders.parallel import resolve_num_proc

logger = logging.getLogger("builders")


class Run:
    def __init__(self, config: RecipeConfig, info: RecipeInfo):
        # Every map of a run works on freshly generated rows; a cached result from an earlier run with the same
        # fingerprint would silently pair old verdicts with new rows. Checkpoints are the run's cache.
        datasets.disable_caching()
        self.config = config
        self.info = info
        prompts.use_folder(config.prompts_folder)  # the user's templates replace ours for this run
        self.output_dir = Path(config.output_dir)
        self.funnel = Funnel(recipe=info.name, model=config.model)
        self.report = GenerationReport()
        self.rejected: list[Dataset] = []
        self._claimed = self._made_folder = False
        if config.backend != "openai":  # this process's GPUs (or CPU cores) in a launch of several, before CUDA starts
            distributed.place_engine(config.tensor_parallel_size * config.pipeline_parallel_size)
        self.num_proc = resolve_num_proc(config.num_proc)  # every CPU stage's processes (threads); after placing
        if not distributed.is_main_process():
            datasets.disable_progress_bars()  # the main process shows its own; N interleaved bars show nothing
        self._benchmarks = None  # loaded on the first `decontaminate`
        self._retries_before = 0
        # Every check that needs no model comes first, reading only: an error leaves output_dir as it was.
        check_output_dir(self.output_dir)
        if distributed.is_main_process():
            lock.probe(self.output_dir)  # another run works in the folder: refuse before any work
        self.inputs = input_digests(config.data_fingerprint())  # the content of the inputs joins the run's identity
        self.resuming = bool(guard_output_dir(self.output_dir, self._record(), config.overwrite))
        distributed.wait_for_everyone("output_dir checked")  # by every process, before the main one claims it
        check_context(config)
        check_engine_kwargs(config)
        if config.hub_repo_id:
            from builders.output.hub import check_repo_id

            check_repo_id(config.hub_repo_id)
        if config.push_to_hub and distributed.is_main_process():
            from builders.output.hub import check_can_push

            check_can_push()  # fail now, not after hours of generation
        self.store = CheckpointStore(self.output_dir / ".checkpoints" / self._identity())

    # -- input ---------------------------------------------------------------------------------------------

    def load(self, columns: list[str] = (), dataset: str | None = None, key_hint: str | None = None) -> Dataset:
        """The recipe's input rows (`config.dataset` unless given), checked for `columns`, which must hold text: a
        row with a null there, or text that is not UTF-8, is a drop with its reason."""
        c = self.config
        source = dataset or c.dataset
        ds = load_rows(source, c.dataset_split, c.dataset_config, c.num_samples, list(columns), key_hint=key_hint)
        kept, rejected, dropped = split_bad_text(ds, list(columns), f"dataset '{source}'")
        self.funnel.record("input", len(ds), len(kept), dropped)
        if rejected is not None:
            self.keep_rejected(rejected, "input")
        return kept

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
        try:
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
        except UserError:  # nothing could be generated: a folder this run made and wrote nothing in goes again
            if self._made_folder and distributed.num_processes() == 1:
                lock.release(self.output_dir)
                discard_claim(self.output_dir)
            raise
        self.funnel.prompt_tokens += sum(out["prompt_tokens"])
        self.funnel.completion_tokens += sum(out["completion_tokens"])
        if record:
            self.funnel.record(stage, len(ds), len(out))
        return out

    # -- filtering -----------------------------------------------------------------------------------------

    def filter(self, ds: Dataset, checks: list[Check], stage: str) -> Dataset:
        """Keep the rows that pass every check; count the others by reason."""
        kept, rejected, counts = apply_checks(ds, checks, desc=f"Filtering ({stage})", num_proc=self.num_proc)
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
        settings = DedupSettings.from_config(self.config, num_proc=self.num_proc, **overrides)
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
                ds, column, self._benchmarks, c.decontamination_ngram, c.decontamination_threshold, self.num_proc
            )

        return self._global(stage, ds, compute)

    def embedding_dedup(
        self, ds: Dataset, column: str, stage: str, threshold: float = 0.9, model: str = "all-minilm-l6-v2"
    ) -> Dataset:
        """Drop rows whose `column` embeds within cosine `threshold` of an earlier kept row (blocked, never n x n)."""
        return self._global(stage, ds, lambda: embedding_dedup_rows(ds, column, threshold, model, self.num_proc))

    def neighbours(
        self, ds: Dataset, column: str, stage: str, distance: float = 0.05, model: str = "all-minilm-l6-v2"
    ) -> Dataset:
        """Add each row's nearest other row by the embedding of `column` (blocked, never n x n): `neighbour_distance`
        (squared L2 of unit vectors), `repeat_count` (rows closer than `distance`), `first_repeat` (a row index)."""
        return self._global(stage, ds, lambda: neighbour_rows(ds, column, distance, model, self.num_proc))

    def keep_largest(self, ds: Dataset, column: str, n: int, stage: str, reason: str) -> Dataset:
        """Keep the `n` rows with the largest `column` over the whole dataset (e.g. Magpie's longest responses)."""
        return self._global(stage, ds, lambda: largest_rows(ds, column, n, reason))

    def _global(self, stage: str, ds: Dataset, compute) -> Dataset:
        """A global stage runs once on the whole dataset: in a launch of several processes, on the main process
        only (its funnel and rejected rows are the run's); the others wait and read its rows from disk."""

        def run_and_record() -> Dataset:
            result = compute()
            self.funnel.record(stage, len(ds), len(result.kept), result.dropped, **result.details)
            self.keep_rejected(result.removed, stage)
            return result.kept

        self._claim()  # a global stage may write scratch files in output_dir (Spark, the multi-process hand-over)
        if distributed.num_processes() == 1:
            return run_and_record()
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
        full = ds
        ds = ds.remove_columns([c for c in ds.column_names if c.startswith("_")])
        if columns:
            ds = ds.select_columns([c for c in columns if c in ds.column_names])
        if len(ds) == 0:
            logger.warning("every row was dropped; the output holds an empty dataset (see the funnel)")
        retried = getattr(self.__dict__.get("engine"), "retries", 0) - self._retries_before
        self.funnel.extra["generation"] = throughput(reports, retried)
        images = dict(images or {})
        figures = self._text_figures(ds, images, generated)
        info, extra = self.info, None
        if self.config.output_schema:  # the public dataset's columns, order and types (reproduce configs)
            ds, extra, info = public_schema(full, ds.column_names, self.info, self.config)
        if self.config.compare_to:
            card_sections = [*card_sections, *self._compare(ds, images, info)]
        card = build_card(
            ds,
            info,
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
            extra=extra,
            images=images,
            config=self.config,
            funnel=self.funnel,
            card=card,
            record=self._record(),
        )
        print_summary(self.funnel, ds, self.output_dir, info.text_column)
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
        lock.release(self.output_dir)  # the folder is whole and published: another run may take it
        return self.output_dir

    def _compare(self, ds: Dataset, images: dict[str, bytes], info: RecipeInfo) -> list[tuple[str, str]]:
        """The output against `compare_to` (builders/output/compare.py): figures in stats.json, sections for the card.
        `info` names the output's columns (the public ones under `output_schema`). A reproduction that regenerates
        from its input compares with that input's own subset and split (PersonaHub's `math`)."""
        from builders.output.compare import compare

        c = self.config
        same = c.compare_to == c.dataset
        reference = load_rows(
            c.compare_to, c.dataset_split if same else "train", c.dataset_config if same else None, what="compare_to"
        )
        column = c.compare_column or info.text_column
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
        histogram, figures = text_figures(ds, column, lengths, unit, c.seed, c.dedup_ngram, self.funnel, self.num_proc)
        images.update(histogram)
        return figures

    def _claim(self, everyone: bool = True) -> None:
        """Take output_dir for this run, once every up-front check has passed (the first write of the run): its lock,
        the guard again (another run may have finished there meanwhile), its run record. `everyone`: all processes
        call this, and none writes before."""
        if self._claimed:
            return
        if distributed.is_main_process():
            self._made_folder = not self.output_dir.exists()
            self.output_dir.mkdir(parents=True, exist_ok=True)
            lock.acquire(self.output_dir)
            guard_output_dir(self.output_dir, self._record(), self.config.overwrite)
            claim_output_dir(self.output_dir, self._record())
        if everyone:
            distributed.wait_for_everyone("output_dir claimed")
        self._claimed = True

    def _record(self) -> dict:
        """What identifies this run in run.json: recipe, the config keys that decide the rows, the input digests."""
        c = self.config
        return {
            "recipe": self.info.name,
            "fingerprint_hash": c.fingerprint_hash(),
            "config": c.data_fingerprint(),
            "inputs": self.inputs,
            "checkpoints": self._identity(),  # the folder under .checkpoints/ (the viewer's live tab reads it)
        }

    def _identity(self) -> str:
        """The checkpoints' folder: config and input content, so edited inputs never meet old checkpoints."""
        payload = json.dumps({"config": self.config.fingerprint_hash(), "inputs": self.inputs}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
