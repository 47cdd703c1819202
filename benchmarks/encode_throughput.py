"""Sentences per second of polyret's encoder vs plain ``SentenceTransformer.encode``, and the cached re-run.

    .venv/bin/python benchmarks/encode_throughput.py                  # embedded e5-small, 2,000 sentences
    .venv/bin/python benchmarks/encode_throughput.py --rounds 1 -n 500   # quick

Both encoders get the same 2,000 Tatoeba sentences (round-robin over the non-English sides of the 36 XTREME
languages, ``../shared/data/tatoeba/v1``), the same ``query: `` prefix, batch size and device. Runs alternate
(polyret, plain, then plain, polyret, ...) so a busy machine slows both alike; each side's best run counts.
The ratio is polyret's throughput over plain sentence-transformers' (target >= 1.0). Then the embedding cache:
the vectors of polyret's first run are stored in a fresh cache (what a cached first run writes), and a second
run, through a new encoder object that reads the cache from disk, should re-encode nothing (target < 2 s) and
not even load the weights. Process CPU time and load average are printed for every run, because
the development machines are shared.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("-n", "--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs per encoder (alternating)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from polyret.encode.cache import CachedEncoder, EmbeddingCache, text_key
    from polyret.encode.encoder import SentenceTransformerEncoder
    from polyret.encode.models import resolve_model

    texts = tatoeba_sentences(args.sentences)
    location = resolve_model(args.model)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ours = SentenceTransformerEncoder(args.model, location, device=device)
    prefix = ours.query_prefix
    plain = SentenceTransformer(str(location), device=device)
    ours.encode(texts[:64], prefix=prefix, batch_size=args.batch_size, show_progress=False)  # warm-up
    plain.encode(texts[:64], prompt=prefix, batch_size=args.batch_size, convert_to_numpy=True)

    def run_ours():
        return ours.encode(texts, prefix=prefix, batch_size=args.batch_size, show_progress=False)

    def run_plain():
        return plain.encode(
            texts, prompt=prefix, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True
        )

    runs: list[dict] = []
    for round_ in range(args.rounds):
        order = [("polyret", run_ours), ("sentence-transformers", run_plain)]
        for name, run in order if round_ % 2 == 0 else order[::-1]:
            runs.append({"encoder": name, **timed(f"{name} round {round_ + 1}", run)})
    names = ("polyret", "sentence-transformers")
    best = {name: min(r["wall_s"] for r in runs if r["encoder"] == name) for name in names}
    vectors = {name: next(r["result"] for r in runs if r["encoder"] == name) for name in best}
    max_abs_diff = float(np.abs(vectors["polyret"] - vectors["sentence-transformers"]).max())

    with tempfile.TemporaryDirectory(prefix="encode-cache-bench-") as root:
        # Filling the cache costs one polyret run plus the writes; store the vectors already computed above.
        fill = timed(
            "cache: store 1st-run vectors",
            lambda: EmbeddingCache(ours.fingerprint, root).put_many(
                [text_key(text, prefix) for text in texts], vectors["polyret"]
            ),
        )
        fresh = SentenceTransformerEncoder(args.model, location, device=device)  # weights not loaded yet
        cached = timed(
            "cache: second run (new obj)",
            lambda: CachedEncoder(fresh, EmbeddingCache(fresh.fingerprint, root)).encode(
                texts, prefix=prefix, batch_size=args.batch_size, show_progress=False
            ),
        )
        cache_equal = bool(np.array_equal(vectors["polyret"], cached["result"]))
        model_loaded_for_cached_run = fresh._model is not None

    throughput = {name: round(len(texts) / seconds, 2) for name, seconds in best.items()}
    report = {
        "model": args.model,
        "path": str(location),
        "sentences": len(texts),
        "batch_size": args.batch_size,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "best_wall_s": best,
        "sentences_per_s": throughput,
        "ratio_polyret_over_plain": round(throughput["polyret"] / throughput["sentence-transformers"], 3),
        "max_abs_diff_vs_plain": max_abs_diff,
        "cache": {
            "store_s": fill["wall_s"],
            "second_run_s": cached["wall_s"],
            "identical": cache_equal,
            "weights_loaded_in_second_run": model_loaded_for_cached_run,
        },
        "runs": [{k: v for k, v in r.items() if k != "result"} for r in runs],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
