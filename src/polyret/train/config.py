"""Training configs, validated once at the edge (pydantic): one YAML file per run.

The contrastive methods (``mono | xy | hybrid``) share :class:`ContrastiveConfig` below (on :class:`RunConfigBase`:
``method``, ``model``, ``seed``); the other methods declare their own config models, and the method registry
(:mod:`polyret.train.methods`) says which model validates which method (``load_train_config`` lives there).

A contrastive config (``configs/train_hybrid_mlqa.yaml`` is a complete example; only ``data`` is required)::

    method: hybrid              # mono | xy | hybrid (PROTOCOLS §1.2)
    model: multilingual-e5-small  # or {name: ..., query_prefix: "query: ", passage_prefix: "passage: ",
                                  #      max_query_length: 64, max_passage_length: 256}
    seed: 0
    data:                       # one or more data sets; a batch never mixes them
      - {format: lareqa, dataset: mlqa-r, languages: [ar, de, en, es, hi, vi, zh]}
      - {format: jsonl, path: my_items.jsonl, name: mine}
      - {format: tsv, files: {en: en.tsv, de: de.tsv}}
      - {format: hf, path: user/dataset, split: train}   # polyret's columns: id, lang, query, passage
      - {format: hf, path: my_pairs, columns: {lang: sw}}  # sentence-transformers: anchor, positive[, negative]
      - {format: hf, path: talks, parallel: {lang: sw}}    # parallel sentences: english, non_english
    languages: null             # the training languages 𝓛 (default: every language in the data)
    batch_size: 100             # the GLOBAL batch B in triplets (split over W GPUs; must divide by W)
    alpha: 0.5                  # hybrid: probability that a batch is X-X-mono
    max_steps: 1000             # or epochs: 2 (epoch = items / B batches, or batching.steps_per_epoch)
    batching: {language_sampling: uniform, language_temperature: 1.0, xy_pairs: uniform, steps_per_epoch: null}
    loss: {temperature: 0.05, symmetric: false, denominator: in_batch, hard_negatives: 0, cached: false,
           mini_batch_size: 32, gather_across_devices: true}
    optim: {lr: 3.0e-5, weight_decay: 0.01, warmup_ratio: 0.1, scheduler: linear, max_grad_norm: 1.0}
    validation: {fraction: 0.05, data: null, holdout_of: null, languages: null, policy: null, seed: null,
                 batches: 4, batch_size: null, eval_steps: 100, patience: 3}
    precision: auto             # auto | fp32 | bf16 | fp16 (auto: bf16 where the hardware has it, polyret.precision)
    logging_steps: 10
    save_steps: null            # default: validation.eval_steps (checkpoints double as early-stopping candidates)
    save_total_limit: 2
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from polyret.data import pairs as pairs_io
from polyret.data.languages import get_language
from polyret.data.lareqa import LAREQA_NAMES, LareqaName
from polyret.data.pairs import ColumnMapping, ParallelColumns, TrainingSet
from polyret.errors import ConfigError, PolyretError
from polyret.io import read_yaml as load_yaml
from polyret.precision import DEFAULT_PRECISION, TrainPrecision
from polyret.validation import StrictModel, parse


class ModelSpec(StrictModel):
    """The backbone and how texts reach it; ``None`` prefixes mean the model's own ``query``/``passage`` prompts."""

    name: str
    query_prefix: str | None = None
    passage_prefix: str | None = None
    max_query_length: int = Field(64, ge=4)
    max_passage_length: int = Field(256, ge=4)


class RunConfigBase(StrictModel):
    """Keys every training method shares."""

    method: str
    model: ModelSpec
    seed: int = 0

    @field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value: Any) -> Any:
        return {"name": str(value)} if isinstance(value, (str, Path)) else value


# --------------------------------------------------------------------------------------------- data sources
class JsonlSource(StrictModel):
    format: Literal["jsonl"] = "jsonl"
    path: Path
    name: str | None = None


class LareqaSource(StrictModel):
    format: Literal["lareqa"] = "lareqa"
    dataset: LareqaName
    languages: list[str] | None = None
    root: Path | None = None
    candidate_text: Literal["sentence", "sentence+context"] = "sentence+context"
    articles: int | None = Field(None, ge=1)
    name: str | None = None


class TsvSource(StrictModel):
    format: Literal["tsv"] = "tsv"
    files: dict[str, Path] | None = None
    queries: dict[str, Path] | None = None
    passages: dict[str, Path] | None = None
    pairs: Path | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _layout(self) -> TsvSource:
        mmarco = self.queries or self.passages or self.pairs
        if bool(self.files) == bool(mmarco):
            raise ValueError("give either files (language: path) or queries + passages + pairs (mMARCO layout)")
        if mmarco and not (self.queries and self.passages and self.pairs):
            raise ValueError("the mMARCO layout needs queries, passages and pairs")
        return self


