"""Targeted lexical injection (TLI, arXiv 2506.15415): align one language's words with English at an early layer.

Use this arm to test whether word-level alignment of a low-resource language, injected with LoRA into the first
layers, transfers to sentence retrieval. :func:`run_tli` splits a bilingual dictionary into train and held-out control
pairs, trains LoRA adapters on the query/value projections of the layers below the loss layer ``k`` with a triplet
loss (hardest in-batch negative) on the mean token embedding of each word at ``hidden_states[k]``, then writes:

- ``word_similarity.json``: per-pair cosines at layer ``k`` before and after, for train and control pairs, with a
  Wilcoxon signed-rank and a paired t-test (:func:`measure_word_similarity`, :func:`paired_comparison`), plus the
  shift-free ``gap`` and word-translation ``top1_accuracy`` (:func:`pair_scores`);
- ``adapter/``: the LoRA adapters (peft format); ``model/``: the merged sentence-transformers model, evaluable with
  ``polyret eval --model RUN_DIR/model``;
- ``pairs/train.tsv``, ``pairs/control.tsv``, ``config.json``, ``train_log.json``.

The paper's settings are the defaults (LoRA r 16, alpha 32 on query/value, lr 2e-4, batch 8, 5 epochs, margin 0.4,
layer 2, 623 train and 63 control Swahili–English pairs); the paper's backbone was an 8B decoder LLM in 4 bit, here
any encoder polyret loads works (the embedded multilingual-e5-small by default).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polyret.data.words import WordPair, load_word_pairs, read_word_pairs_tsv, split_word_pairs, write_word_pairs_tsv
from polyret.encode.models import resolve_model, weights_readable
from polyret.errors import ConfigError, ModelError
from polyret.io import atomic_write, read_json, write_dir_atomically, write_json
from polyret.precision import autocast, resolve_precision
from polyret.train.tli_config import TliConfig, parse_tli_config

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
MAX_WORD_TOKENS = 32


def default_target_modules(model_type: str) -> list[str]:
    """LoRA targets for a model type: the attention query and value projections (``query``/``value`` in BERT and
    XLM-R, ``q_proj``/``v_proj`` in LLaMA), from peft's own table."""
    # peft loads only when this runs, not when tli is imported
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    try:
        return list(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING[model_type])
    except KeyError as err:
        raise ConfigError(
            f"no default LoRA target modules for model type {model_type!r}; set target_modules "
            "in the TLI config (the attention query and value projection names)"
        ) from err


def word_embeddings(model: SentenceTransformer, words: Sequence[str], layer: int) -> torch.Tensor:
    """Mean of each word's token vectors at ``hidden_states[layer]``, special tokens and padding excluded.

    Words are fed bare (no ``query:`` prefix) so that only the word's own tokens are averaged.
    """
    # torch loads only when this runs, not when tli is imported
    import torch

    transformer = model[0]
    batch = transformer.tokenizer(
        list(words),
        padding=True,
        truncation=True,
        max_length=MAX_WORD_TOKENS,
        return_special_tokens_mask=True,
        return_tensors="pt",
    )
    special = batch.pop("special_tokens_mask").bool()
    batch = batch.to(model.device)
    hidden = transformer.auto_model(**batch, output_hidden_states=True).hidden_states[layer]
    keep = (batch["attention_mask"].bool() & ~special.to(model.device)).unsqueeze(-1).to(hidden.dtype)
    return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=torch.finfo(hidden.dtype).tiny)


def hardest_negative_triplet_loss(
    anchors: torch.Tensor, positives: torch.Tensor, targets: Sequence[str], margin: float
) -> torch.Tensor:
    """Triplet margin loss on cosine distance; each anchor's negative is the in-batch positive closest to it.

    Positives with the same target text as the anchor's own are not negatives; anchors left with no negative drop out.
    """
    # torch loads only when this runs, not when tli is imported
    import torch
    import torch.nn.functional as F

    similarity = F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T
    same_target = torch.tensor([[a == b for b in targets] for a in targets], device=similarity.device)
    hardest = similarity.masked_fill(same_target, -math.inf).argmax(dim=1)
    has_negative = ~same_target.all(dim=1)
    if not has_negative.any():
        return anchors.sum() * 0.0
    return F.triplet_margin_with_distance_loss(
        anchors[has_negative],
        positives[has_negative],
        positives[hardest[has_negative]],
        distance_function=lambda x, y: 1.0 - F.cosine_similarity(x, y),
        margin=margin,
    )


