"""Contrastive dual-encoder training with the mono / X-Y / hybrid batching policies (PROTOCOLS §1).

Library entries:

- :func:`train_contrastive` — ``polyret train`` for ``method: mono|xy|hybrid``: load the configured data sets,
  train, return the final model folder.
- :func:`train_on_pairs` — the same trainer on data given in memory: :class:`~polyret.data.pairs.TrainingSet`
  objects, or aligned sentence pairs ``(x, y)`` / ``(lang_x, x, lang_y, y)`` (e.g. CRISS-mined bitext, trained
  X-Y with the query prefix on both sides).

The model is a shared-weight sentence-transformers encoder; the loss is InfoNCE with in-batch and hard negatives
at temperature τ (``scale = 1/τ``; sentence-transformers' ``MultipleNegativesRankingLoss``, its symmetric variant,
or ``CachedMultipleNegativesRankingLoss`` for large batches), with negatives gathered across GPUs; or Eq. 1 of
2408.10536 as printed (:class:`PaperEq1Loss`). Batches come from :mod:`polyret.train.samplers` through the
trainer's ``batch_sampler`` hook; :class:`PolyretTrainer` keeps the trainer from re-sharding them under DDP.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.data_loader import prepare_data_loader
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.util import all_gather_with_grad, cos_sim
from torch import Tensor, nn
from transformers import EarlyStoppingCallback, TrainerCallback

from polyret.data import pairs as pairs_io
from polyret.data.pairs import TrainingSet
from polyret.distributed import distributed_layout
from polyret.encode.models import resolve_model, weights_readable
from polyret.errors import ConfigError, DataError
from polyret.io import read_json, timestamp, write_dir_atomically, write_json
from polyret.precision import resolve_train_precision, trainer_precision_flags
from polyret.train import runs
from polyret.train.config import ContrastiveConfig, load_sources, parse_contrastive_config
from polyret.train.samplers import SAMPLERS, TRAIN_COLUMN, VALIDATION_COLUMN, SamplerFactory, TripletIndex

log = logging.getLogger(__name__)

META_KEY = "polyret_meta"


# --------------------------------------------------------------------------------------------------- losses
class PaperEq1Loss(nn.Module):
    """Eq. 1 of arXiv 2408.10536 as printed (``train.loss.denominator: paper_eq1``).

    ``L = −Σ_i log( e^{cos(q_i,p_i)} / [ e^{cos(q_i,p_i)} + Σ_j Σ_{n∈N_j} e^{cos(q_i,n)} ] )``: summed over the
    batch, no temperature, and the denominator holds the positive plus every triplet's hard negatives but no
    other positives. Needs (anchor, positive, negative_1, …) inputs. With ``gather_across_devices`` the hard
    negatives of all ranks are gathered and the local sum is scaled by the world size, so DDP's gradient
    averaging reproduces the single-GPU sum over the global batch.
    """

    def __init__(self, model: SentenceTransformer, gather_across_devices: bool = False) -> None:
        super().__init__()
        self.model = model
        self.gather_across_devices = gather_across_devices

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        embeddings = embed_columns(self.model, sentence_features)
        if len(embeddings) < 3:
            raise ValueError("paper_eq1 needs hard negatives (anchor, positive, negative_1, ...)")
        queries, positives = embeddings[0], embeddings[1]
        negatives = torch.cat(embeddings[2:], dim=0)
        scale = 1
        if self.gather_across_devices and torch.distributed.is_available() and torch.distributed.is_initialized():
            negatives = all_gather_with_grad(negatives)
            scale = torch.distributed.get_world_size()
        positive = nn.functional.cosine_similarity(queries, positives, dim=-1)
        logits = torch.cat([positive[:, None], cos_sim(queries, negatives)], dim=1)
        return -(positive - torch.logsumexp(logits, dim=1)).sum() * scale

    def get_config_dict(self) -> dict[str, Any]:
        return {"denominator": "paper_eq1", "gather_across_devices": self.gather_across_devices}


def build_loss(model: SentenceTransformer, config: ContrastiveConfig, world_size: int) -> nn.Module:
    """The configured loss: in-batch InfoNCE (plain, symmetric, cached) or ``paper_eq1``."""
    spec = config.loss
    gather = spec.gather_across_devices and world_size > 1
    if spec.denominator == "paper_eq1":
        return PaperEq1Loss(model, gather_across_devices=gather)
    options: dict[str, Any] = {"scale": 1.0 / spec.temperature, "gather_across_devices": gather}
    if spec.symmetric:  # (L_qp + L_pq) / 2
        options.update(directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")
    if spec.cached:
        return CachedMultipleNegativesRankingLoss(model, mini_batch_size=spec.mini_batch_size, **options)
    return MultipleNegativesRankingLoss(model, **options)


# --------------------------------------------------------------------------------------------------- collator
@dataclass
class TripletCollator(SentenceTransformerDataCollator):
    """Turns sampler rows into tokenized ``anchor``/``positive``/``negative_k`` columns (prefixes already applied).

    Rows of the training dataset (column :data:`~polyret.train.samplers.TRAIN_COLUMN`) index ``train_index``; rows of
    the validation dataset (column :data:`~polyret.train.samplers.VALIDATION_COLUMN`) index ``val_index``. Queries
    are cut at ``max_query_length`` tokens, passages at ``max_passage_length``. The batch carries a ``polyret_meta``
    description (kind, data set, languages, items) that :class:`PolyretTrainer` logs and the loss ignores.
    """

    train_index: TripletIndex | None = field(default=None, repr=False)
    val_index: TripletIndex | None = field(default=None, repr=False)
    max_query_length: int = 64
    max_passage_length: int = 256

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        if VALIDATION_COLUMN in features[0]:
            index, rows = self.val_index, [f[VALIDATION_COLUMN] for f in features]
        else:
            index, rows = self.train_index, [f[TRAIN_COLUMN] for f in features]
        assert index is not None
        queries, positives, negatives = index.texts(rows)
        columns = [("anchor", queries, self.max_query_length), ("positive", positives, self.max_passage_length)]
        columns += [(f"negative_{k + 1}", texts, self.max_passage_length) for k, texts in enumerate(negatives)]
        batch: dict[str, Any] = {}
        for name, texts, max_length in columns:
            for key, value in self.preprocess_fn(texts, prompt=None, task=None, max_length=max_length).items():
                batch[f"{name}_{key}"] = value
        batch[META_KEY] = index.describe(rows)
        return batch


# --------------------------------------------------------------------------------------------------- trainer
def _unsharded(loader: Any, args: Any) -> Any:
    """Wrap a DataLoader like ``accelerator.prepare`` does on one process: device placement, ``set_epoch`` and
    resumable skipping, but no ``BatchSamplerShard`` — our samplers already yield this rank's slice."""
    return prepare_data_loader(
        loader,
        device=args.device,
        num_processes=1,
        process_index=0,
        split_batches=False,
        put_on_device=True,
        rng_types=None,
        dispatch_batches=False,
        even_batches=False,
    )