class HfColumns(StrictModel):
    """sentence-transformers columns (docs/training.md): ``anchor`` → query, ``positive`` → passage, ``negative``
    (one column or a list) → hard negatives; the language is ``lang`` (one code) or ``lang_column``; ``id`` names an
    item-id column (rows sharing it are translations of one item), else each row is its own item."""

    anchor: str = "anchor"
    positive: str = "positive"
    negative: str | list[str] | None = None
    lang: str | None = None
    lang_column: str | None = None
    id: str | None = None

    @model_validator(mode="after")
    def _one_language_source(self) -> HfColumns:
        if (self.lang is None) == (self.lang_column is None):
            raise ValueError("give the language as either lang (one code) or lang_column")
        return self

    def mapping(self) -> ColumnMapping:
        negatives = (self.negative,) if isinstance(self.negative, str) else tuple(self.negative or ())
        return ColumnMapping(self.anchor, self.positive, negatives, self.lang, self.lang_column, self.id)


class HfParallel(StrictModel):
    """The parallel-sentences layout: columns ``english`` and ``non_english`` (in ``lang``), one bitext item a row."""

    lang: str
    english: str = "english"
    non_english: str = "non_english"


class HfSource(StrictModel):
    """A hub id, a ``save_to_disk`` folder, or a local file ``datasets`` reads (``.jsonl``, ``.csv``, ``.parquet``)."""

    format: Literal["hf"] = "hf"
    path: str
    subset: str | None = None
    split: str = "train"
    name: str | None = None
    columns: HfColumns | None = None
    parallel: HfParallel | None = None

    @model_validator(mode="after")
    def _one_layout(self) -> HfSource:
        if self.columns is not None and self.parallel is not None:
            raise ValueError("give columns (anchor/positive layout) or parallel (english/non_english), not both")
        return self

    def layout(self) -> ColumnMapping | ParallelColumns | None:
        """The column layout for :func:`polyret.data.pairs.load_hf_dataset` (``None``: polyret's own columns)."""
        if self.parallel is not None:
            return ParallelColumns(self.parallel.lang, self.parallel.english, self.parallel.non_english)
        return self.columns.mapping() if self.columns is not None else None


DataSource = Annotated[JsonlSource | LareqaSource | TsvSource | HfSource, Field(discriminator="format")]
#: the ``format`` values pydantic puts in the key path of a data-source error (left out of messages)
SOURCE_FORMATS = ("jsonl", "lareqa", "tsv", "hf")


def _source_shorthand(value: Any) -> Any:
    """``mlqa-r`` → LAReQA source; ``path.jsonl`` → JSONL source; a mapping without ``format`` is guessed."""
    if isinstance(value, str):
        if value in LAREQA_NAMES:
            return {"format": "lareqa", "dataset": value}
        if value.endswith((".jsonl", ".json")):
            return {"format": "jsonl", "path": value}
        raise ValueError(f"cannot tell the format of data source {value!r}; write {{format: ..., ...}}")
    if isinstance(value, dict) and "format" not in value:
        if "dataset" in value:
            return {"format": "lareqa", **value}
        if "files" in value or "pairs" in value:
            return {"format": "tsv", **value}
        if str(value.get("path", "")).endswith((".jsonl", ".json")):
            return {"format": "jsonl", **value}
    return value


def load_sources(sources: Sequence[DataSource]) -> list[TrainingSet]:
    """Read every configured data source into a :class:`TrainingSet` (names default to the source)."""
    sets = []
    for source in sources:
        if source.format == "jsonl":
            sets.append(pairs_io.read_jsonl(source.path, source.name))
        elif source.format == "lareqa":
            data = pairs_io.from_lareqa(
                source.dataset,
                source.languages,
                source.root,
                candidate_text=source.candidate_text,
                articles=source.articles,
            )
            data.name = source.name or source.dataset
            sets.append(data)
        elif source.format == "tsv":
            files = {k: str(v) for k, v in (source.files or {}).items()} or None
            sets.append(
                pairs_io.read_tsv(
                    files,
                    name=source.name or "tsv",
                    queries={k: str(v) for k, v in (source.queries or {}).items()} or None,
                    passages={k: str(v) for k, v in (source.passages or {}).items()} or None,
                    pairs=source.pairs,
                )
            )
        elif source.format == "hf":
            sets.append(
                pairs_io.load_hf_dataset(source.path, source.name, source.split, source.subset, source.layout())
            )
        else:  # pragma: no cover - the config union is closed
            raise ConfigError(f"unknown data format {source.format!r}")
    return sets


def data_sources(value: Any) -> list[Any] | None:
    """A data-source list as written (one source or several, shorthands allowed), before validation."""
    if value is None:
        return None
    return [_source_shorthand(v) for v in (value if isinstance(value, list) else [value])]


class BatchingSpec(StrictModel):
    """PROTOCOLS §1.2 keys ``train.batching.*``; ``policy`` is the method and ``alpha`` is top-level."""

    language_sampling: Literal["uniform", "proportional", "temperature"] = "uniform"
    language_temperature: float = Field(1.0, gt=0)
    xy_pairs: Literal["uniform", "weighted"] = "uniform"
    steps_per_epoch: int | None = Field(None, ge=1)


