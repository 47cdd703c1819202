"""Encode, index and search a large corpus: throughput, peak memory and approximate-index recall (issue 7).

    .venv/bin/python benchmarks/scale.py --passages 1000000                       # everything real (GPU: ~1 h)
    .venv/bin/python benchmarks/scale.py --passages 1000000 --encode-limit 20000  # a CPU laptop (see below)
    .venv/bin/python benchmarks/scale.py --passages 20000 --ranks 2               # data-parallel encoding

The corpus is synthetic but realistic: each passage joins 1-3 sentences of one language, drawn from a pool of
real sentences (Tatoeba, all languages present, and UDHR articles cut into sentences). Queries are English Tatoeba
sentences with the ``query:`` prefix. Every stage runs in its own subprocess, so its peak RSS is its own:

1. ``encode``   ``polyret encode --shards`` (under ``torchrun`` when ``--ranks`` > 1) over the first
   ``--encode-limit`` passages (default: all): passages/s and peak RSS, less a process that only loaded the model.
2. ``compose``  only when ``--encode-limit`` < ``--passages``: e5-small on 2 CPU cores encodes ~100 passages/s, so
   1M passages take hours. The whole corpus then gets *composed* embeddings, written through the same shard
   writer: the normalised sum of the real embeddings of a passage's sentences. How close that is to encoding is
   measured on the really encoded passages (mean cosine), and the results label the corpus as composed.
3. ``search``   per index kind (flat = exact, streamed shard by shard; ivf-flat, ivf-pq, hnsw through
   :func:`polyret.mining.index.corpus_index`, built once and saved): build seconds, queries/s, peak RSS and
   RSS beyond the index, and recall@10 against exact search.

Targets (issue 7): peak RSS beyond the model <= 4 GB; IVF-Flat and HNSW recall@10 >= 0.95. Printed as ratios;
results go to ``<work>/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MODEL = "multilingual-e5-small"
K = 10
GIB = 1024**3
INDEX_PARAMS = {  # sized for 1M passages on 2 cores: build minutes, recall@10 >= 0.95
    "flat": {},
    "ivf-flat": {"nlist": 1024, "nprobe": 64, "train_size": 65536},
    "ivf-pq": {"nlist": 1024, "nprobe": 64, "pq_m": 96, "train_size": 65536},
    "hnsw": {"hnsw_m": 32, "ef_construction": 64, "ef_search": 1024},
}


# ------------------------------------------------------------------------------------------------ the corpus
def sentence_pool(size: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """``(sentences, their language groups, English queries)``: a stratified sample of real sentences."""
    from polyret.data.tatoeba import available_codes, read_tatoeba_pair
    from polyret.data.udhr import load_udhr

    rng = random.Random(seed)
    groups: dict[str, list[str]] = {}
    english: list[str] = []
    for code in available_codes():
        pair = read_tatoeba_pair(code)
        groups[f"tatoeba-{code}"] = [line for line in pair.xx if line.strip()]
        english.extend(line for line in pair.en if line.strip())
    for code, version in load_udhr().versions.items():
        pieces = [piece.strip() for text in version.articles.values() for piece in re.split(r"(?<=[.!?;।。])\s+", text)]
        groups[f"udhr-{code}"] = [piece for piece in pieces if len(piece) > 3]
    per_group = max(2, size // len(groups))
    sentences, languages = [], []
    for group, lines in sorted(groups.items()):
        unique = sorted(set(lines))
        for line in rng.sample(unique, min(per_group, len(unique))):
            sentences.append(line)
            languages.append(group)
    return sentences, languages, sorted(set(english))


def write_corpus(work: Path, n_passages: int, pool_size: int, n_queries: int, seed: int) -> dict:
    """``corpus.jsonl`` (id, text), ``compositions.npy`` (n x 3 pool rows, -1 padded), ``pool.jsonl``,
    ``queries.jsonl``; all derived from ``seed``."""
    sentences, languages, english = sentence_pool(pool_size, seed)
    rng = np.random.default_rng(seed)
    by_language: dict[str, np.ndarray] = {}
    for row, language in enumerate(languages):
        by_language.setdefault(language, []).append(row)  # type: ignore[arg-type]
    names = sorted(by_language)
    members = [np.asarray(by_language[name]) for name in names]
    compositions = np.full((n_passages, 3), -1, dtype=np.int32)
    seen: set[tuple[int, ...]] = set()
    with (work / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        row = 0
        while row < n_passages:
            group = members[rng.integers(len(members))]
            size = min(int(rng.integers(1, 4)), len(group))
            chosen = tuple(int(x) for x in rng.choice(group, size, replace=False))
            if chosen in seen:  # distinct passages: no exact-duplicate ties in the ground truth
                continue
            seen.add(chosen)
            compositions[row, :size] = chosen
            text = " ".join(sentences[i] for i in chosen)
            corpus.write(json.dumps({"id": f"p{row:07d}", "text": text}, ensure_ascii=False) + "\n")
            row += 1
    np.save(work / "compositions.npy", compositions)
    with (work / "pool.jsonl").open("w", encoding="utf-8") as pool:
        pool.writelines(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in sentences)
    queries = random.Random(seed).sample(english, n_queries)
    with (work / "queries.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(
            json.dumps({"id": f"q{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(queries)
        )
    return {
        "pool_sentences": len(sentences),
        "pool_groups": len(names),
        "passages": n_passages,
        "queries": n_queries,
        "mean_sentences_per_passage": float((compositions >= 0).sum(1).mean()),
    }


# ------------------------------------------------------------------------------------------- subprocess runs
def measured(command: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``command``; wall seconds, CPU seconds and the peak RSS of its largest process (GiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} ... failed ({process.returncode}):\n{stderr[-3000:]}")
    peak_kib = usage.ru_maxrss  # Linux: the largest of the process and its reaped children (torchrun's workers)
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_gib": round(peak_kib * 1024 / GIB, 3),
        "stderr_tail": stderr.strip().splitlines()[-1:],
    }


def worker(stage: str, *args: str) -> list[str]:
    return [sys.executable, __file__, "--worker", stage, *args]


def model_baseline() -> None:
    """Worker: load the model and encode one text (the RSS every encoding process pays before any corpus)."""
    from polyret.encode.encoder import load_encoder

    load_encoder(MODEL, cache=False).encode(["warm-up"], show_progress=False)


def head(source: Path, target: Path, n: int) -> None:
    with source.open(encoding="utf-8") as reader, target.open("w", encoding="utf-8") as writer:
        for _, line in zip(range(n), reader, strict=False):
            writer.write(line)


# --------------------------------------------------------------------------------- composed embeddings
class ComposedEncoder:
    """Encoder over passage ids (``p0000042``): the normalised sum of the passage's real sentence embeddings."""

    def __init__(self, pool_vectors: np.ndarray, compositions: np.ndarray, fingerprint: str) -> None:
        self.pool, self.compositions = pool_vectors, compositions
        self.fingerprint = f"composed-from-{fingerprint}"
        self.query_prefix, self.passage_prefix = "query: ", "passage: "

    @property
    def dim(self) -> int:
        return self.pool.shape[1]

    def encode(self, texts, *, prefix="", max_length=None, batch_size=32, show_progress=True) -> np.ndarray:
        rows = self.compositions[[int(text[1:]) for text in texts]]
        vectors = np.where(rows[..., None] >= 0, self.pool[np.maximum(rows, 0)], 0.0).sum(axis=1)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    def describe(self) -> dict[str, str]:
        return {"encoder": "composed sentence embeddings (benchmarks/scale.py)", "fingerprint": self.fingerprint}


