"""Training steps/s with polyret's hybrid sampler vs sentence-transformers' default sampler (target ratio ≥ 0.98).

Same model, same texts, same batch size, same loss (MultipleNegativesRankingLoss, scale 20), same max length:

- **hybrid**: :func:`polyret.train.contrastive.train_on_pairs` (HybridBatchSampler + TripletCollator +
  PolyretTrainer), i.e. the real training path;
- **default**: ``SentenceTransformerTrainer`` with ``BatchSamplers.BATCH_SAMPLER`` on a plain ``Dataset`` of the
  same (query, passage) pairs, mono and cross-lingual, prefixes applied.

Steps/s is timed from the end of step ``--warmup`` to the end of the last step (start-up, the first batches and the
final save are excluded); runs alternate (hybrid, default, default, hybrid, ...) and the best of ``--rounds`` is
kept for each. Data: MLQA-R from the shared benchmark data when present, else synthetic items.

    .venv/bin/python benchmarks/sampler_overhead.py                       # embedded e5-small when prepared
    .venv/bin/python benchmarks/sampler_overhead.py --model tiny --steps 40 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.steps = warmup, None, None, 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        elif state.global_step > self.warmup:
            self.end, self.steps = time.perf_counter(), state.global_step - self.warmup

    @property
    def steps_per_s(self) -> float:
        return self.steps / (self.end - self.start)


def load_items(n: int):
    from polyret.data.pairs import LangEntry, TrainingSet, TrainItem, from_lareqa
    from polyret.errors import PolyretError

    try:
        data = from_lareqa("mlqa-r")
        data.items = data.items[:n]
        return data, "mlqa-r"
    except PolyretError:
        langs = ("en", "de", "es", "sw")
        items = [
            TrainItem(
                str(i),
                {lang: LangEntry(f"question {i} in {lang} " * 3, f"passage {i} in {lang} " * 20) for lang in langs},
            )
            for i in range(n)
        ]
        return TrainingSet("synthetic", items), "synthetic"


def tiny_model(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import build_tiny_model

    return build_tiny_model(root / "tiny", hidden=128, layers=4)


def run_hybrid(model: Path, data, args, workdir: Path) -> float:
    from polyret.train.contrastive import train_on_pairs

    timer = StepTimer(args.warmup)
    config = {
        "method": "hybrid",
        "batch_size": args.batch_size,
        "max_steps": args.steps,
        "seed": 0,
        "validation": {"fraction": 0.0},
        "logging_steps": 10_000,
        "save_steps": 10_000,
        "model": {
            "query_prefix": "query: ",
            "passage_prefix": "passage: ",
            "max_query_length": args.max_length,
            "max_passage_length": args.max_length,
        },
    }
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    train_on_pairs(model, data, config, run_dir, callbacks=[timer])
    shutil.rmtree(run_dir, ignore_errors=True)
    return timer.steps_per_s


def run_default(model_path: Path, data, args, workdir: Path) -> float:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    pairs = [*data.mono_pairs(), *data.cross_pairs()]
    random.Random(0).shuffle(pairs)
    dataset = Dataset.from_dict(
        {"anchor": ["query: " + p.query for p in pairs], "positive": ["passage: " + p.passage for p in pairs]}
    )
    model = SentenceTransformer(str(model_path), device="cpu")
    model.max_seq_length = args.max_length
    timer = StepTimer(args.warmup)
    training_args = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(dir=workdir),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=3e-5,
        warmup_steps=0.1,
        seed=0,
        save_strategy="no",
        logging_steps=10_000,
        report_to="none",
        batch_sampler=BatchSamplers.BATCH_SAMPLER,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model, scale=20.0),
        callbacks=[timer],
    )
    trainer.train()
    return timer.steps_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default="multilingual-e5-small",
        help="embedded name, folder, or 'tiny' (random 4-layer BERT: the worst case for overhead)",
    )
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="polyret-sampler-bench-"))
    try:
        if args.model == "tiny":
            model = tiny_model(workdir)
        else:
            from polyret.encode.models import resolve_model

            model = Path(resolve_model(args.model))
        data, source = load_items(args.items)
        results: dict[str, list[float]] = {"hybrid": [], "default": []}
        for round_ in range(args.rounds):
            order = ["hybrid", "default"] if round_ % 2 == 0 else ["default", "hybrid"]
            for name in order:
                run = run_hybrid if name == "hybrid" else run_default
                results[name].append(run(model, data, args, workdir))
                print(f"round {round_ + 1} {name}: {results[name][-1]:.3f} steps/s", file=sys.stderr)
        best = {name: max(values) for name, values in results.items()}
        report = {
            "model": str(args.model),
            "data": source,
            "items": len(data),
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "steps": args.steps,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "threads": torch.get_num_threads(),
            "steps_per_s": results,
            "best_steps_per_s": best,
            "ratio_hybrid_over_default": best["hybrid"] / best["default"],
            "target": 0.98,
            "command": " ".join(["python", *sys.argv]),
        }
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
