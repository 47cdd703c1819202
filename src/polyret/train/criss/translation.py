"""CRISS translation fine-tuning (PROTOCOLS §2.3): one iteration's ``Seq2SeqTrainer`` run on the mined pairs."""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polyret.encode.models import weights_readable
from polyret.encode.seq2seq import LanguageTokens, ensure_language_tags, read_sidecar, write_sidecar
from polyret.io import write_dir_atomically, write_json
from polyret.precision import trainer_precision_flags
from polyret.train.criss.config import CrissConfig, CrissTraining
from polyret.train.criss.mining import MinedPair
from polyret.train.runs import last_checkpoint

log = logging.getLogger(__name__)


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
    # heavy: transformers loads only when a CRISS iteration trains
    from transformers import Seq2SeqTrainer

    train_cfg = config.train
    languages = sorted({lang for pair in [*train_pairs, *valid_pairs] for lang in (pair.src_lang, pair.tgt_lang)})
    model, tokenizer, marks = _load_translator(init, train_cfg, languages)
    sidecar = read_sidecar(init)
    prefix = sidecar.get("query_prefix", "")
    train_set = _examples(train_pairs, marks, prefix, train_cfg)
    valid_set = _examples(valid_pairs, marks, prefix, train_cfg) if valid_pairs else None
    steps = _update_steps(len(train_set), train_cfg)
    trainer_dir = iter_dir / "trainer"
    eval_steps = train_cfg.eval_steps or train_cfg.save_steps
    trainer = Seq2SeqTrainer(
        model=model,
        args=_training_arguments(trainer_dir, config, steps, eval_steps, validate=valid_set is not None),
        train_dataset=train_set,
        eval_dataset=valid_set,
        data_collator=_collator(tokenizer, model),
        processing_class=tokenizer,
    )
    checkpoint = last_checkpoint(trainer_dir) if resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    if valid_set is not None and steps % eval_steps:  # the final validation loss, unless the last step had one
        trainer.evaluate()
    log_history = trainer.state.log_history
    _restore_dropout(model.config, init)

    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        # no early stopping here: the last update's weights are the ones kept
        kept = {"kept_step": trainer.state.global_step}
        write_sidecar(folder, {**sidecar, "trained_from": str(init), "method": "criss", **kept})

    target = write_dir_atomically(iter_dir / "model", save)
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


def _load_translator(init: Path, train: CrissTraining, languages: Sequence[str]) -> tuple[Any, Any, LanguageTokens]:
    """The model (fp32, training dropout), its tokenizer and the language marks, tag tokens added where needed."""
    # heavy: torch and transformers load only when a CRISS iteration trains
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    model_config = AutoConfig.from_pretrained(str(init))
    _dropout_overrides(model_config, train)
    tokenizer = AutoTokenizer.from_pretrained(str(init))
    with weights_readable(init):
        model = AutoModelForSeq2SeqLM.from_pretrained(str(init), config=model_config, dtype=torch.float32)
    marks = LanguageTokens(tokenizer, model_config.model_type)
    if marks.scheme == "tag":
        ensure_language_tags(model, tokenizer, languages)
        marks = LanguageTokens(tokenizer, model_config.model_type)
    return model, tokenizer, marks


def _collator(tokenizer: Any, model: Any) -> Any:
    """``DataCollatorForSeq2Seq``, with decoder inputs for every family: the Trainer takes ``labels`` away from the
    model when it smooths them, so the decoder input must come from the batch, and the collator builds it only
    through ``prepare_decoder_input_ids_from_labels``, which M2M100/NLLB lack (mBART, (m)T5 have it)."""
    # heavy: transformers loads only when a CRISS iteration trains
    from transformers import DataCollatorForSeq2Seq
    from transformers.models.m2m_100.modeling_m2m_100 import shift_tokens_right

    collate = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    if hasattr(model, "prepare_decoder_input_ids_from_labels"):
        return collate
    pad, start = model.config.pad_token_id, model.config.decoder_start_token_id

    def with_decoder_inputs(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate(features)
        batch["decoder_input_ids"] = shift_tokens_right(batch["labels"], pad, start)  # what the model's own shift does
        return batch

    return with_decoder_inputs


def _examples(pairs: Sequence[MinedPair], marks: LanguageTokens, prefix: str, train: CrissTraining) -> Any:
    """Both directions of every pair as tokenized (source, target-language-opened label) rows."""
    # heavy: datasets loads only when a CRISS iteration trains
    from datasets import Dataset

    directed: dict[str, list[tuple[str, str]]] = {}
    for pair in pairs:  # both directions
        directed.setdefault(pair.tgt_lang, []).append((pair.src, pair.tgt))
        directed.setdefault(pair.src_lang, []).append((pair.tgt, pair.src))
    rows: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for target_lang, items in sorted(directed.items()):
        sources = marks.source_ids([prefix + src for src, _ in items], train.max_source_length)
        labels = marks.label_ids([tgt for _, tgt in items], target_lang, train.max_target_length)
        for source, label in zip(sources, labels, strict=True):
            rows["input_ids"].append(source)
            rows["attention_mask"].append([1] * len(source))
            rows["labels"].append(label)
    return Dataset.from_dict(rows)


def _training_arguments(trainer_dir: Path, config: CrissConfig, steps: int, eval_steps: int, *, validate: bool) -> Any:
    """``Seq2SeqTrainingArguments`` of one iteration (warmup capped at a tenth of a shorter run)."""
    # heavy: torch and transformers load only when a CRISS iteration trains
    import torch
    from transformers import Seq2SeqTrainingArguments

    train_cfg = config.train
    warmup = train_cfg.warmup_steps
    if warmup >= steps:
        warmup = max(0, steps // 10)
        log.info("warmup_steps %d >= %d updates: using %d", train_cfg.warmup_steps, steps, warmup)
    return Seq2SeqTrainingArguments(
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
        eval_strategy="steps" if validate else "no",
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


def _restore_dropout(model_config: Any, init: Path) -> None:
    """Save the inference-time dropout of the initial model (training dropout is a training-run setting)."""
    # heavy: transformers loads only when a CRISS iteration trains
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