def compose(work: str, shard_size: str, encode_limit: str) -> None:
    """Worker: encode the sentence pool and the queries (real, cached), write composed shards of the corpus."""
    from polyret.encode.encoder import iter_records, load_encoder
    from polyret.encode.shards import encode_to_shards, load_shards

    folder = Path(work)
    encoder = load_encoder(MODEL)
    pool = encoder.encode(
        [text for _, text in iter_records(folder / "pool.jsonl")], prefix=encoder.passage_prefix, batch_size=64
    )
    queries = encoder.encode(
        [text for _, text in iter_records(folder / "queries.jsonl")], prefix=encoder.query_prefix, batch_size=64
    )
    np.save(folder / "queries.npy", queries)
    composed = ComposedEncoder(pool, np.load(folder / "compositions.npy"), encoder.fingerprint)
    ids = (item_id for item_id, _ in iter_records(folder / "corpus.jsonl"))
    encode_to_shards(
        composed,
        ((item_id, item_id) for item_id in ids),
        folder / "composed",
        shard_size=int(shard_size),
        dtype="float16",
        prefix="passage: ",
        show_progress=False,
    )
    real_ids, real_shards = load_shards(folder / "encoded")
    real = np.concatenate(list(real_shards)).astype(np.float32)
    limit = min(int(encode_limit), len(real))
    fake = composed.encode(real_ids[:limit])
    cosine = float(np.mean(np.einsum("ij,ij->i", real[:limit], fake)))
    (folder / "composed-check.json").write_text(json.dumps({"mean_cosine_real_vs_composed": cosine}))


