"""Time and peak memory of margin mining vs a bare faiss k-NN on random unit vectors (issue 5).

For each size n (vectors per side, dim 384, k 4) it measures, each in a fresh subprocess so peak RSS is its own:

* ``knn``      one bare faiss ``IndexFlatIP`` search, src -> tgt (the cost of one k-NN of that size);
* ``knn2``     two bare searches, src -> tgt and tgt -> src (what margin mining needs at least);
* ``mine``     :func:`polyret.mining.margin.mine_pairs` (two exact searches + margin + greedy one-to-one).
* ``mine-shards``  the same on both sides stored as float16 shards of ``--shard-size`` vectors
  (:mod:`polyret.encode.shards`), searched shard against shard; its inputs are never whole in memory, so its
  "RSS growth" is over a process that holds no vectors (for the others it is over the loaded inputs).

and prints wall seconds, CPU seconds (user + system, all threads: steadier than wall time on a shared
machine), peak RSS growth over the loaded inputs (MiB), tracemalloc peak (MiB, Python/numpy
allocations only) and overhead ratios ``mine / knn`` and ``mine / knn2``. Timings are the best of ``--repeat`` runs.

    .venv/bin/python benchmarks/mining_scale.py --sizes 10000 50000 [--repeat 2] [--methods knn knn2 mine]
    .venv/bin/python benchmarks/mining_scale.py --sizes 200000 --methods mine-shards --shard-size 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

DIM = 384
K = 4


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.standard_normal((n, DIM), dtype=np.float32)
    tgt = rng.standard_normal((n, DIM), dtype=np.float32)
    src /= np.linalg.norm(src, axis=1, keepdims=True)
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True)
    return src, tgt


class RandomEncoder:
    """Unit vectors seeded by the text (an id): shards of any size without holding a side in memory."""

    fingerprint = "random-unit-vectors"

    def encode(self, texts, *, prefix="", max_length=None, batch_size=32, show_progress=True) -> np.ndarray:
        rng = np.random.default_rng(int(texts[0].split("-")[1]))
        vectors = rng.standard_normal((len(texts), DIM), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def describe(self) -> dict[str, str]:
        return {"encoder": "random unit vectors", "fingerprint": self.fingerprint}


def sharded_sides(n: int, shard_size: int, folder: str) -> tuple:
    from polyret.encode.shards import encode_to_shards, load_shards

    sides = []
    for side in ("src", "tgt"):
        ids = (f"{side}-{i}" for i in range(n))
        encode_to_shards(RandomEncoder(), ids, f"{folder}/{side}", shard_size=shard_size, show_progress=False)
        sides.append(load_shards(f"{folder}/{side}")[1])
    return tuple(sides)


def run_one(n: int, method: str, shard_size: int = 20_000) -> dict[str, float]:
    """Measure one (size, method) in this process; returns seconds and memory."""
    import tempfile

    import faiss

    from polyret.mining.margin import mine_pairs

    folder = tempfile.TemporaryDirectory()
    src, tgt = sharded_sides(n, shard_size, folder.name) if method == "mine-shards" else make_data(n)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if method in ("knn", "knn2"):
        index = faiss.IndexFlatIP(DIM)
        index.add(tgt)
        index.search(src, K)
        if method == "knn2":
            reverse = faiss.IndexFlatIP(DIM)
            reverse.add(src)
            reverse.search(tgt, K)
        pairs = -1
    elif method in ("mine", "mine-shards"):
        pairs = len(mine_pairs(src, tgt, k=K, threshold=None))
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "method": method,
        "seconds": seconds,
        "cpu_s": cpu,
        "rss_growth_mib": (peak_rss - base_rss) / 1024,
        "traced_peak_mib": traced_peak / 2**20,
        "pairs": pairs,
    }


def measure(n: int, method: str, shard_size: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--one", str(n), method, "--shard-size", str(shard_size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--methods", nargs="+", default=["knn", "knn2", "mine"])
    parser.add_argument("--repeat", type=int, default=1, help="best-of repeats (interleaved across methods)")
    parser.add_argument("--shard-size", type=int, default=20_000, help="vectors per shard for mine-shards")
    parser.add_argument("--one", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.shard_size)))
        return
    import faiss

    print(f"faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()}, dim {DIM}, k {K}", flush=True)
    print(f"{'n':>7} {'method':>11} {'seconds':>8} {'cpu_s':>8} {'rss+MiB':>8} {'traced':>7}", flush=True)
    for n in args.sizes:
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):
            for method in args.methods:
                row = measure(n, method, args.shard_size)
                if method not in best or row["seconds"] < best[method]["seconds"]:
                    best[method] = row
        for method in args.methods:
            row = best[method]
            print(
                f"{n:>7} {method:>11} {row['seconds']:>8.2f} {row.get('cpu_s', float('nan')):>8.2f} "
                f"{row['rss_growth_mib']:>8.0f} "
                f"{row['traced_peak_mib']:>7.0f}",
                flush=True,
            )
        if "mine" in best:
            ratios = [
                f"mine/{base} wall {best['mine']['seconds'] / best[base]['seconds']:.2f} "
                f"cpu {best['mine'].get('cpu_s', 0) / max(best[base].get('cpu_s', 0), 1e-9):.2f}"
                for base in ("knn", "knn2")
                if base in best
            ]
            print(f"{n:>7} overhead: " + ", ".join(ratios), flush=True)


if __name__ == "__main__":
    main()
