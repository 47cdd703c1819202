"""CRISS-style iterative mining and fine-tuning (arXiv 2006.09526; PROTOCOLS.md §2 is the spec).

For ``iterations`` rounds (default 3), iteration ``t``:

1. **mine** with ``M_{t-1}``: encode every monolingual corpus (:class:`~polyret.encode.seq2seq.Seq2SeqEncoder`
   rules for seq2seq models), mine each configured language pair with the shared margin miner
   (:func:`polyret.mining.margin.mine_pairs`: k 4, ratio margin, threshold 1.06, ``min_count`` floor,
   one-to-one), split off the first ``valid_size`` accepted pairs as validation (``valid_sampling: top|random``);
2. **train** ``M_t`` from ``M_0`` or ``M_{t-1}`` (``init_from``) on this iteration's pairs or all pairs so far
   (``data: fresh|cumulative``):
   * ``criss``: multilingual translation in both directions, the decoder opened by the target-language token,
     label-smoothed cross-entropy (ε 0.2), dropout 0.3, attention dropout 0.1, lr 3e-5, warmup 2,500, at most
     20k updates (transformers ``Seq2SeqTrainer``);
   * ``criss-contrastive``: the mined pairs train a dual encoder with InfoNCE
     (:func:`polyret.train.contrastive.train_on_pairs`);
3. **score** ``M_t``: top-1 retrieval on each pair's validation split, on the gold alignment when the corpora
   come from a parallel set (labelled transductive), and any configured ``eval`` tasks.

Run directory (every file written atomically; a killed run resumes at the first missing stage, and inside
training from the last Trainer checkpoint)::

    base_model/                      the offline stand-in, when one was built
    iter_1/mined/de-en.tsv           score<TAB>src<TAB>tgt, all accepted pairs, score-descending
    iter_1/mined/de-en.valid.tsv     the validation split (same format)
    iter_1/mined/summary.json        counts, thresholds, precision against gold when known   (stage marker)
    iter_1/embeddings/<corpus>.npy   only with keep_embeddings
    iter_1/trainer/                  Trainer checkpoints (resume)
    iter_1/model/                    M_1 (renamed into place when complete)                  (stage marker)
    iter_1/train_log.json            Trainer log history (loss per logging step)
    iter_1/scores.json               retrieval scores of M_1                                  (stage marker)
    scores_base.json                 the same scores of M_0
    run.json / config.yaml           versions, status; the resolved config (a resumed run must match it)
    final.json                       path of the released model
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from polyret.errors import ConfigError, DataError, PolyretError
from polyret.io import atomic_write, write_json
from polyret.precision import DEFAULT_PRECISION, Precision, TrainPrecision, trainer_precision_flags

log = logging.getLogger(__name__)

Method = Literal["criss", "criss-contrastive"]


# ------------------------------------------------------------------------------------------------ config
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrissMining(_Strict):
    """PROTOCOLS §2.2 [P] defaults; the small example uses threshold 1.02, min_count 500, valid_size 100."""

    k: int = Field(4, ge=1)
    margin: Literal["ratio", "distance", "absolute"] = "ratio"
    threshold: float | None = 1.06
    min_count: int = Field(50_000, ge=0)
    valid_size: int = Field(2_000, ge=0)
    valid_sampling: Literal["top", "random"] = "top"
    max_length: int = Field(256, ge=4)
    batch_size: int = Field(32, ge=1)
    cache: bool = Field(True, description="read/write the shared embedding cache ($POLYRET_HOME/embeddings)")


class CrissTraining(_Strict):
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


class TatoebaSource(_Strict):
    """Build "monolingual" corpora from Tatoeba pairs: each side shuffled, the alignment kept only as gold."""

    languages: list[str]
    max_sentences: int | None = Field(None, ge=2)
    seed: int = 0
    root: Path | None = None


class CrissEval(_Strict):
    """Optional benchmark evaluation of every ``M_t`` through ``polyret.eval.run.run_eval``."""

    tasks: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


class CrissConfig(_Strict):
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
    pairs: list[tuple[str, str]] | None = None
    iterations: int = Field(3, ge=1)
    init_from: Literal["base", "previous"] = "previous"
    data: Literal["fresh", "cumulative"] = "fresh"
    mining: CrissMining = Field(default_factory=CrissMining)
    train: CrissTraining = Field(default_factory=CrissTraining)
    contrastive: dict[str, Any] = Field(
        default_factory=dict, description="options passed to train_on_pairs (criss-contrastive)"
    )
    eval: CrissEval | None = None
    keep_embeddings: bool = False
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
        if not self.corpora and self.tatoeba is None:
            raise ValueError("give monolingual `corpora` (language: file) or a `tatoeba` source")
        if self.corpora and self.tatoeba is not None:
            raise ValueError("give either `corpora` or `tatoeba`, not both")
        return self


def load_criss_config(
    source: CrissConfig | BaseModel | dict[str, Any] | str | Path, origin: str | Path = "<criss config>"
) -> CrissConfig:
    """Validate a config given as the model itself, another pydantic model, a mapping or a YAML file."""
    from polyret.train.config import read_yaml, validation_error

    if isinstance(source, CrissConfig):
        return source
    if isinstance(source, BaseModel):
        source = source.model_dump(exclude_none=True)
    if isinstance(source, str | Path):
        origin = source
        source = read_yaml(source)
    try:
        return CrissConfig.model_validate(source)
    except ValidationError as err:
        raise validation_error(err, origin) from None


# ------------------------------------------------------------------------------------------------ corpora
@dataclass
class MiningJob:
    """One language pair to mine: corpus names (keys into the corpora dict) and, if known, gold text pairs."""

    src_lang: str
    tgt_lang: str
    src_corpus: str
    tgt_corpus: str
    gold: set[tuple[str, str]] | None = None

    @property
    def name(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"


@dataclass(frozen=True)
class MinedPair:
    src_lang: str
    tgt_lang: str
    src: str
    tgt: str
    score: float


def _dedupe(texts: Sequence[str]) -> list[str]:
    """Stripped, non-empty, deduplicated with the miner's own ``dedupe`` (PROTOCOLS §2.2 step 1)."""
    from polyret.mining.margin import dedupe

    return dedupe([text.strip() for text in texts if text.strip()]).unique