class PolyretTrainer(SentenceTransformerTrainer):
    """``SentenceTransformerTrainer`` whose train and eval loaders are not re-sharded across ranks.

    Accelerate's ``prepare`` deals a sampler's batches round-robin to the ranks (``BatchSamplerShard``), which would
    give ranks different batch kinds and languages in one step; our samplers build each step's global batch on
    every rank and yield the rank's slice, so the loader is used as is. Each training step's batch description is
    appended to ``batch_log`` (one JSON line: step, rank, kind, data set, language, items).
    """

    def __init__(self, *args: Any, batch_log: Path | None = None, log_items: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch_log = runs.JsonlLog(batch_log) if batch_log is not None else None
        self._log_items = log_items

    def get_train_dataloader(self) -> Any:
        if self.train_dataset is None:
            raise ValueError("training needs a train_dataset")
        self.accelerator.even_batches = False
        loader = self._build_dataloader(self.train_dataset, self.args.train_batch_size, dataset_kind="train")
        self._train_dataloader = _unsharded(loader, self.args)
        return self._train_dataloader

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        if isinstance(eval_dataset, str):
            eval_dataset = self.eval_dataset[eval_dataset]
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        if dataset is None:
            raise ValueError("evaluation needs an eval_dataset")
        loader = self._build_dataloader(dataset, self.args.eval_batch_size, dataset_kind="eval")
        return _unsharded(loader, self.args)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        meta = inputs.pop(META_KEY, None)
        if meta is not None and self._batch_log is not None and self.model.training:
            record = {
                "step": self.state.global_step,
                "rank": self.args.process_index,
                **{k: v for k, v in meta.items() if k not in ("items", "pairs")},
                "n": len(meta["items"]),
            }
            if self._log_items:
                record["items"] = meta["items"]
                record["pairs"] = meta["pairs"]
            self._batch_log.write(record)
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)


