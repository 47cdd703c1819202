"""Encoding throughput of polyret's variants as ratios to plain fp32 ``SentenceTransformer.encode``, and the cached
re-run.

    .venv/bin/python benchmarks/encode_throughput.py                         # embedded e5-small, 2,000 sentences
    .venv/bin/python benchmarks/encode_throughput.py --rounds 3 -n 512       # quicker
    .venv/bin/python benchmarks/encode_throughput.py --variants auto,int8    # some variants only

Every variant gets the same Tatoeba sentences (round-robin over the non-English sides of the 36 XTREME languages,
``../shared/data/tatoeba/v1``), the same ``query: `` prefix, batch size and device:

* ``plain_fp32``: ``SentenceTransformer.encode`` in fp32, the baseline of every ratio;
* ``polyret_fp32``: polyret's encoder in fp32 (token-length batching: every text tokenized once, batches of similar
  length); ``auto``: polyret with ``precision: auto`` (bf16 autocast on CPUs with AVX512-BF16/AMX, else fp32: the
  report says which); ``bf16``: forced bf16 autocast (emulated, and slow, on CPUs without native bf16);
* ``onnx_fp32`` / ``int8``: polyret's onnx backend, fp32 and dynamically quantised int8 (exported once, before timing).

Runs alternate (each round rotates the order) so a busy machine slows every variant alike; each variant's best run
counts, and the spread of the per-round ratios is printed too. Then the embedding cache: the vectors of polyret's
fp32 run are stored in a fresh cache, and a second run, through a new encoder object that reads the cache from disk,
should re-encode nothing (target < 2 s) and not even load the weights. Process CPU time and load average are printed
for every run, because the development machines are shared. The LAST line is one JSON object: one
``ratio_<variant>_over_plain_fp32`` per variant, their spreads, minimum cosines to plain fp32 and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

# The 36 XTREME Tatoeba languages, as LASER's file codes.
XTREME36 = (
    "afr",
    "ara",
    "bul",
    "ben",
    "deu",
    "ell",
    "spa",
    "est",
    "eus",
    "pes",
    "fin",
    "fra",
    "heb",
    "hin",
    "hun",
    "ind",
    "ita",
    "jpn",
    "jav",
    "kat",
    "kaz",
    "kor",
    "mal",
    "mar",
    "nld",
    "por",
    "rus",
    "swh",
    "tam",
    "tel",
    "tha",
    "tgl",
    "tur",
    "urd",
    "vie",
    "cmn",
)


def tatoeba_sentences(n: int) -> list[str]:
    from polyret.io import data_dir

    root = data_dir() / "tatoeba" / "v1"
    if not root.is_dir():
        raise SystemExit(f"Tatoeba not found at {root}; set POLYRET_DATA_DIR to ../shared/data")
    columns = [(root / f"tatoeba.{code}-eng.{code}").read_text(encoding="utf-8").splitlines() for code in XTREME36]
    texts: list[str] = []
    for row in range(max(len(column) for column in columns)):
        texts.extend(column[row] for column in columns if row < len(column) and column[row].strip())
        if len(texts) >= n:
            return texts[:n]
    return texts


def timed(label: str, run) -> dict:
    load0, wall0, cpu0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
    result = run()
    wall = time.perf_counter() - wall0
    record = {
        "label": label,
        "wall_s": round(wall, 3),
        "process_cpu_s": round(time.process_time() - cpu0, 3),
        "loadavg_1min_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "result": result,
    }
    print(
        f"{label:>28}: {wall:8.2f} s wall, {record['process_cpu_s']:8.1f} s CPU, load average "
        f"{record['loadavg_1min_start_end']}",
        flush=True,
    )
    return record


VARIANTS = ("polyret_fp32", "auto", "bf16", "onnx_fp32", "int8")
# variant -> (precision, backend) of polyret's encoder
SETTINGS = {
    "polyret_fp32": ("fp32", "torch"),
    "auto": ("auto", "torch"),
    "bf16": ("bf16", "torch"),
    "onnx_fp32": ("fp32", "onnx"),
    "int8": ("int8", "onnx"),
}
BASELINE = "plain_fp32"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("-n", "--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs per variant (alternating)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers (and every run) here")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")

    import torch
    from sentence_transformers import SentenceTransformer

    from polyret.encode.encoder import SentenceTransformerEncoder
    from polyret.encode.models import resolve_model

    texts = tatoeba_sentences(args.sentences)
    location = resolve_model(args.model)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    plain = SentenceTransformer(str(location), device=device)
    encoders = {}
    for name in variants:
        precision, backend = SETTINGS[name]
        encoders[name] = SentenceTransformerEncoder(
            args.model, location, device=None if backend == "onnx" else device, precision=precision, backend=backend
        )
    prefix = next(iter(encoders.values())).query_prefix if encoders else "query: "

    def run_plain():
        return plain.encode(
            texts, prompt=prefix, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True
        )

    def runner(encoder):
        return lambda: encoder.encode(texts, prefix=prefix, batch_size=args.batch_size, show_progress=False)

    runs_of = {BASELINE: run_plain, **{name: runner(encoder) for name, encoder in encoders.items()}}
    plain.encode(texts[:64], prompt=prefix, batch_size=args.batch_size, convert_to_numpy=True)  # warm-up
    for encoder in encoders.values():  # warm-up: loads weights, exports and quantises the onnx graphs
        encoder.encode(texts[:64], prefix=prefix, batch_size=args.batch_size, show_progress=False)

    runs: list[dict] = []
    names = list(runs_of)
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs.append({"variant": name, "round": round_, **timed(f"{name} round {round_ + 1}", runs_of[name])})
    best = {name: min(r["wall_s"] for r in runs if r["variant"] == name) for name in names}
    # process CPU seconds: less moved by other processes' load than wall time (OpenMP spin-waits still count)
    best_cpu = {name: min(r["process_cpu_s"] for r in runs if r["variant"] == name) for name in names}
    vectors = {name: next(r["result"] for r in runs if r["variant"] == name) for name in names}
    reference = vectors[BASELINE]

    def round_ratios(name: str) -> list[float]:
        wall = {(r["variant"], r["round"]): r["wall_s"] for r in runs}
        return [round(wall[BASELINE, k] / wall[name, k], 3) for k in range(args.rounds)]

    cache = cache_rerun(args, location, device, texts, prefix, vectors.get("polyret_fp32"))
    summary = {
        **{f"ratio_{name}_over_plain_fp32": round(best[BASELINE] / best[name], 3) for name in variants},
        "ratio_spread_per_round": {name: round_ratios(name) for name in variants},
        "cpu_time_ratio_over_plain_fp32": {name: round(best_cpu[BASELINE] / best_cpu[name], 3) for name in variants},
        "min_cosine_to_plain_fp32": {
            name: round(float((vectors[name] * reference).sum(axis=1).min()), 6) for name in variants
        },
        "auto_resolved_to": encoders["auto"].resolved_precision if "auto" in encoders else None,
        "sentences_per_s": {name: round(len(texts) / seconds, 2) for name, seconds in best.items()},
        "sentences": len(texts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_native_bf16": _native_bf16(),
        "loadavg_1min_start_end": [runs[0]["loadavg_1min_start_end"][0], runs[-1]["loadavg_1min_start_end"][1]],
        "platform": platform.platform(),
        "cache": cache,
    }
    if args.json:
        detail = {**summary, "runs": [{k: v for k, v in r.items() if k != "result"} for r in runs]}
        args.json.write_text(json.dumps(detail, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary), flush=True)  # the last line: one JSON object
    return 0


def _native_bf16() -> bool:
    from polyret.precision import cpu_has_native_bf16

    return cpu_has_native_bf16()


def cache_rerun(args, location, device, texts, prefix, vectors) -> dict | None:
    """Store polyret's fp32 vectors in a fresh cache, then re-run through a new encoder that must hit every row."""
    if vectors is None:
        return None
    import numpy as np

    from polyret.encode.cache import CachedEncoder, EmbeddingCache, text_key
    from polyret.encode.encoder import SentenceTransformerEncoder

    with tempfile.TemporaryDirectory(prefix="encode-cache-bench-") as root:
        first = SentenceTransformerEncoder(args.model, location, device=device, precision="fp32")
        fill = timed(
            "cache: store 1st-run vectors",
            # keyed as CachedEncoder keys them: an unset max length means the encoder's own
            lambda: EmbeddingCache(first.fingerprint, root).put_many(
                [text_key(t, prefix, first.max_length) for t in texts], vectors
            ),
        )
        fresh = SentenceTransformerEncoder(args.model, location, device=device, precision="fp32")  # not loaded yet
        cached = timed(
            "cache: second run (new obj)",
            lambda: CachedEncoder(fresh, EmbeddingCache(fresh.fingerprint, root)).encode(
                texts, prefix=prefix, batch_size=args.batch_size, show_progress=False
            ),
        )
        return {
            "store_s": fill["wall_s"],
            "second_run_s": cached["wall_s"],
            "identical": bool(np.array_equal(vectors, cached["result"])),
            "weights_loaded_in_second_run": fresh._model is not None,
        }


if __name__ == "__main__":
    raise SystemExit(main())