def word_similarity_matrix(
    model: SentenceTransformer | str | Path, pairs: Sequence[WordPair], layer: int, batch_size: int = 64
) -> np.ndarray:
    """``[i, j]`` = cosine between source word ``i`` and target word ``j`` (:func:`word_embeddings` at ``layer``)."""
    # torch loads only when this runs, not when tli is imported
    import torch
    import torch.nn.functional as F

    if isinstance(model, (str, Path)):
        model = _load_model(str(model), device=None)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        sides = [
            torch.cat(
                [word_embeddings(model, words[i : i + batch_size], layer) for i in range(0, len(words), batch_size)]
            )
            for words in ([pair.source for pair in pairs], [pair.target for pair in pairs])
        ]
    model.train(was_training)
    sources, targets = (F.normalize(side.float(), dim=-1) for side in sides)
    return (sources @ targets.T).cpu().numpy()


def measure_word_similarity(
    model: SentenceTransformer | str | Path, pairs: Sequence[WordPair], layer: int, batch_size: int = 64
) -> np.ndarray:
    """Cosine between each pair's source and target word embeddings at ``layer`` (the paper's measure)."""
    return np.diag(word_similarity_matrix(model, pairs, layer, batch_size)).copy()


def pair_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pair scores from a :func:`word_similarity_matrix`: ``cosine`` (the diagonal), ``gap`` (cosine minus the
    source's mean cosine to the set's other targets, which a global shift of all cosines leaves unchanged) and
    ``top1`` (1.0 when the source's nearest target in the set is its translation; ties go to the lowest index)."""
    n = len(matrix)
    cosine = np.diag(matrix).astype(np.float64)
    others = (matrix.sum(axis=1) - cosine) / max(n - 1, 1)
    return {"cosine": cosine, "gap": cosine - others, "top1": (matrix.argmax(axis=1) == np.arange(n)).astype(float)}


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def paired_comparison(before: np.ndarray, after: np.ndarray) -> dict[str, object]:
    """Means before/after and two-sided paired tests (Wilcoxon signed-rank, paired t) of after vs before.

    p-values are None where a test is undefined (fewer than 2 pairs, or no pair changed).
    """
    # scipy loads only when this runs, not when tli is imported
    from scipy import stats

    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    delta = after - before
    testable = len(delta) >= 2 and bool(np.any(delta != 0))
    wilcoxon = stats.wilcoxon(after, before) if testable else None
    ttest = stats.ttest_rel(after, before) if testable else None
    return {
        "n": len(delta),
        "mean_before": float(before.mean()) if len(before) else None,
        "mean_after": float(after.mean()) if len(after) else None,
        "mean_delta": float(delta.mean()) if len(delta) else None,
        "share_improved": float((delta > 0).mean()) if len(delta) else None,
        "wilcoxon": {"statistic": _finite_or_none(wilcoxon.statistic), "p_value": _finite_or_none(wilcoxon.pvalue)}
        if wilcoxon
        else None,
        "ttest_rel": {"statistic": _finite_or_none(ttest.statistic), "p_value": _finite_or_none(ttest.pvalue)}
        if ttest
        else None,
    }


def _load_model(name: str, device: str | None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer  # heavy: loads when TLI trains

    location = resolve_model(name)
    try:
        with weights_readable(location):
            return SentenceTransformer(str(location), device=device)
    except OSError as err:
        raise ModelError(f"cannot load model {name!r}: {err}") from err


def _device(config: TliConfig) -> str:
    # torch loads only when this runs, not when tli is imported
    import torch

    return config.device or ("cuda" if torch.cuda.is_available() else "cpu")


def add_lora(model: SentenceTransformer, config: TliConfig) -> PeftModel:
    """Inject LoRA adapters into ``config.adapted_layers`` x ``target_modules`` of the model's transformer, in place.

    Everything else is frozen; the returned PeftModel wraps the same module objects the SentenceTransformer uses.
    """
    # peft loads only when this runs, not when tli is imported
    from peft import LoraConfig, get_peft_model

    backbone = model[0].auto_model
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        bias="none",
        target_modules=config.target_modules or default_target_modules(backbone.config.model_type),
        layers_to_transform=config.adapted_layers,
    )
    return get_peft_model(backbone, lora)


def _split(config: TliConfig, run_dir: Path) -> tuple[tuple[WordPair, ...], tuple[WordPair, ...]]:
    """The run's train/control pairs: read back on resume, so a changed dictionary cannot move words."""
    train_path, control_path = run_dir / "pairs" / "train.tsv", run_dir / "pairs" / "control.tsv"
    if train_path.exists() and control_path.exists():
        return tuple(read_word_pairs_tsv(train_path)), tuple(read_word_pairs_tsv(control_path))
    pairs = load_word_pairs(config.dictionary, config.language, config.target_language)
    split = split_word_pairs(pairs, n_control=config.n_control, n_train=config.n_train, seed=config.seed)
    write_word_pairs_tsv(train_path, split.train)
    write_word_pairs_tsv(control_path, split.control)
    return split.train, split.control


def run_tli(config: TliConfig | Mapping[str, Any], run_dir: Path, resume: bool) -> Path:
    """Train TLI adapters, measure word similarity before/after, write the merged model; returns its directory.

    ``config`` is a :class:`TliConfig` or its mapping (as ``polyret train`` reads it from YAML). ``resume=True``
    continues from the last finished epoch (or returns at once when the run is complete); without it an existing run
    in ``run_dir`` is an error, so finished work is never overwritten by accident.
    """
    # torch loads only when this runs, not when tli is imported
    import torch

    config = parse_tli_config(config)
    run_dir = Path(run_dir)
    model_dir, report_path = run_dir / "model", run_dir / "word_similarity.json"
    if resume and model_dir.is_dir() and report_path.exists():
        return model_dir
    if not resume and ((run_dir / CHECKPOINT).exists() or model_dir.exists()):
        raise ConfigError(f"{run_dir} already holds a TLI run; resume it (--resume) or choose a new run directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", config.model_dump(mode="json"))
    train_pairs, control_pairs = _split(config, run_dir)
    sets = (("train", train_pairs), ("control", control_pairs))

    model = _load_model(config.model, device=_device(config))
    n_layers = model[0].auto_model.config.get_text_config().num_hidden_layers
    if config.loss_layer > n_layers:
        raise ConfigError(f"loss_layer {config.loss_layer} exceeds the {n_layers} layers of {config.model}")
    before_path = run_dir / "word_similarity_before.json"
    if before_path.exists():
        before = {
            name: {key: np.asarray(v) for key, v in scores.items()} for name, scores in read_json(before_path).items()
        }
    else:
        before = _scores(model, sets, config.loss_layer)
        write_json(before_path, {name: {k: v.tolist() for k, v in scores.items()} for name, scores in before.items()})

    torch.manual_seed(config.seed)  # LoRA's A matrices are drawn from the global generator
    peft_model = add_lora(model, config)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=config.lr)
    epoch_losses = _train(model, peft_model, optimizer, train_pairs, config, run_dir, resume)

    after = _scores(model, sets, config.loss_layer)
    _save_adapter_and_model(model, peft_model, run_dir)
    write_json(
        run_dir / "train_log.json",
        {"epoch_mean_loss": epoch_losses, "precision": resolve_precision(config.precision, str(model.device))},
    )
    write_json(
        report_path,
        {
            "model": config.model,
            "language": config.language,
            "target_language": config.target_language,
            "layer": config.loss_layer,
            "adapted_layers": config.adapted_layers,
            **{name: _set_report(pairs, before[name], after[name]) for name, pairs in sets},
        },
    )
    return model_dir


