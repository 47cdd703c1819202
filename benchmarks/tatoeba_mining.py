"""Mining-quality bar (issue 5): mine shuffled Tatoeba pairs back with the margin miner and score F1 against gold.

For each language, both sides of the XTREME Tatoeba pair are shuffled independently (seeded), deduplicated and
embedded with the query prefix; :func:`polyret.mining.margin.mine_pairs` mines them with k 4, ratio margin,
greedy one-to-one, at the CRISS threshold (1.06 by default) and with no threshold (every one-to-one pair). The best
threshold in hindsight (oracle) is reported too: a model's margin scale decides what a threshold means. Precision,
recall and F1 are on text pairs against the gold ``(xx[i], en[i])`` set
(:func:`polyret.eval.metrics.precision_recall_f1`). The summary gives mean F1 over the languages that have 1,000
pairs (28 of the 36; target >= 0.85) and over the low-resource ones.

    .venv/bin/python benchmarks/tatoeba_mining.py [--languages de zh af eu et ur] [--output results.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from polyret.data.languages import TATOEBA_XTREME36, get_language
from polyret.data.tatoeba import read_tatoeba_pair
from polyret.encode.encoder import load_encoder
from polyret.eval.metrics import best_f1_threshold, precision_recall_f1
from polyret.io import write_json
from polyret.mining.margin import dedupe, mine_pairs


def mine_language(encoder, lang: str, *, threshold: float, seed: int, batch_size: int) -> dict[str, float]:
    pair = read_tatoeba_pair(lang)
    rng = np.random.default_rng(seed)
    xx = [pair.xx[i] for i in rng.permutation(len(pair))]
    en = [pair.en[i] for i in rng.permutation(len(pair))]
    xx_side, en_side = dedupe(xx), dedupe(en)
    started = time.perf_counter()
    vectors = [
        encoder.encode(side.unique, prefix=encoder.query_prefix, batch_size=batch_size, show_progress=False)
        for side in (xx_side, en_side)
    ]
    encode_s = time.perf_counter() - started
    gold = set(zip(pair.xx, pair.en, strict=True))
    row: dict[str, float] = {"n": float(len(pair)), "encode_s": round(encode_s, 1)}
    for name, cut in (("t", threshold), ("all", None)):
        started = time.perf_counter()
        mined = mine_pairs(vectors[0], vectors[1], k=4, margin="ratio", threshold=cut)
        row[f"mine_s.{name}"] = round(time.perf_counter() - started, 3)
        predicted = {
            (xx_side.unique[i], en_side.unique[j])
            for i, j in zip(mined.src_index.tolist(), mined.tgt_index.tolist(), strict=True)
        }
        precision, recall, f1 = precision_recall_f1(predicted, gold)
        row.update(
            {
                f"precision.{name}": precision,
                f"recall.{name}": recall,
                f"f1.{name}": f1,
                f"pairs.{name}": float(len(predicted)),
            }
        )
        if cut is None:  # the best threshold in hindsight, to calibrate this model's margins
            correct = np.array(
                [
                    (xx_side.unique[i], en_side.unique[j]) in gold
                    for i, j in zip(mined.src_index.tolist(), mined.tgt_index.tolist(), strict=True)
                ]
            )
            row["threshold.oracle"], row["f1.oracle"] = best_f1_threshold(mined.score, correct, len(gold))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--languages", nargs="+", default=list(TATOEBA_XTREME36))
    parser.add_argument("--threshold", type=float, default=1.06)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    encoder = load_encoder(args.model)
    rows: dict[str, dict[str, float]] = {}
    print(
        f"{'lang':>4} {'n':>5} {'low':>3}  P@t    R@t    F1@t  | F1(none) | F1(oracle) at   | pairs@t encode_s",
        flush=True,
    )
    for lang in args.languages:
        row = rows[lang] = mine_language(
            encoder, lang, threshold=args.threshold, seed=args.seed, batch_size=args.batch_size
        )
        low = "yes" if get_language(lang).low_resource else ""
        print(
            f"{lang:>4} {int(row['n']):>5} {low:>3}  {row['precision.t']:.3f}  {row['recall.t']:.3f}  "
            f"{row['f1.t']:.3f} | {row['f1.all']:.3f}    | {row['f1.oracle']:.3f} {row['threshold.oracle']:.4f} | "
            f"{int(row['pairs.t']):>5} {row['encode_s']:>7.1f}",
            flush=True,
        )
    full = [lang for lang in rows if rows[lang]["n"] == 1000]
    low = [lang for lang in rows if get_language(lang).low_resource]
    summary = {}
    for name, group in (("1000-pair languages", full), ("low-resource", low), ("all measured", list(rows))):
        if group:
            summary[name] = {"languages": group}
            for key in ("f1.t", "f1.all", "f1.oracle", "threshold.oracle"):
                summary[name][key] = float(np.mean([rows[g][key] for g in group]))
            print(
                f"mean over {len(group)} {name}: F1 {summary[name]['f1.t']:.3f} at threshold {args.threshold}, "
                f"{summary[name]['f1.all']:.3f} with no threshold, {summary[name]['f1.oracle']:.3f} at each "
                f"language's best threshold (mean {summary[name]['threshold.oracle']:.4f})",
                flush=True,
            )
    if args.output:
        write_json(
            args.output,
            {
                "model": encoder.describe(),
                "threshold": args.threshold,
                "seed": args.seed,
                "languages": rows,
                "summary": summary,
            },
        )


if __name__ == "__main__":
    main()
