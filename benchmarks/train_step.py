"""Contrastive training-step time under bf16 autocast vs fp32, and the loss curves of both.

    .venv/bin/python benchmarks/train_step.py                            # 30 steps, 32 pairs, length 64
    .venv/bin/python benchmarks/train_step.py --steps 10 --batch-size 16  # quicker
    .venv/bin/python benchmarks/train_step.py --variants fp32,bf16,fp32_dynamic,fp32_1thread

The step is the one polyret's contrastive trainer takes: the embedded e5-small, sentence-transformers'
``MultipleNegativesRankingLoss`` at scale 20 (τ 0.05), AdamW (lr 3e-5, weight decay 0.01), gradient clipping at 1.0.
Data: MLQA-R question → answer-sentence pairs (``../shared/data``), with the ``query: `` / ``passage: `` prefixes,
every text padded or cut to exactly ``--length`` tokens so each step costs the same. Each variant trains its own copy
of the model from the same weights, seed and batches; the variants take their steps in turn (step 1 of each, then
step 2, ...), so a busy machine slows them alike. Variants:

* ``fp32``, ``bf16`` (``torch.autocast`` bf16 around the forward pass: what ``precision: bf16`` does in the trainer);
* ``fp32_dynamic``: fp32 with each batch padded to its longest text (what polyret's collator does) instead of
  ``--length``: the saving sequence packing / length bucketing would bring;
* ``fp32_1thread``: fp32 on one thread (``torch.set_num_threads(1)``) instead of all cores;
* ``fp32_frozen_embeddings``: fp32 with the word-embedding matrix frozen (for e5-small 96M of its 118M parameters:
  the optimizer then updates a fifth of the weights; a change of method, not only of speed);
* ``fp32_fused_adamw``: fp32 with ``torch.optim.AdamW(fused=True)`` (one fused kernel over all parameters).

Matching loss curves: bf16 rounds every matmul input to 8 mantissa bits (relative error ~2^-9), so per-step losses
differ by a few thousandths at first and the difference may grow with the updates; the tolerance below is 0.05 in
absolute loss per step (about 1.5% of the starting loss, ln 32 ≈ 3.47 for 32 pairs) and 0.02 for the mean over
the last 10 steps, far below the step-to-step swing of the curve itself. The LAST line is one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

VARIANTS = ("fp32", "bf16", "fp32_dynamic", "fp32_1thread", "fp32_frozen_embeddings", "fp32_fused_adamw")
STEP_TOLERANCE = 0.05
TAIL_TOLERANCE = 0.02


def mlqa_pairs(n: int) -> list[tuple[str, str]]:
    from polyret.data.pairs import from_lareqa

    data = from_lareqa("mlqa-r", None, None, candidate_text="sentence")
    pairs = []
    for item in data.items:
        for lang in sorted(item.langs):
            entry = item.langs[lang]
            pairs.append((entry.query, entry.passage))
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} MLQA-R pairs for {n} needed")
    import random

    random.Random(0).shuffle(pairs)
    return pairs[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--variants", default="fp32,bf16", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not set(variants) <= set(VARIANTS) or "fp32" not in variants:
        parser.error(f"variants must include fp32 and come from {', '.join(VARIANTS)}")

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from polyret.encode.models import resolve_model
    from polyret.precision import autocast, cpu_has_native_bf16

    pairs = mlqa_pairs(args.steps * args.batch_size)
    torch.manual_seed(args.seed)
    base = SentenceTransformer(str(resolve_model(args.model)), device="cpu")
    threads = torch.get_num_threads()
    states = {}
    for name in variants:
        model = copy.deepcopy(base).train()
        if name == "fp32_frozen_embeddings":
            model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
        loss = MultipleNegativesRankingLoss(model, scale=20.0)
        trainable = [p for p in model.parameters() if p.requires_grad]
        fused = {"fused": True} if name == "fp32_fused_adamw" else {}
        optimizer = torch.optim.AdamW(trainable, lr=3e-5, weight_decay=0.01, **fused)
        states[name] = (model, loss, optimizer)
    del base

    def features(model, texts, dynamic):
        padding = "longest" if dynamic else "max_length"
        batch = model.tokenizer(texts, padding=padding, truncation=True, max_length=args.length, return_tensors="pt")
        return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}

    def step(name, batch):
        model, loss_fn, optimizer = states[name]
        torch.set_num_threads(1 if name == "fp32_1thread" else threads)
        torch.manual_seed(args.seed * 1000 + len(curves[name]))  # same dropout masks in every variant
        dynamic = name == "fp32_dynamic"
        anchors = features(model, ["query: " + q for q, _ in batch], dynamic)
        positives = features(model, ["passage: " + p for _, p in batch], dynamic)
        started = time.perf_counter()
        with autocast("bf16" if name == "bf16" else "fp32", "cpu"):
            loss = loss_fn([anchors, positives], None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times[name].append(time.perf_counter() - started)
        curves[name].append(round(float(loss.detach()), 5))

    curves: dict[str, list[float]] = {name: [] for name in variants}
    times: dict[str, list[float]] = {name: [] for name in variants}
    load_start = os.getloadavg()[0]
    for index in range(args.steps):
        batch = pairs[index * args.batch_size : (index + 1) * args.batch_size]
        order = variants[index % len(variants) :] + variants[: index % len(variants)]
        for name in order:
            step(name, batch)
        print(
            f"step {index + 1:>3}: "
            + ", ".join(f"{name} {times[name][-1]:6.2f} s loss {curves[name][-1]:.4f}" for name in variants),
            flush=True,
        )
    torch.set_num_threads(threads)

    def median(values):
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    summary: dict = {
        "steps": args.steps,
        "pairs_per_step": args.batch_size,
        "length": args.length,
        "median_step_s": {name: round(median(times[name]), 3) for name in variants},
        "loss_curves": curves,
        "torch_threads": threads,
        "cpu_native_bf16": cpu_has_native_bf16(),
        "loadavg_1min_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    for name in variants:
        if name != "fp32":
            # ratio of medians: a step slowed by another process's burst does not move it
            summary[f"ratio_{name}_over_fp32_step"] = round(median(times["fp32"]) / median(times[name]), 3)
    if "bf16" in variants:
        differences = [abs(a - b) for a, b in zip(curves["fp32"], curves["bf16"], strict=True)]
        tail = min(10, args.steps)
        tail_gap = abs(sum(curves["fp32"][-tail:]) / tail - sum(curves["bf16"][-tail:]) / tail)
        summary["bf16_loss_max_abs_difference"] = round(max(differences), 5)
        summary["bf16_loss_tail_mean_difference"] = round(tail_gap, 5)
        summary["bf16_loss_matches"] = max(differences) <= STEP_TOLERANCE and tail_gap <= TAIL_TOLERANCE
        summary["tolerance"] = {"per_step_abs": STEP_TOLERANCE, f"mean_of_last_{tail}_abs": TAIL_TOLERANCE}
    print(json.dumps(summary), flush=True)  # the last line: one JSON object
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