class LossSpec(StrictModel):
    """PROTOCOLS §1.1 keys ``train.loss.*``."""

    temperature: float = Field(0.05, gt=0)
    symmetric: bool = False
    denominator: Literal["in_batch", "paper_eq1"] = "in_batch"
    hard_negatives: int = Field(0, ge=0)
    cached: bool = False
    mini_batch_size: int = Field(32, ge=1)
    gather_across_devices: bool = True

    @model_validator(mode="after")
    def _eq1_needs_negatives(self) -> LossSpec:
        if self.denominator == "paper_eq1" and self.hard_negatives == 0:
            raise ValueError("denominator paper_eq1 needs hard negatives: set loss.hard_negatives >= 1")
        if self.denominator == "paper_eq1" and (self.cached or self.symmetric):
            raise ValueError("denominator paper_eq1 is implemented without cached/symmetric variants")
        return self


class OptimSpec(StrictModel):
    lr: float = Field(3e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    max_grad_norm: float = Field(1.0, ge=0)


#: the batch policy of a study's shared validation set (PROTOCOLS §6.2): monolingual pairs, one fixed loss whatever
#: the run's method
SHARED_VALIDATION_POLICY = "mono"


class ValidationSpec(StrictModel):
    """Validation loss on fixed seeded batches every ``eval_steps``; early stopping after ``patience`` evals.

    ``data`` gives separate validation sets; otherwise a seeded ``fraction`` of each training set's items is
    held out (of ``holdout_of`` when given: the study's training data, for runs that train on other text, e.g.
    criss-contrastive). ``fraction: 0`` with no ``data`` disables validation (and early stopping).

    A study's shared selection rule (PROTOCOLS §6.2, ``polyret.study.config.SelectionSpec``) fixes ``languages``
    (English), ``policy`` (mono: one fixed loss whatever the run's method) and ``seed`` (the same held-out items
    and batches for every arm).
    """

    fraction: float = Field(0.05, ge=0, lt=1)
    data: list[DataSource] | None = None
    holdout_of: list[DataSource] | None = None
    languages: list[str] | None = None
    policy: Literal["mono", "xy", "hybrid"] | None = None
    seed: int | None = None
    batches: int = Field(4, ge=1)
    batch_size: int | None = Field(None, ge=1)
    eval_steps: int = Field(100, ge=1)
    patience: int | None = Field(3, ge=1)

    @field_validator("data", "holdout_of", mode="before")
    @classmethod
    def _data_shorthand(cls, value: Any) -> Any:
        return data_sources(value)

    @model_validator(mode="after")
    def _one_source(self) -> ValidationSpec:
        if self.data and self.holdout_of:
            raise ValueError("give validation.data (separate sets) or validation.holdout_of, not both")
        if self.holdout_of and self.fraction == 0:
            raise ValueError("validation.holdout_of needs a fraction > 0 to hold out")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.data) or self.fraction > 0


class ContrastiveConfig(RunConfigBase):
    """``polyret train`` with ``method: mono | xy | hybrid`` (see the module docstring for every key)."""

    method: Literal["mono", "xy", "hybrid"] = "hybrid"
    data: list[DataSource] = Field(default_factory=list)
    languages: list[str] | None = None
    batch_size: int = Field(100, ge=2)
    alpha: float = Field(0.5, ge=0, le=1)
    max_steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    precision: TrainPrecision = DEFAULT_PRECISION
    logging_steps: int = Field(10, ge=1)
    save_steps: int | None = Field(None, ge=1)
    save_total_limit: int | None = Field(2, ge=1)
    dataloader_workers: int = Field(0, ge=0)

    @field_validator("data", mode="before")
    @classmethod
    def _data_shorthand(cls, value: Any) -> Any:
        return data_sources(value) or []

    @field_validator("languages")
    @classmethod
    def _codes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            codes = [get_language(code).code for code in value]
        except PolyretError as err:
            raise ValueError(str(err)) from None
        if len(set(codes)) != len(codes):
            raise ValueError(f"languages repeat: {value}")
        if not codes:
            raise ValueError("give at least one language or leave languages out")
        return codes

    @model_validator(mode="after")
    def _budget(self) -> ContrastiveConfig:
        if self.max_steps is None and self.epochs is None:
            self.epochs = 1.0
        return self


def parse_contrastive_config(payload: Any, source: str | Path = "<config>") -> ContrastiveConfig:
    if not isinstance(payload, dict | ContrastiveConfig):
        raise ConfigError(f"{source}: a training config is a YAML mapping (method, model, data, ...)")
    return parse(ContrastiveConfig, payload, source, tags=SOURCE_FORMATS)


def parse_contrastive_run(payload: Any, source: str | Path = "<config>") -> ContrastiveConfig:
    """A ``polyret train`` config of a contrastive method: :func:`parse_contrastive_config` with data required."""
    config = parse_contrastive_config(payload, source)
    if not config.data:
        raise ConfigError(f"{source}: data: give at least one training data set")
    return config


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping; a missing file or a syntax error is one line naming the file (and line)."""
    source = Path(path)
    payload = load_yaml(source)
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ConfigError(f"{source}: a training config is a YAML mapping (method, model, data, ...)")
    return payload