class _LogToFile(TrainerCallback):
    """Appends every Trainer log event (loss, learning rate, eval_loss, ...) to ``train_log.jsonl`` (rank 0)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log: runs.JsonlLog | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if self._log is None:
            self._log = runs.JsonlLog(self.path)
        self._log.write({"step": state.global_step, "epoch": state.epoch, **logs})


# --------------------------------------------------------------------------------------------------- data
def _as_training_sets(pairs: Any) -> tuple[list[TrainingSet], bool]:
    """(sets, is_bitext) from TrainingSet(s) or aligned sentence pairs."""
    if isinstance(pairs, TrainingSet):
        return [pairs], False
    pairs = list(pairs)
    if pairs and all(isinstance(p, TrainingSet) for p in pairs):
        return pairs, False
    if not pairs:
        raise DataError("no training pairs given")
    first = pairs[0]
    if isinstance(first, tuple | list) and len(first) == 2:
        items = [
            pairs_io.TrainItem(str(k), {"src": pairs_io.LangEntry(x, x), "tgt": pairs_io.LangEntry(y, y)})
            for k, (x, y) in enumerate(pairs)
        ]
        return [TrainingSet("bitext", items, "bitext")], True
    if isinstance(first, tuple | list) and len(first) == 4:
        return [pairs_io.items_from_bitext(pairs)], True
    raise DataError("pairs must be TrainingSets, (x, y) or (lang_x, x, lang_y, y) tuples")


def _languages(sets: Sequence[TrainingSet], configured: Sequence[str] | None) -> tuple[str, ...]:
    present = sorted({lang for s in sets for lang in s.languages})
    if configured is None:
        return tuple(present)
    missing = [lang for lang in configured if lang not in present]
    if missing:
        raise DataError(f"languages {missing} are not in the training data (present: {present})")
    return tuple(configured)


def _prefixes(model: SentenceTransformer, config: ContrastiveConfig, symmetric: bool) -> tuple[str, str]:
    """(query, passage) prefixes: the configured ones, else the model's own prompts.

    ``symmetric`` (bitext) puts the query prefix on both sides of the *training* text only; the saved model always
    keeps ``_prefixes(model, config, symmetric=False)`` (PROTOCOLS §6.1: training never rewrites the prompts).
    """
    prompts = getattr(model, "prompts", None) or {}
    query = config.model.query_prefix if config.model.query_prefix is not None else prompts.get("query", "")
    if config.model.passage_prefix is not None:
        passage = config.model.passage_prefix
    elif symmetric:  # PROTOCOLS §1.1: symmetric tasks use the query prefix on both sides
        passage = query
    else:
        passage = prompts.get("passage", prompts.get("document", ""))
    return query, passage


# --------------------------------------------------------------------------------------------------- training
def kept_step(best_checkpoint: str | None, last_step: int) -> int:
    """The step whose weights are saved: the best validation checkpoint's (early stopping), else the last step."""
    return runs.checkpoint_step(best_checkpoint) if best_checkpoint else last_step