def _read_corpus(path: Path, limit: int | None) -> list[str]:
    """One sentence a line (UTF-8; a bad byte is a DataError naming the line), at most ``limit`` lines."""
    from polyret.data.tatoeba import read_lines

    lines = read_lines(path)
    return lines if limit is None else lines[:limit]


def build_jobs(config: CrissConfig) -> tuple[dict[str, list[str]], list[MiningJob]]:
    """Deduplicated corpora by name and the mining jobs over them."""
    from polyret.data.languages import get_language

    corpora: dict[str, list[str]] = {}
    jobs: list[MiningJob] = []
    if config.tatoeba is not None:
        from polyret.data.tatoeba import read_tatoeba_pair

        source = config.tatoeba
        for lang in source.languages:
            pair = read_tatoeba_pair(lang, source.root)
            code = pair.lang
            count = len(pair) if source.max_sentences is None else min(len(pair), source.max_sentences)
            xx, en = pair.xx[:count], pair.en[:count]
            rng = random.Random(f"{source.seed}-{code}")
            xx_shuffled, en_shuffled = xx[:], en[:]
            rng.shuffle(xx_shuffled)
            rng.shuffle(en_shuffled)
            corpora[code] = _dedupe(xx_shuffled)
            corpora[f"en@{code}"] = _dedupe(en_shuffled)
            gold = {(a.strip(), b.strip()) for a, b in zip(xx, en, strict=True) if a.strip() and b.strip()}
            jobs.append(MiningJob(code, "en", code, f"en@{code}", gold))
        return corpora, jobs
    languages = {get_language(lang).code: Path(path) for lang, path in config.corpora.items()}
    for code, path in languages.items():
        corpora[code] = _dedupe(_read_corpus(path, config.max_sentences))
    pairs = config.pairs or [(code, "en") for code in languages if code != "en"]
    for src, tgt in pairs:
        src_code, tgt_code = get_language(src).code, get_language(tgt).code
        for code in (src_code, tgt_code):
            if code not in corpora:
                raise ConfigError(f"criss config: pairs: no corpus for language {code!r}; add it under `corpora`")
        jobs.append(MiningJob(src_code, tgt_code, src_code, tgt_code))
    if not jobs:
        raise ConfigError("criss config: pairs: nothing to mine (give `pairs` or a corpus besides en)")
    return corpora, jobs


