"""The CRISS config (``polyret train --method criss|criss-contrastive``), validated once at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from polyret.precision import DEFAULT_PRECISION, Precision, TrainPrecision
from polyret.train.config import DataSource, data_sources, read_yaml
from polyret.validation import StrictModel, parse

Method = Literal["criss", "criss-contrastive"]


class CrissMining(StrictModel):
    """PROTOCOLS §2.2 [P] defaults; the small example uses threshold 1.02, min_count 500, valid_size 100."""

    k: int = Field(4, ge=1)
    margin: Literal["ratio", "distance", "absolute"] = "ratio"
    threshold: float | None = 1.06
    min_count: int = Field(50_000, ge=0)
    valid_size: int = Field(2_000, ge=0)
    #: the validation pairs: a seeded random sample of the accepted pairs (``top``: the highest-margin ones), at most
    #: ``valid_size`` and at most a fifth of what was accepted, so training keeps the bulk and the range of margins
    valid_sampling: Literal["top", "random"] = "random"
    #: the ``min_count`` floor never exceeds this fraction of the smaller corpus: the threshold applies whenever that
    #: many pairs pass it (a CC-scale floor of 50,000 on a corpus of thousands would otherwise accept everything) [D]
    max_floor_fraction: float = Field(0.5, gt=0, le=1)
    max_length: int = Field(256, ge=4)
    batch_size: int = Field(32, ge=1)
    cache: bool = Field(True, description="read/write the shared embedding cache ($POLYRET_HOME/embeddings)")


class CrissTraining(StrictModel):
    """Translation fine-tuning (PROTOCOLS §2.3): ε 0.2 [P], ≤ 20k updates [P], the rest the mBART recipe [U]."""

    learning_rate: float = Field(3e-5, gt=0)
    warmup_steps: int = Field(2_500, ge=0)
    max_steps: int = Field(20_000, ge=1)
    epochs: float | None = Field(None, gt=0, description="cap the updates at this many passes over the pairs")
    batch_size: int = Field(16, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    label_smoothing: float = Field(0.2, ge=0, lt=1)
    dropout: float = Field(0.3, ge=0, lt=1)
    attention_dropout: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_source_length: int = Field(128, ge=4)
    max_target_length: int = Field(128, ge=4)
    lr_scheduler: str = "linear"
    precision: TrainPrecision | None = Field(None, description="default: the run's precision")
    save_steps: int = Field(500, ge=1)
    eval_steps: int | None = Field(None, ge=1)
    logging_steps: int = Field(10, ge=1)


class TrainingTextSource(StrictModel):
    """Mine the training set's own passages (sentences) per language, each language shuffled on its own: the raw
    text the contrastive arms see aligned, which no evaluation task reads (PROTOCOLS §6.3, the offline default of a
    study). The alignment is kept only as gold for the mining precision."""

    data: list[DataSource]
    languages: list[str] | None = None
    max_sentences: int | None = Field(None, ge=2)
    seed: int = 0

    @field_validator("data", mode="before")
    @classmethod
    def _data_shorthand(cls, value: Any) -> Any:
        return data_sources(value)


class TatoebaSource(StrictModel):
    """Build "monolingual" corpora from Tatoeba pairs: each side shuffled, the alignment kept only as gold."""

    languages: list[str]
    max_sentences: int | None = Field(None, ge=2)
    seed: int = 0
    root: Path | None = None


class CrissEval(StrictModel):
    """Optional benchmark evaluation of every ``M_t`` through ``polyret.eval.run.run_eval``."""

    tasks: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


class CrissConfig(StrictModel):
    """Config of ``polyret train --method criss|criss-contrastive`` (YAML keys as below)."""

    method: Method = "criss"
    model: str = "facebook/mbart-large-cc25"
    stand_in: bool | None = Field(
        None,
        description="build the EncoderDecoder stand-in from a sentence encoder; "
        "default: when `model` is not a seq2seq model and method=criss",
    )
    corpora: dict[str, Path] = Field(default_factory=dict, description="language -> text file, one sentence a line")
    max_sentences: int | None = Field(None, ge=2, description="cap on sentences read per corpus file")
    tatoeba: TatoebaSource | None = None
    training_text: TrainingTextSource | None = None
    pairs: list[tuple[str, str]] | None = None
    iterations: int = Field(3, ge=1)
    init_from: Literal["base", "previous"] = "previous"
    data: Literal["fresh", "cumulative"] = "fresh"
    mining: CrissMining = Field(default_factory=CrissMining)
    train: CrissTraining = Field(default_factory=CrissTraining)
    contrastive: dict[str, Any] = Field(
        default_factory=dict, description="options passed to train_on_pairs (criss-contrastive)"
    )
    validate_on: Literal["mined", "contrastive"] = Field(
        "mined",
        description="criss-contrastive checkpoint selection: the mined validation pairs, or what "
        "contrastive.validation says (a study's shared selection set, or none)",
    )
    eval: CrissEval | None = None
    keep_embeddings: bool = False
    score_gold: bool = Field(
        True,
        description="after each iteration, score M_t's top-1 retrieval on the whole gold alignment of the mined "
        "corpora (a transductive diagnostic in scores.json; one more encoding of every corpus)",
    )
    seed: int = 0
    precision: Precision = Field(
        DEFAULT_PRECISION,
        description="mining encoders and training (polyret.precision); train.precision overrides it for training",
    )

    @model_validator(mode="before")
    @classmethod
    def _cli_overrides(cls, value: Any) -> Any:
        """``--max-steps N`` arrives top-level (it caps every iteration's updates); ``model`` may be a mapping."""
        if isinstance(value, dict) and "max_steps" in value:
            value = dict(value)
            steps = value.pop("max_steps")
            if steps is not None:
                value["train"] = {**(value.get("train") or {}), "max_steps": steps}
        if isinstance(value, dict) and isinstance(value.get("model"), dict):
            # the shared ModelSpec form {name, query_prefix, ...}: the name picks M_0; the rest reaches the
            # contrastive trainer (criss-contrastive), which understands those keys
            value = dict(value)
            spec = dict(value["model"])
            value["model"] = spec.pop("name", None)
            if spec:
                contrastive = dict(value.get("contrastive") or {})
                contrastive["model"] = {**spec, **(contrastive.get("model") or {})}
                value["contrastive"] = contrastive
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _model_name(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @field_validator("pairs", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if value is None:
            return None
        out = []
        for item in value:
            if isinstance(item, str):
                parts = item.replace("_", "-").split("-") if "-" in item else item.split()
                item = parts
            out.append(tuple(item))
        return out

    @model_validator(mode="after")
    def _sources(self) -> CrissConfig:
        given = [name for name in ("corpora", "tatoeba", "training_text") if getattr(self, name)]
        if not given:
            raise ValueError("give monolingual `corpora` (language: file), a `training_text` or a `tatoeba` source")
        if len(given) > 1:
            raise ValueError(f"give one text source to mine, not {' and '.join(given)}")
        return self


def load_criss_config(
    source: CrissConfig | BaseModel | dict[str, Any] | str | Path, origin: str | Path = "<criss config>"
) -> CrissConfig:
    """Validate a config given as the model itself, another pydantic model, a mapping or a YAML file."""
    if isinstance(source, CrissConfig):
        return source
    if isinstance(source, BaseModel):
        source = source.model_dump(exclude_none=True)
    if isinstance(source, str | Path):
        origin = source
        source = read_yaml(source)
    return parse(CrissConfig, source, origin)