@dataclass
class TrainingPlan:
    """Everything a run's batches come from, built before the trainer (and checkable without a model)."""

    train_index: TripletIndex
    options: dict[str, Any]
    steps_per_epoch: int
    total_steps: int
    validation_batch_size: int
    val_index: TripletIndex | None
    validation_batches: list[list[int]]


def plan_training(
    sets: list[TrainingSet],
    validation: list[TrainingSet] | None,
    languages: Sequence[str],
    config: ContrastiveConfig,
    prefixes: tuple[str, str],
    model_prefixes: tuple[str, str],
) -> TrainingPlan:
    """The triplet indexes, this rank's sampler length and the fixed validation batches of one run.

    ``prefixes`` start the training text; ``model_prefixes`` (the saved prompts) start the text of a fixed-policy
    validation set (the study's shared selection set is QA text whatever the run trains on).
    """
    world_size, rank = distributed_layout()
    batch_size = config.batch_size
    train_index = TripletIndex(sets, languages, *prefixes, hard_negatives=config.loss.hard_negatives)
    options = {
        "alpha": config.alpha,
        "language_sampling": config.batching.language_sampling,
        "language_temperature": config.batching.language_temperature,
        "xy_pairs": config.batching.xy_pairs,
        "steps_per_epoch": config.batching.steps_per_epoch,
    }
    probe = SAMPLERS[config.method](
        range(train_index.num_rows),
        train_index,
        batch_size // world_size,
        seed=config.seed,
        world_size=world_size,
        rank=rank,
        **options,
    )
    total_steps = config.max_steps or max(1, math.ceil((config.epochs or 1.0) * probe.steps_per_epoch))
    val_batch_size = config.validation.batch_size or batch_size
    if validation and val_batch_size % world_size:
        raise ConfigError(
            f"validation.batch_size {val_batch_size} must be divisible by the number of processes {world_size}"
        )
    val_prefixes = model_prefixes if config.validation.policy else prefixes
    val_index, validation_batches = (
        validation_plan(validation, languages, val_prefixes, config, val_batch_size, options)
        if validation
        else (None, [])
    )
    return TrainingPlan(
        train_index, options, probe.steps_per_epoch, total_steps, val_batch_size, val_index, validation_batches
    )


def check_training_plan(config: ContrastiveConfig | dict[str, Any], pairs: Any = None) -> TrainingPlan:
    """Load the data of a run and build its plan without a model (configured prefixes, else none): a config
    that cannot start (a validation batch larger than the held-out items, a language missing) fails here."""
    config = parse_contrastive_config(config)
    sets = _as_training_sets(pairs)[0] if pairs is not None else load_sources(config.data)
    validation = load_sources(config.validation.data) if config.validation.data else None
    sets, validation = hold_out(sets, validation, config)
    prefixes = (config.model.query_prefix or "", config.model.passage_prefix or "")
    return plan_training(sets, validation, _languages(sets, config.languages), config, prefixes, prefixes)


def hold_out(
    sets: list[TrainingSet], validation: list[TrainingSet] | None, config: ContrastiveConfig
) -> tuple[list[TrainingSet], list[TrainingSet] | None]:
    """(training sets, validation sets): a seeded ``validation.fraction`` held out of the training data, or of
    ``validation.holdout_of`` (whose held-out items are then the validation set and the training data is kept)."""
    spec = config.validation
    if validation is not None or not spec.enabled or spec.data:
        return sets, validation
    seed = config.seed if spec.seed is None else spec.seed
    if spec.holdout_of:
        return sets, [held for held in (s.split(spec.fraction, seed)[1] for s in load_sources(spec.holdout_of)) if held]
    split = [s.split(spec.fraction, seed) for s in sets]
    return [t for t, _ in split], [v for _, v in split if len(v)]