def _scores(
    model: SentenceTransformer, sets: Sequence[tuple[str, Sequence[WordPair]]], layer: int
) -> dict[str, dict[str, np.ndarray]]:
    return {name: pair_scores(word_similarity_matrix(model, pairs, layer)) for name, pairs in sets}


def _set_report(
    pairs: Sequence[WordPair], before: dict[str, np.ndarray], after: dict[str, np.ndarray]
) -> dict[str, object]:
    """The paper's paired comparison of pair cosines, plus the shift-free gap and word-translation top-1."""
    return {
        **paired_comparison(before["cosine"], after["cosine"]),
        "gap": paired_comparison(before["gap"], after["gap"]),
        "top1_accuracy": {"before": float(before["top1"].mean()), "after": float(after["top1"].mean())},
        "pairs": [
            {
                "source": pair.source,
                "target": pair.target,
                "before": float(b),
                "after": float(a),
                "gap_before": float(gb),
                "gap_after": float(ga),
            }
            for pair, b, a, gb, ga in zip(
                pairs, before["cosine"], after["cosine"], before["gap"], after["gap"], strict=True
            )
        ],
    }


def _train(
    model: SentenceTransformer,
    peft_model: PeftModel,
    optimizer: torch.optim.Optimizer,
    pairs: Sequence[WordPair],
    config: TliConfig,
    run_dir: Path,
    resume: bool,
) -> list[float]:
    """Epochs of hardest-negative triplet steps, checkpointed (adapters + optimizer) after every epoch.

    A plain loop rather than the sentence-transformers trainer: its losses see only the pooled output of the last
    layer, while TLI's loss reads token vectors of an inner layer; ~80 steps per epoch need no more machinery.
    """
    # peft, torch load only when this runs, not when tli is imported
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import get_linear_schedule_with_warmup

    precision = resolve_precision(config.precision, str(model.device))
    checkpoint_path = run_dir / CHECKPOINT
    epoch_losses: list[float] = []
    total_steps = config.epochs * -(-len(pairs) // config.batch_size)
    schedule = get_linear_schedule_with_warmup(optimizer, min(config.warmup_steps, total_steps), total_steps)
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=model.device, weights_only=True)
        set_peft_model_state_dict(peft_model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        epoch_losses = list(state["epoch_losses"])
    peft_model.train()
    for epoch in range(len(epoch_losses), config.epochs):
        # Seeding per epoch makes a resumed run draw the same order and dropout masks as an uninterrupted one.
        torch.manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(pairs)).tolist()
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = [pairs[i] for i in order[start : start + config.batch_size]]
            with autocast(precision, str(model.device)):
                anchors = word_embeddings(model, [pair.source for pair in batch], config.loss_layer)
                positives = word_embeddings(model, [pair.target for pair in batch], config.loss_layer)
            anchors, positives = anchors.float(), positives.float()
            loss = hardest_negative_triplet_loss(anchors, positives, [pair.target for pair in batch], config.margin)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
        logger.info("TLI epoch %d/%d: mean triplet loss %.4f", epoch + 1, config.epochs, epoch_losses[-1])
        with atomic_write(checkpoint_path, "wb", encoding=None) as handle:
            torch.save(
                {
                    "adapter": get_peft_model_state_dict(peft_model),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "epoch_losses": epoch_losses,
                },
                handle,
            )
    peft_model.eval()
    return epoch_losses


def _save_adapter_and_model(model: SentenceTransformer, peft_model: PeftModel, run_dir: Path) -> None:
    """Save the adapters, then merge them into the backbone and save the sentence-transformers model."""
    write_dir_atomically(run_dir / "adapter", lambda folder: peft_model.save_pretrained(str(folder)))
    model[0].model = peft_model.merge_and_unload()
    write_dir_atomically(run_dir / "model", lambda folder: model.save(str(folder)))
