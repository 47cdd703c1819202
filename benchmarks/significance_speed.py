"""Time of the item- and seed-level tests at study scale: XQuAD-R's 1,190 items x 11 translations, 11 arms.

Each arm (3 seeds) is compared with a deterministic reference on 13,090 queries clustered into 1,190 items, with
10,000 resamples (two-level bootstrap + sign flips), pooled and as a macro test over the 11 languages; the per-query
test of the same values (one level, no items) is timed beside it. Prints seconds and the ratio clustered/per-query.

    .venv/bin/python benchmarks/significance_speed.py
    .venv/bin/python benchmarks/significance_speed.py --arms 4 --resamples 2000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from polyret.report.significance import Arm, PairedSample, clustered_comparison, paired_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1190)
    parser.add_argument("--languages", type=int, default=11)
    parser.add_argument("--arms", type=int, default=11)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_queries = args.items * args.languages
    items = np.tile(np.arange(args.items), args.languages)  # one translation of every question per language
    languages = np.repeat(np.arange(args.languages), args.items)
    reference = Arm(rng.random((1, n_queries)), trained=False)
    arms = [Arm(rng.random((args.seeds, n_queries)), trained=True) for _ in range(args.arms)]

    def timed(run) -> float:
        started = time.perf_counter()
        for arm in arms:
            run(arm)
        return time.perf_counter() - started

    pooled = timed(lambda arm: clustered_comparison(PairedSample(arm, reference, items), n_resamples=args.resamples))
    # a macro test needs items nested in languages: here each (item, language) is its own item, as in Tatoeba
    per_language = np.char.add(languages.astype(str), items.astype(str).astype("<U8"))
    macro = timed(
        lambda arm: clustered_comparison(
            PairedSample(arm, reference, per_language, languages), macro=True, n_resamples=args.resamples
        )
    )
    per_query = timed(
        lambda arm: paired_comparison(arm.values.mean(axis=0), reference.values[0], n_resamples=args.resamples)
    )
    print(
        f"{args.arms} arms x {args.seeds} seeds, {n_queries:,} queries in {args.items:,} items, "
        f"{args.resamples:,} resamples"
    )
    print(f"clustered, pooled over items:        {pooled:6.2f} s")
    print(f"clustered, macro over {args.languages} languages:   {macro:6.2f} s ({n_queries:,} items)")
    print(f"per-query (the old test):            {per_query:6.2f} s")
    print(f"ratio pooled / per-query: {pooled / per_query:.2f}; macro / per-query: {macro / per_query:.2f}")


if __name__ == "__main__":
    main()