def validation_plan(
    validation: list[TrainingSet],
    languages: Sequence[str],
    prefixes: tuple[str, str],
    config: ContrastiveConfig,
    batch_size: int,
    options: dict[str, Any],
) -> tuple[TripletIndex, list[list[int]]]:
    """The fixed validation batches: ``validation.batches`` batches of ``batch_size`` triplets, drawn once with the
    validation policy (default: the run's method) from ``validation.languages`` (default: the training languages
    the validation sets have)."""
    spec = config.validation
    present = sorted({lang for v in validation for lang in v.languages})
    wanted = spec.languages or [lang for lang in languages if lang in present]
    missing = [lang for lang in wanted if lang not in present]
    if missing or not wanted:
        raise DataError(f"validation: languages {missing or wanted} are not in the validation data (has {present})")
    seed = (config.seed if spec.seed is None else spec.seed) + 1
    try:
        index = TripletIndex(validation, tuple(wanted), *prefixes, hard_negatives=config.loss.hard_negatives)
        sampler = SAMPLERS[spec.policy or config.method](
            range(index.num_rows), index, batch_size, seed=seed, world_size=1, rank=0, **options
        )
        return index, [plan.rows for plan in sampler.global_batches(epoch=0, steps=spec.batches)]
    except (DataError, ConfigError) as err:
        raise type(err)(
            f"validation: {err} (set validation.batch_size, validation.fraction or validation.data)"
        ) from None


def train_contrastive(
    config: ContrastiveConfig | dict[str, Any],
    run_dir: str | Path,
    resume: bool = False,
    *,
    callbacks: Sequence[TrainerCallback] = (),
) -> Path:
    """Train a dual encoder with the configured batching policy; return the final model folder (``run_dir/model``)."""
    config = parse_contrastive_config(config)
    if not config.data:
        raise ConfigError("data: give at least one training data set")
    sets = load_sources(config.data)
    validation = load_sources(config.validation.data) if config.validation.data else None
    return _train(config.model.name, sets, config, Path(run_dir), resume, validation=validation, callbacks=callbacks)