def search(work: str, shards: str, kind: str) -> None:
    """Worker: build (or load) the ``kind`` index over ``shards`` and search the queries; timings to JSON."""
    from polyret.encode.shards import load_shards
    from polyret.mining.index import IndexSpec, corpus_index, corpus_index_path, search_built, search_shards

    folder = Path(work)
    queries = np.load(folder / "queries.npy")
    count = load_shards(folder / shards)[1].count
    params = dict(INDEX_PARAMS[kind])
    if "nlist" in params:  # a small trial run: keep >= 64 training vectors per cell
        params.update(nlist=min(params["nlist"], max(1, count // 64)), train_size=min(params["train_size"], count))
    spec = IndexSpec(kind=kind, use_gpu=False, **params)  # type: ignore[arg-type]
    start = time.perf_counter()
    if kind == "flat":
        build_s = 0.0
        _, stream = load_shards(folder / shards)
        _, rows = search_shards(queries, stream, K)
        index_bytes = 0
    else:
        saved = corpus_index_path(folder / shards, spec)
        loaded = saved.is_file()
        index = corpus_index(folder / shards, spec)
        build_s = None if loaded else time.perf_counter() - start
        start = time.perf_counter()
        _, rows = search_built(index, queries, K)
        index_bytes = saved.stat().st_size
    search_s = time.perf_counter() - start
    np.save(folder / f"ids-{shards}-{kind}.npy", rows)
    (folder / f"timing-{shards}-{kind}.json").write_text(
        json.dumps(
            {
                "build_s": None if build_s is None else round(build_s, 1),
                "search_s": round(search_s, 2),
                "index_gib": round(index_bytes / GIB, 3),
                "params": params,
            }
        )
    )


# ----------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--encode-limit", type=int, default=None, help="really encode only this many passages")
    parser.add_argument("--ranks", type=int, default=1, help="encoding processes (torchrun)")
    parser.add_argument("--pool", type=int, default=30_000, help="real sentences to recombine")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--kinds", nargs="+", default=["ivf-flat", "ivf-pq", "hnsw"], choices=list(INDEX_PARAMS))
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.scale"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep finished stages of the same settings in --work (search always runs again; saved indexes are reused)",
    )
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        {"baseline": model_baseline, "compose": compose, "search": search}[args.worker[0]](*args.worker[1:])
        return 0

    from polyret.io import read_json, write_json

    work: Path = args.work
    settings = {
        key: getattr(args, key)
        for key in ("passages", "encode_limit", "ranks", "pool", "queries", "shard_size", "seed")
    }
    stages_path = work / "stages.json"
    results: dict = {}
    if args.resume and stages_path.is_file() and read_json(stages_path).get("settings") == settings:
        results = read_json(stages_path)
    elif work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    results.update(settings=settings, cores=os.cpu_count(), load_average_start=os.getloadavg())
    limit = min(args.encode_limit or args.passages, args.passages)

    def stage(name: str, run) -> None:
        if name not in results:
            results[name] = run()
            write_json(stages_path, results)

    def corpus() -> dict:
        print(f"corpus: {args.passages:,} passages, pool {args.pool:,} sentences ...", flush=True)
        return write_corpus(work, args.passages, args.pool, args.queries, args.seed)

    stage("corpus", corpus)
    stage("model_baseline", lambda: measured(worker("baseline")))
    stage("encode", lambda: encode_stage(work, args, limit, results["model_baseline"]))
    stage("compose", lambda: compose_stage(work, args, limit))
    shards = "composed" if results["compose"] else "encoded"
    results["embeddings"] = shards

    previous = results.get("search", {})
    results["search"] = {}
    for kind in ["flat", *[kind for kind in args.kinds if kind != "flat"]]:
        print(f"search: {kind} ...", flush=True)
        run = measured(worker("search", str(work), shards, kind))
        run.update(json.loads((work / f"timing-{shards}-{kind}.json").read_text()))
        if run["build_s"] is None:  # a saved index was loaded: its build time is the earlier run's
            run["build_s"] = previous.get(kind, {}).get("build_s")
        run["queries_per_s"] = round(args.queries / max(run["search_s"], 1e-9), 1)
        run["rss_beyond_index_gib"] = round(run["peak_rss_gib"] - run["index_gib"], 3)
        if kind != "flat":
            from polyret.mining.index import recall_against_exact

            exact = np.load(work / f"ids-{shards}-flat.npy")
            run[f"recall@{K}"] = round(recall_against_exact(np.load(work / f"ids-{shards}-{kind}.npy"), exact, K), 4)
        results["search"][kind] = run
    results["load_average_end"] = os.getloadavg()
    write_json(stages_path, results)
    write_json(work / "scale.json", results)
    report(results)
    return 0


def encode_stage(work: Path, args: argparse.Namespace, limit: int, baseline: dict) -> dict:
    """Really encode the first ``limit`` passages with ``polyret encode --shards`` (under torchrun for ranks > 1)."""
    head(work / "corpus.jsonl", work / "encode-input.jsonl", limit)
    threads = str(max(1, (os.cpu_count() or 1) // args.ranks))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.ranks)]
        if args.ranks > 1
        else [sys.executable]
    )
    shard_size = min(args.shard_size, max(1, limit // 4))  # several shards even for a small run
    print(
        f"encode: {limit:,} passages, {args.ranks} rank(s) x {threads} thread(s), shards of {shard_size:,} ...",
        flush=True,
    )
    shutil.rmtree(work / "encoded", ignore_errors=True)
    encode = measured(
        [
            *launcher,
            "-m",
            "polyret.cli",
            "encode",
            "--model",
            MODEL,
            "--input",
            str(work / "encode-input.jsonl"),
            "--shards",
            str(work / "encoded"),
            "--prefix",
            "passage",
            "--shard-size",
            str(shard_size),
            "--batch-size",
            "64",
            "--max-length",
            "128",
        ],
        env=env,
    )
    # the baseline process's wall time (start-up, model load) is paid once per run, not per passage
    rate = limit / max(encode["wall_s"] - baseline["wall_s"], 1e-9)
    encode.update(
        passages=limit,
        ranks=args.ranks,
        threads_per_rank=int(threads),
        passages_per_s=round(rate, 1),
        rss_beyond_model_gib=round(encode["peak_rss_gib"] - baseline["peak_rss_gib"], 3),
        projected_hours_for_all=round(args.passages / rate / 3600, 2),
    )
    return encode


def compose_stage(work: Path, args: argparse.Namespace, limit: int) -> dict | None:
    """Composed embeddings for the whole corpus when only part of it was encoded; else just the queries."""
    if limit < args.passages:
        print(f"compose: {args.passages:,} composed passage embeddings ...", flush=True)
        shutil.rmtree(work / "composed", ignore_errors=True)
        composed = measured(worker("compose", str(work), str(args.shard_size), str(limit)))
        composed.update(json.loads((work / "composed-check.json").read_text()))
        return composed
    # queries only: the pool is not needed when every passage is really encoded
    measured(
        [
            sys.executable,
            "-m",
            "polyret.cli",
            "encode",
            "--model",
            MODEL,
            "--input",
            str(work / "queries.jsonl"),
            "--output",
            str(work / "queries.npy"),
            "--prefix",
            "query",
        ]
    )
    return None


def report(results: dict) -> None:
    encode, baseline = results["encode"], results["model_baseline"]
    print(
        f"\nencode  {encode['passages']:>9,} passages  {encode['passages_per_s']:>7.1f} passages/s after start-up "
        f"({encode['wall_s']:.0f} s wall, {encode['cpu_s']:.0f} s CPU; all {results['corpus']['passages']:,}: "
        f"~{encode['projected_hours_for_all']} h)"
    )
    print(
        f"        peak RSS {encode['peak_rss_gib']:.2f} GiB, model alone {baseline['peak_rss_gib']:.2f} GiB -> "
        f"beyond the model {encode['rss_beyond_model_gib']:.2f} GiB = {encode['rss_beyond_model_gib'] / 4:.2f} "
        f"of the 4 GB target"
    )
    if results["compose"]:
        compose = results["compose"]
        print(
            f"compose {results['corpus']['passages']:,} composed embeddings in {compose['wall_s']:.0f} s; mean "
            f"cosine to the real encoding {compose['mean_cosine_real_vs_composed']:.3f}"
        )
    params = {kind: run.get("params") for kind, run in results["search"].items() if run.get("params")}
    print(f"\nindex settings: {params}")
    print(
        f"{'index':>9} {'build s':>8} {'queries/s':>10} {'peak RSS':>9} {'index':>7} {'beyond':>7} "
        f"{'recall@10':>10} {'/ 0.95':>7}"
    )
    for kind, run in results["search"].items():
        recall = run.get(f"recall@{K}")
        shown = f"{recall:>10.4f} {recall / 0.95:>7.3f}" if recall is not None else f"{'(exact)':>10} {'':>7}"
        built = f"{run['build_s']:>8.1f}" if run["build_s"] is not None else f"{'?':>8}"
        print(
            f"{kind:>9} {built} {run['queries_per_s']:>10.1f} {run['peak_rss_gib']:>8.2f}G "
            f"{run['index_gib']:>6.2f}G {run['rss_beyond_index_gib']:>6.2f}G {shown}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