# ------------------------------------------------------------------------------------------------ pair files
def write_pairs_tsv(path: Path, pairs: Sequence[MinedPair]) -> None:
    """``score<TAB>src<TAB>tgt`` lines (the ``polyret mine`` format), written atomically."""
    with atomic_write(path) as handle:
        for pair in pairs:
            handle.write(f"{pair.score:.6f}\t{_one_line(pair.src)}\t{_one_line(pair.tgt)}\n")


def _one_line(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def read_pairs_tsv(path: Path, src_lang: str, tgt_lang: str) -> list[MinedPair]:
    pairs = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise DataError.at(path, number, f"expected score<TAB>src<TAB>tgt, got {len(fields)} fields")
            try:
                score = float(fields[0])
            except ValueError as err:
                raise DataError.at(path, number, f"score {fields[0]!r} is not a number") from err
            pairs.append(MinedPair(src_lang, tgt_lang, fields[1], fields[2], score))
    return pairs


# ------------------------------------------------------------------------------------------------ the loop
def _make_encoder(config: CrissConfig, model_dir: Path | str) -> Any:
    """The shared ``load_encoder`` (seq2seq models dispatch to :class:`Seq2SeqEncoder`), behind the embedding cache."""
    from polyret.encode.encoder import load_encoder

    return load_encoder(
        str(model_dir), max_length=config.mining.max_length, cache=config.mining.cache, precision=config.precision
    )


def _encode(encoder: Any, texts: Sequence[str], config: CrissConfig) -> np.ndarray:
    return encoder.encode(
        list(texts), prefix=encoder.query_prefix, batch_size=config.mining.batch_size, show_progress=False
    )


def resolve_base_model(config: CrissConfig, run_dir: Path) -> Path | str:
    """``M_0``: the configured model, or the EncoderDecoder stand-in built from it into ``run_dir/base_model``."""
    from polyret.encode.models import resolve_model
    from polyret.encode.seq2seq import build_standin, is_seq2seq_model

    resolved = resolve_model(config.model)
    if config.method == "criss-contrastive":
        return resolved
    stand_in = config.stand_in
    if stand_in is None:
        stand_in = isinstance(resolved, Path) and not is_seq2seq_model(resolved)
    if not stand_in:
        if isinstance(resolved, Path) and not is_seq2seq_model(resolved):
            raise ConfigError(
                f"criss config: model: {config.model} is not a seq2seq model; use an mBART/NLLB/mT5 "
                f"model, set stand_in: true, or method: criss-contrastive"
            )
        return resolved
    languages = sorted({lang for job in build_jobs(config)[1] for lang in (job.src_lang, job.tgt_lang)})
    log.warning(
        "CRISS with an EncoderDecoder stand-in built from %s: results are stand-in, not comparable with CRISS", resolved
    )
    return build_standin(resolved, run_dir / "base_model", languages)


def mine_iteration(
    config: CrissConfig,
    encoder: Any,
    corpora: dict[str, list[str]],
    jobs: Sequence[MiningJob],
    out_dir: Path,
    embeddings_dir: Path | None = None,
) -> dict[str, Any]:
    """Encode every corpus with ``encoder``, mine every job, write the pair files and return the summary."""
    from polyret.eval.metrics import precision_recall_f1
    from polyret.mining.margin import mine_pairs

    started = time.perf_counter()
    needed = sorted({name for job in jobs for name in (job.src_corpus, job.tgt_corpus)})
    vectors: dict[str, np.ndarray] = {}
    for name in needed:
        vectors[name] = _encode(encoder, corpora[name], config)
        if embeddings_dir is not None:
            with atomic_write(embeddings_dir / f"{name}.npy", "wb") as handle:
                np.save(handle, vectors[name])
    encode_s = time.perf_counter() - started
    summary: dict[str, Any] = {"pairs": {}, "encode_s": round(encode_s, 2), "mining": config.mining.model_dump()}
    rng = random.Random(config.seed)
    for job in jobs:
        src_texts, tgt_texts = corpora[job.src_corpus], corpora[job.tgt_corpus]
        mined = mine_pairs(
            vectors[job.src_corpus],
            vectors[job.tgt_corpus],
            k=config.mining.k,
            margin=config.mining.margin,
            threshold=config.mining.threshold,
            min_count=config.mining.min_count,
            one_to_one=True,
        )
        accepted = [
            MinedPair(job.src_lang, job.tgt_lang, src_texts[int(i)], tgt_texts[int(j)], float(s))
            for i, j, s in zip(mined.src_index, mined.tgt_index, mined.score, strict=True)
        ]
        valid_size = min(config.mining.valid_size, len(accepted) // 2)
        if config.mining.valid_sampling == "top":
            valid_rows = set(range(valid_size))
        else:
            valid_rows = set(rng.sample(range(len(accepted)), valid_size))
        valid = [pair for row, pair in enumerate(accepted) if row in valid_rows]
        write_pairs_tsv(out_dir / f"{job.name}.tsv", accepted)
        write_pairs_tsv(out_dir / f"{job.name}.valid.tsv", valid)
        entry: dict[str, Any] = {
            "src_sentences": len(src_texts),
            "tgt_sentences": len(tgt_texts),
            "accepted": len(accepted),
            "valid": len(valid),
            "train": len(accepted) - len(valid),
            "above_threshold": int(np.sum(mined.score > config.mining.threshold))
            if config.mining.threshold is not None
            else len(accepted),
            "min_score": float(mined.score.min()) if len(accepted) else None,
        }
        if job.gold is not None:
            predicted = {(pair.src, pair.tgt) for pair in accepted}
            precision, recall, f1 = precision_recall_f1(predicted, job.gold)
            entry.update(
                {
                    "gold": len(job.gold),
                    "precision": round(100 * precision, 2),
                    "recall": round(100 * recall, 2),
                    "f1": round(100 * f1, 2),
                }
            )
        summary["pairs"][job.name] = entry
    summary["duration_s"] = round(time.perf_counter() - started, 2)
    return summary


def load_mined(iter_dir: Path, jobs: Sequence[MiningJob]) -> tuple[list[MinedPair], list[MinedPair]]:
    """(train, valid) pairs of one finished mining stage."""
    train: list[MinedPair] = []
    valid: list[MinedPair] = []
    for job in jobs:
        everything = read_pairs_tsv(iter_dir / "mined" / f"{job.name}.tsv", job.src_lang, job.tgt_lang)
        held = read_pairs_tsv(iter_dir / "mined" / f"{job.name}.valid.tsv", job.src_lang, job.tgt_lang)
        held_keys = {(pair.src, pair.tgt) for pair in held}
        train.extend(pair for pair in everything if (pair.src, pair.tgt) not in held_keys)
        valid.extend(held)
    return train, valid


def retrieval_scores(
    config: CrissConfig,
    encoder: Any,
    corpora: dict[str, list[str]],
    jobs: Sequence[MiningJob],
    valid: Sequence[MinedPair],
) -> dict[str, Any]:
    """Cosine top-1 accuracy (x100, both directions) on each pair's validation split and gold alignment."""
    scores: dict[str, Any] = {"model": encoder.describe(), "valid": {}, "gold": {}}
    for job in jobs:
        held = [pair for pair in valid if (pair.src_lang, pair.tgt_lang) == (job.src_lang, job.tgt_lang)]
        if len(held) >= 2:
            scores["valid"][job.name] = _top1_both(encoder, [p.src for p in held], [p.tgt for p in held], config)
        if job.gold:
            src, tgt = zip(*sorted(job.gold), strict=True)
            scores["gold"][job.name] = _top1_both(encoder, list(src), list(tgt), config)
    if scores["gold"]:
        scores["gold_note"] = (
            "transductive: the gold alignment of the very sentences mined from; not a zero-shot benchmark number"
        )
    return scores


def _top1_both(encoder: Any, src: list[str], tgt: list[str], config: CrissConfig) -> dict[str, float]:
    from polyret.eval.metrics import top1_accuracy
    from polyret.mining.knn import exact_topk

    a, b = _encode(encoder, src, config), _encode(encoder, tgt, config)
    gold = np.arange(len(src))
    forward = exact_topk(a, b, 1)[1][:, 0]
    backward = exact_topk(b, a, 1)[1][:, 0]
    return {
        "src2tgt.accuracy": round(100 * top1_accuracy(forward, gold), 2),
        "tgt2src.accuracy": round(100 * top1_accuracy(backward, gold), 2),
        "n": len(src),
    }


def run_criss(
    config: CrissConfig | BaseModel | dict[str, Any] | str | Path, run_dir: Path, resume: bool = False
) -> Path:
    """Run (or resume) the CRISS loop in ``run_dir``; return the last iteration's model folder."""
    from polyret.train.runs import prepare_run_dir, update_run_file, versions

    config = load_criss_config(config)
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, config.model_dump(mode="json"), resume)
    update_run_file(run_dir, method=config.method, seed=config.seed, versions=versions(), status="running")
    _seed_everything(config.seed)
    corpora, jobs = build_jobs(config)
    base = resolve_base_model(config, run_dir)
    previous_model: Path | str = base
    cumulative: list[MinedPair] = []
    if not (run_dir / "scores_base.json").exists():  # M_0's retrieval scores, the baseline of every iteration
        encoder = _make_encoder(config, base)
        write_json(run_dir / "scores_base.json", retrieval_scores(config, encoder, corpora, jobs, []))
        del encoder
    for t in range(1, config.iterations + 1):
        iter_dir = run_dir / f"iter_{t}"
        mined_dir = iter_dir / "mined"
        if not (mined_dir / "summary.json").exists():
            log.info("CRISS iteration %d/%d: mining with %s", t, config.iterations, previous_model)
            encoder = _make_encoder(config, Path(previous_model))
            summary = mine_iteration(
                config, encoder, corpora, jobs, mined_dir, iter_dir / "embeddings" if config.keep_embeddings else None
            )
            summary["mined_with"] = str(previous_model)
            write_json(mined_dir / "summary.json", summary)
            del encoder
        train_pairs, valid_pairs = load_mined(iter_dir, jobs)
        if config.data == "cumulative":
            cumulative = _union(cumulative, train_pairs)
            train_pairs = cumulative
        model_dir = iter_dir / "model"
        if not model_dir.exists():
            init = base if (t == 1 or config.init_from == "base") else previous_model
            log.info(
                "CRISS iteration %d/%d: training on %d mined pairs from %s",
                t,
                config.iterations,
                len(train_pairs),
                init,
            )
            if not train_pairs:
                raise PolyretError(
                    f"iteration {t} mined no training pairs; lower mining.threshold or raise mining.min_count"
                )
            if config.method == "criss":
                train_translation(Path(init), train_pairs, valid_pairs, iter_dir, config, resume=resume)
            else:
                train_dual_encoder(Path(init), train_pairs, valid_pairs, iter_dir, config, resume=resume)
        if not (iter_dir / "scores.json").exists():
            encoder = _make_encoder(config, model_dir)
            scores = retrieval_scores(config, encoder, corpora, jobs, valid_pairs)
            scores["benchmarks"] = _run_benchmarks(config, model_dir, iter_dir)
            write_json(iter_dir / "scores.json", scores)
            del encoder
        previous_model = model_dir
    write_json(
        run_dir / "final.json", {"model": str(previous_model), "iterations": config.iterations, "method": config.method}
    )
    update_run_file(run_dir, status="finished", model=str(previous_model))
    return Path(previous_model)


def _run_benchmarks(config: CrissConfig, model_dir: Path, iter_dir: Path) -> dict[str, Any]:
    if config.eval is None or not config.eval.tasks:
        return {}
    from polyret.eval.run import run_eval

    results = run_eval(str(model_dir), config.eval.tasks, iter_dir / "eval", config.eval.options)
    return {result.task: result.main_score.model_dump() for result in results}


def _union(previous: list[MinedPair], new: list[MinedPair]) -> list[MinedPair]:
    seen = {(p.src_lang, p.tgt_lang, p.src, p.tgt) for p in previous}
    merged = list(previous)
    for pair in new:
        key = (pair.src_lang, pair.tgt_lang, pair.src, pair.tgt)
        if key not in seen:
            seen.add(key)
            merged.append(pair)
    return merged


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------ training
def _dropout_overrides(config: Any, train: CrissTraining) -> None:
    """Set dropout / attention dropout on a (possibly nested encoder-decoder) model config in place."""
    model_type = getattr(config, "model_type", "")
    if model_type == "encoder-decoder":
        _dropout_overrides(config.encoder, train)
        _dropout_overrides(config.decoder, train)
        return
    if hasattr(config, "attention_dropout"):  # mBART, M2M100, NLLB
        config.dropout = train.dropout
        config.attention_dropout = train.attention_dropout
    elif hasattr(config, "dropout_rate"):  # (m)T5: one rate for both
        config.dropout_rate = train.dropout
    if hasattr(config, "hidden_dropout_prob"):  # BERT-type halves of the stand-in
        config.hidden_dropout_prob = train.dropout
        config.attention_probs_dropout_prob = train.attention_dropout


def _last_checkpoint(trainer_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not trainer_dir.is_dir():
        return None
    return get_last_checkpoint(str(trainer_dir))


def _update_steps(n_examples: int, train: CrissTraining) -> int:
    per_update = train.batch_size * train.gradient_accumulation_steps
    steps = train.max_steps
    if train.epochs is not None:
        steps = min(steps, max(1, math.ceil(train.epochs * n_examples / per_update)))
    return steps


def train_translation(
    init: Path,
    train_pairs: Sequence[MinedPair],
    valid_pairs: Sequence[MinedPair],
    iter_dir: Path,
    config: CrissConfig,
    *,
    resume: bool,
) -> Path:
    """Fine-tune ``init`` for multilingual translation on the pairs (both directions); save ``iter_dir/model``."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoConfig,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
    )

    from polyret.encode.seq2seq import LanguageTokens, ensure_language_tags, read_sidecar, write_sidecar
    from polyret.train.runs import save_model_atomically

    train_cfg = config.train
    model_config = AutoConfig.from_pretrained(str(init))
    _dropout_overrides(model_config, train_cfg)
    tokenizer = AutoTokenizer.from_pretrained(str(init))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(init), config=model_config, dtype=torch.float32)
    languages = sorted({lang for pair in [*train_pairs, *valid_pairs] for lang in (pair.src_lang, pair.tgt_lang)})
    marks = LanguageTokens(tokenizer, model_config.model_type)
    if marks.scheme == "tag":
        ensure_language_tags(model, tokenizer, languages)
        marks = LanguageTokens(tokenizer, model_config.model_type)
    sidecar = read_sidecar(init)
    prefix = sidecar.get("query_prefix", "")

    def examples(pairs: Sequence[MinedPair]) -> Dataset:
        directed: dict[str, list[tuple[str, str]]] = {}
        for pair in pairs:  # both directions
            directed.setdefault(pair.tgt_lang, []).append((pair.src, pair.tgt))
            directed.setdefault(pair.src_lang, []).append((pair.tgt, pair.src))
        rows: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for target_lang, items in sorted(directed.items()):
            sources = marks.source_ids([prefix + src for src, _ in items], train_cfg.max_source_length)
            labels = marks.label_ids([tgt for _, tgt in items], target_lang, train_cfg.max_target_length)
            for source, label in zip(sources, labels, strict=True):
                rows["input_ids"].append(source)
                rows["attention_mask"].append([1] * len(source))
                rows["labels"].append(label)
        return Dataset.from_dict(rows)

    train_set = examples(train_pairs)
    valid_set = examples(valid_pairs) if valid_pairs else None
    steps = _update_steps(len(train_set), train_cfg)
    warmup = train_cfg.warmup_steps
    if warmup >= steps:
        warmup = max(0, steps // 10)
        log.info("warmup_steps %d >= %d updates: using %d", train_cfg.warmup_steps, steps, warmup)
    trainer_dir = iter_dir / "trainer"
    eval_steps = train_cfg.eval_steps or train_cfg.save_steps
    args = Seq2SeqTrainingArguments(
        output_dir=str(trainer_dir),
        max_steps=steps,
        per_device_train_batch_size=train_cfg.batch_size,
        per_device_eval_batch_size=train_cfg.batch_size,
        gradient_accumulation_steps=train_cfg.gradient_accumulation_steps,
        learning_rate=train_cfg.learning_rate,
        warmup_steps=warmup,
        weight_decay=train_cfg.weight_decay,
        lr_scheduler_type=train_cfg.lr_scheduler,
        label_smoothing_factor=train_cfg.label_smoothing,
        logging_steps=train_cfg.logging_steps,
        save_strategy="steps",
        save_steps=train_cfg.save_steps,
        save_total_limit=1,
        eval_strategy="steps" if valid_set is not None else "no",
        eval_steps=eval_steps,
        **trainer_precision_flags(train_cfg.precision or config.precision),
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        predict_with_generate=False,
        logging_first_step=True,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=valid_set,
        data_collator=collator,
        processing_class=tokenizer,
    )
    checkpoint = _last_checkpoint(trainer_dir) if resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    if valid_set is not None and steps % eval_steps:  # the final validation loss, unless the last step had one
        trainer.evaluate()
    log_history = trainer.state.log_history
    _restore_dropout(model.config, init)

    def save(folder: str) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        write_sidecar(folder, {**sidecar, "trained_from": str(init), "method": "criss"})

    target = save_model_atomically(save, iter_dir / "model")
    write_json(
        iter_dir / "train_log.json",
        {
            "updates": steps,
            "examples": len(train_set),
            "valid_examples": 0 if valid_set is None else len(valid_set),
            "log_history": log_history,
        },
    )
    shutil.rmtree(trainer_dir, ignore_errors=True)
    return target


def _restore_dropout(model_config: Any, init: Path) -> None:
    """Save the inference-time dropout of the initial model (training dropout is a training-run setting)."""
    from transformers import AutoConfig

    original = AutoConfig.from_pretrained(str(init))
    for attribute in (
        "dropout",
        "attention_dropout",
        "dropout_rate",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
    ):
        for ours, theirs in (
            (model_config, original),
            (getattr(model_config, "encoder", None), getattr(original, "encoder", None)),
            (getattr(model_config, "decoder", None), getattr(original, "decoder", None)),
        ):
            if ours is not None and theirs is not None and hasattr(theirs, attribute):
                setattr(ours, attribute, getattr(theirs, attribute))


def train_dual_encoder(
    init: Path,
    train_pairs: Sequence[MinedPair],
    valid_pairs: Sequence[MinedPair],
    iter_dir: Path,
    config: CrissConfig,
    *,
    resume: bool,
) -> Path:
    """``criss-contrastive``: InfoNCE on the mined pairs through the shared contrastive trainer."""
    from polyret.train.contrastive import train_on_pairs

    def tuples(pairs: Sequence[MinedPair]) -> list[tuple[str, str, str, str]]:
        return [(pair.src_lang, pair.src, pair.tgt_lang, pair.tgt) for pair in pairs]

    # train_on_pairs lays its run out in iter_dir (config.yaml, run.json, checkpoints/, train_log.jsonl) and renames
    # the finished model into iter_dir/model, the stage marker this loop checks.
    trained = train_on_pairs(
        str(init),
        tuples(train_pairs),
        {"precision": config.precision, **config.contrastive},
        iter_dir,
        resume,
        validation=tuples(valid_pairs) if len(valid_pairs) >= 2 else None,
    )
    shutil.rmtree(iter_dir / "checkpoints", ignore_errors=True)
    return Path(trained)