def train_on_pairs(
    model_path: str | Path,
    pairs: Any,
    config: ContrastiveConfig | dict[str, Any] | None,
    run_dir: str | Path,
    resume: bool = False,
    *,
    validation: Any = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> Path:
    """Train ``model_path`` on in-memory data; return the final model folder (``run_dir/model``).

    ``pairs``: one or more :class:`TrainingSet` (trained with ``config.method``, default hybrid), or aligned
    sentence pairs ``(x, y)`` / ``(lang_x, x, lang_y, y)``, trained X-Y (x→y and y→x triplets) with the query
    prefix on both sides unless ``model.passage_prefix`` is set. ``config`` holds any :class:`ContrastiveConfig`
    keys (``model`` and ``data`` are ignored; ``method`` defaults to ``xy`` for sentence pairs). ``validation``
    takes the same forms as ``pairs``; without it a ``validation.fraction`` of the items is held out.
    """
    sets, bitext = _as_training_sets(pairs)
    payload = dict(config.model_dump(mode="json") if isinstance(config, ContrastiveConfig) else (config or {}))
    model_spec = payload.get("model")
    model_spec = dict(model_spec) if isinstance(model_spec, dict) else {}
    model_spec["name"] = str(model_path)
    payload["model"] = model_spec
    payload.pop("data", None)
    payload.setdefault("method", "xy" if bitext else "hybrid")
    resolved = parse_contrastive_config(payload, "train_on_pairs config")
    validation_sets = _as_training_sets(validation)[0] if validation is not None else None
    return _train(
        str(model_path),
        sets,
        resolved,
        Path(run_dir),
        resume,
        validation=validation_sets,
        callbacks=callbacks,
        symmetric=bitext,
    )


# --------------------------------------------------------------------------------------------------- the stages
@dataclass
class _Layout:
    """Where this process stands: world size, rank, the global batch and this rank's slice of it."""

    world_size: int
    rank: int
    batch_size: int  # the global batch B
    validation_batch_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class _Data:
    """Everything training reads, fixed before the trainer exists: sets, languages, prefixes, indexes, batches."""

    model: SentenceTransformer
    resolved_model: Path | str
    sets: list[TrainingSet]
    validation: list[TrainingSet]
    languages: tuple[str, ...]
    query_prefix: str
    passage_prefix: str
    train_index: TripletIndex
    sampler_options: dict[str, Any]
    steps_per_epoch: int
    total_steps: int
    val_index: TripletIndex | None = None
    validation_batches: list[list[int]] = field(default_factory=list)
    #: the prompts the saved model keeps: the backbone's own (or configured) ones, never the symmetric training text's
    saved_prompts: dict[str, str] = field(default_factory=dict)


def _train(
    model_name: str,
    sets: list[TrainingSet],
    config: ContrastiveConfig,
    run_dir: Path,
    resume: bool,
    *,
    validation: list[TrainingSet] | None,
    callbacks: Sequence[TrainerCallback],
    symmetric: bool = False,
) -> Path:
    """The stages of one run: layout, run directory, data, trainer, train, finalise."""
    layout = _layout(config)
    if layout.is_main:  # other ranks would see the config rank 0 writes; the launcher stops them if this fails
        runs.check_run_dir(run_dir, config.model_dump(mode="json"), resume)
    model_dir = run_dir / runs.MODEL_DIR
    if resume and _finished(run_dir, model_dir):
        log.info("%s is already finished; final model at %s", run_dir, model_dir)
        return model_dir
    data = _data(model_name, sets, validation, config, layout, symmetric)
    checkpoint = runs.last_checkpoint(run_dir / runs.CHECKPOINTS, move_aside=layout.is_main) if resume else None
    trainer = _trainer(data, config, layout, run_dir, checkpoint, resume, callbacks)
    if layout.is_main:
        _record_start(run_dir, data, config, layout, checkpoint)
    log.info(
        "training %s on %d items (%s), %d steps of %d triplets, policy %s%s",
        model_name,
        data.train_index.num_items,
        ", ".join(data.languages),
        data.total_steps,
        layout.batch_size,
        config.method,
        f" (alpha {config.alpha})" if config.method == "hybrid" else "",
    )
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if layout.is_main:
        _finalise(trainer, result, data, config, run_dir, model_dir)
    if layout.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return model_dir


def _layout(config: ContrastiveConfig) -> _Layout:
    world_size, rank = distributed_layout()
    batch_size = config.batch_size
    if batch_size % world_size:
        raise ConfigError(
            f"batch_size {batch_size} (the global batch) must be divisible by the number of processes {world_size}"
        )
    return _Layout(world_size, rank, batch_size, config.validation.batch_size or batch_size)


def _finished(run_dir: Path, model_dir: Path) -> bool:
    run_file = run_dir / runs.RUN_FILE
    return model_dir.is_dir() and run_file.exists() and read_json(run_file).get("status") == "finished"


def _data(
    model_name: str,
    sets: list[TrainingSet],
    validation: list[TrainingSet] | None,
    config: ContrastiveConfig,
    layout: _Layout,
    symmetric: bool,
) -> _Data:
    """Hold-out, languages, model, prefixes, triplet indexes and the sampler's epoch length (the data fail fast,
    before the trainer starts)."""
    sets, validation = hold_out(sets, validation, config)
    languages = _languages(sets, config.languages)
    resolved_model = resolve_model(model_name)
    with weights_readable(resolved_model):
        model = SentenceTransformer(str(resolved_model), device="cpu")
    query_prefix, passage_prefix = _prefixes(model, config, symmetric)
    saved_prompts = dict(zip(("query", "passage"), _prefixes(model, config, symmetric=False), strict=True))
    plan = plan_training(
        sets, validation, languages, config, (query_prefix, passage_prefix), tuple(saved_prompts.values())
    )
    return _Data(
        model,
        resolved_model,
        sets,
        validation or [],
        languages,
        query_prefix,
        passage_prefix,
        plan.train_index,
        plan.options,
        plan.steps_per_epoch,
        plan.total_steps,
        plan.val_index,
        plan.validation_batches,
        saved_prompts,
    )


def _arguments(data: _Data, config: ContrastiveConfig, layout: _Layout, run_dir: Path) -> Any:
    """``SentenceTransformerTrainingArguments``: budget, optimiser, precision, evaluation/checkpoint cadence, and our
    batch sampler (a checkpoint doubles as an early-stopping candidate, so saves fall on evaluations)."""
    validate = bool(data.validation)
    eval_steps = config.validation.eval_steps
    save_steps = config.save_steps or (eval_steps if validate else 500)
    early_stop = validate and config.validation.patience is not None
    if early_stop and save_steps % eval_steps:
        raise ConfigError(
            f"save_steps {save_steps} must be a multiple of validation.eval_steps {eval_steps} "
            "(checkpoints are the early-stopping candidates)"
        )
    factory = SamplerFactory(
        data.train_index, config.method, validation_batches=data.validation_batches, **data.sampler_options
    )
    return SentenceTransformerTrainingArguments(
        output_dir=str(run_dir / runs.CHECKPOINTS),
        per_device_train_batch_size=layout.batch_size // layout.world_size,
        per_device_eval_batch_size=layout.validation_batch_size // layout.world_size,
        max_steps=data.total_steps,
        learning_rate=config.optim.lr,
        weight_decay=config.optim.weight_decay,
        warmup_steps=config.optim.warmup_ratio,
        lr_scheduler_type=config.optim.scheduler,
        max_grad_norm=config.optim.max_grad_norm,
        seed=config.seed,
        eval_strategy="steps" if validate else "no",
        eval_steps=eval_steps if validate else None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=early_stop,
        metric_for_best_model="eval_loss" if early_stop else None,
        greater_is_better=False if early_stop else None,
        logging_steps=config.logging_steps,
        report_to="none",
        batch_sampler=factory,
        dataloader_num_workers=config.dataloader_workers,
        dataloader_drop_last=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        # one dict: bf16 on a CPU and CPU-only DDP may both set use_cpu, which a call cannot take twice
        **{
            **trainer_precision_flags(config.precision),
            # CPU-only DDP (tests, laptops): accelerate needs use_cpu to set up a gloo process group
            **(
                {"use_cpu": True, "ddp_backend": "gloo"}
                if layout.world_size > 1 and not torch.cuda.is_available()
                else {}
            ),
        },
    )


def _trainer(
    data: _Data,
    config: ContrastiveConfig,
    layout: _Layout,
    run_dir: Path,
    checkpoint: str | None,
    resume: bool,
    callbacks: Sequence[TrainerCallback],
) -> PolyretTrainer:
    """The trainer over row datasets (the collator turns rows into texts), its logs cut back to the checkpoint."""
    args = _arguments(data, config, layout, run_dir)
    train_dataset = Dataset.from_dict({TRAIN_COLUMN: np.arange(data.train_index.num_rows, dtype=np.int64)})
    eval_dataset = (
        Dataset.from_dict({VALIDATION_COLUMN: np.arange(data.val_index.num_rows, dtype=np.int64)})
        if data.val_index
        else None
    )
    collator = TripletCollator(
        preprocess_fn=data.model.preprocess,
        train_index=data.train_index,
        val_index=data.val_index,
        max_query_length=min(config.model.max_query_length, data.model.max_seq_length),
        max_passage_length=min(config.model.max_passage_length, data.model.max_seq_length),
    )
    if layout.is_main:  # data, model and samplers are ready: only now does the run directory hold a run
        runs.prepare_run_dir(run_dir, config.model_dump(mode="json"), resume)
    batch_log = runs.batch_log_path(run_dir, layout.rank)
    train_log = run_dir / runs.TRAIN_LOG
    _reset_logs(batch_log, train_log, runs.checkpoint_step(checkpoint), resume, layout.is_main)
    all_callbacks: list[TrainerCallback] = [_LogToFile(train_log)]
    if args.load_best_model_at_end:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.validation.patience))
    all_callbacks.extend(callbacks)
    return PolyretTrainer(
        model=data.model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        loss=build_loss(data.model, config, layout.world_size),
        data_collator=collator,
        callbacks=all_callbacks,
        batch_log=batch_log,
    )


