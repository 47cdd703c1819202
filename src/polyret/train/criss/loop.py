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
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from polyret.encode.encoder import load_encoder
from polyret.encode.models import resolve_model
from polyret.encode.seq2seq import build_standin, is_seq2seq_model
from polyret.errors import ConfigError, PolyretError
from polyret.eval.metrics import top1_accuracy
from polyret.eval.run import run_eval
from polyret.io import write_json
from polyret.mining.knn import exact_topk
from polyret.train.contrastive import train_on_pairs
from polyret.train.criss.config import CrissConfig, load_criss_config
from polyret.train.criss.mining import (
    MinedPair,
    MiningJob,
    build_jobs,
    encode_texts,
    load_mined,
    merge_pairs,
    mine_iteration,
)
from polyret.train.criss.translation import train_translation
from polyret.train.runs import check_run_dir, prepare_run_dir, update_run_file, versions

log = logging.getLogger(__name__)


def _make_encoder(config: CrissConfig, model_dir: Path | str) -> Any:
    """The shared ``load_encoder`` (seq2seq models dispatch to :class:`Seq2SeqEncoder`), behind the embedding cache."""
    return load_encoder(
        str(model_dir), max_length=config.mining.max_length, cache=config.mining.cache, precision=config.precision
    )


def resolve_base_model(config: CrissConfig, run_dir: Path) -> Path | str:
    """``M_0``: the configured model, or the EncoderDecoder stand-in built from it into ``run_dir/base_model``."""
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
        if job.gold and config.score_gold:
            src, tgt = zip(*sorted(job.gold), strict=True)
            scores["gold"][job.name] = _top1_both(encoder, list(src), list(tgt), config)
    if scores["gold"]:
        scores["gold_note"] = (
            "transductive: the gold alignment of the very sentences mined from; not a zero-shot benchmark number"
        )
    return scores


def _top1_both(encoder: Any, src: list[str], tgt: list[str], config: CrissConfig) -> dict[str, float]:
    a, b = encode_texts(encoder, src, config), encode_texts(encoder, tgt, config)
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
    config = load_criss_config(config)
    run_dir = Path(run_dir)
    check_run_dir(run_dir, config.model_dump(mode="json"), resume)
    _seed_everything(config.seed)
    corpora, jobs = build_jobs(config)
    base = resolve_base_model(config, run_dir)
    # the corpora read and M_0 found: only now does run_dir hold a run (a failure above does not block a rerun)
    prepare_run_dir(run_dir, config.model_dump(mode="json"), resume)
    update_run_file(run_dir, method=config.method, seed=config.seed, versions=versions(), status="running")
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
            cumulative = merge_pairs(cumulative, train_pairs)
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
    results = run_eval(str(model_dir), config.eval.tasks, iter_dir / "eval", config.eval.options)
    return {result.task: result.main_score.model_dump() for result in results}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
        validation=tuples(valid_pairs) if config.validate_on == "mined" and len(valid_pairs) >= 2 else None,
    )
    shutil.rmtree(iter_dir / "checkpoints", ignore_errors=True)
    return Path(trained)