def _reset_logs(batch_log: Path, train_log: Path, resumed_step: int, resume: bool, is_main: bool) -> None:
    """Resuming drops log lines of steps after the checkpoint (they are trained again); a new run starts empty."""
    if resume:
        runs.truncate_jsonl(batch_log, resumed_step)
        if is_main:
            runs.truncate_jsonl(train_log, resumed_step + 1)
    else:
        batch_log.unlink(missing_ok=True)
        if is_main:
            train_log.unlink(missing_ok=True)


def _record_start(
    run_dir: Path, data: _Data, config: ContrastiveConfig, layout: _Layout, checkpoint: str | None
) -> None:
    runs.update_run_file(
        run_dir,
        status="running",
        method=config.method,
        seed=config.seed,
        model=str(data.resolved_model),
        query_prefix=data.query_prefix,
        passage_prefix=data.passage_prefix,
        saved_prompts=data.saved_prompts,
        languages=list(data.languages),
        datasets={s.name: len(s) for s in data.sets},
        validation={s.name: len(s) for s in data.validation},
        global_batch_size=layout.batch_size,
        precision=resolve_train_precision(config.precision),
        world_size=layout.world_size,
        steps_per_epoch=data.steps_per_epoch,
        max_steps=data.total_steps,
        triplet_rows=data.train_index.num_rows,
        resumed_from=checkpoint,
        versions=runs.versions(),
        started=timestamp(),
    )


def _finalise(
    trainer: PolyretTrainer, result: Any, data: _Data, config: ContrastiveConfig, run_dir: Path, model_dir: Path
) -> None:
    """Save the final model (with its backbone's prompts, PROTOCOLS §6.1, and what it was trained on), then the run
    record with the step whose weights were saved."""
    data.model.prompts = {**(data.model.prompts or {}), **data.saved_prompts}
    trained_on = {
        "method": config.method,
        "alpha": config.alpha if config.method == "hybrid" else None,
        "datasets": [s.name for s in data.sets],
        "languages": list(data.languages),
        "seed": config.seed,
        "query_prefix": data.saved_prompts["query"],
        "passage_prefix": data.saved_prompts["passage"],
        "training_text_prefixes": {"query": data.query_prefix, "passage": data.passage_prefix},
        "precision": resolve_train_precision(config.precision),
        "kept_step": kept_step(trainer.state.best_model_checkpoint, trainer.state.global_step),
    }

    def save(path: Path) -> None:
        trainer.model.save(str(path))
        write_json(path / runs.TRAINING_INFO, trained_on)

    write_dir_atomically(model_dir, save)
    runs.update_run_file(
        run_dir,
        status="finished",
        finished=timestamp(),
        global_step=trainer.state.global_step,
        kept_step=trained_on["kept_step"],
        best_checkpoint=trainer.state.best_model_checkpoint,
        best_eval_loss=trainer.state.best_metric,
        train_loss=result.training_loss,
        metrics=result.metrics,
    )
