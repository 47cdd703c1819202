"""CRISS mining stage: the corpora and language pairs to mine, one iteration's mining, and its pair files."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polyret.data.languages import get_language
from polyret.data.tatoeba import read_tatoeba_pair
from polyret.errors import ConfigError
from polyret.eval.metrics import precision_recall_f1
from polyret.io import atomic_write, read_lines
from polyret.mining.margin import dedupe, mine_pairs
from polyret.mining.pairfile import ScoredPair, one_line, read_scored_pairs, write_scored_pairs
from polyret.train.config import load_sources
from polyret.train.criss.config import CrissConfig, TrainingTextSource


@dataclass
class MiningJob:
    """One language pair to mine: corpus names (keys into the corpora dict) and, if known, gold text pairs."""

    src_lang: str
    tgt_lang: str
    src_corpus: str
    tgt_corpus: str
    gold: set[tuple[str, str]] | None = None

    @property
    def name(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"


@dataclass(frozen=True)
class MinedPair:
    src_lang: str
    tgt_lang: str
    src: str
    tgt: str
    score: float


def _dedupe(texts: Sequence[str]) -> list[str]:
    """Stripped, non-empty, deduplicated with the miner's own ``dedupe`` (PROTOCOLS §2.2 step 1)."""
    return dedupe([text.strip() for text in texts if text.strip()]).unique


def _read_corpus(path: Path, limit: int | None) -> list[str]:
    """One sentence a line (UTF-8; a bad byte is a DataError naming the line), at most ``limit`` lines."""
    lines = read_lines(path, blank_lines="keep")  # ``limit`` counts lines; _dedupe drops the blank ones
    return lines if limit is None else lines[:limit]


def training_text_jobs(source: TrainingTextSource) -> tuple[dict[str, list[str]], list[MiningJob]]:
    """Each language's passages of the training sets, shuffled on their own, and one ``xx-en`` job per language;
    the items' alignment is the gold of each job."""
    sets = load_sources(source.data)
    present = sorted({lang for data in sets for lang in data.languages})
    wanted = [get_language(lang).code for lang in source.languages] if source.languages else present
    if "en" not in present or len(wanted) < 2:
        raise ConfigError(f"criss config: training_text: needs English and another language (the data has {present})")
    texts: dict[str, list[str]] = {lang: [] for lang in wanted}
    gold: dict[str, set[tuple[str, str]]] = {lang: set() for lang in wanted if lang != "en"}
    for data in sets:
        for item in data.items:
            for lang, entry in item.langs.items():
                if lang in texts:
                    texts[lang].append(entry.passage)
                if lang in gold and "en" in item.langs:
                    gold[lang].add((entry.passage.strip(), item.langs["en"].passage.strip()))
    corpora: dict[str, list[str]] = {}
    for lang, lines in texts.items():
        unique = _dedupe(lines)
        random.Random(f"{source.seed}-{lang}").shuffle(unique)
        corpora[lang] = unique if source.max_sentences is None else unique[: source.max_sentences]
    jobs = []
    for lang, pairs in gold.items():  # gold pairs both of whose sides were kept
        src, english = set(corpora[lang]), set(corpora["en"])
        jobs.append(MiningJob(lang, "en", lang, "en", {(a, b) for a, b in pairs if a in src and b in english}))
    return corpora, jobs


def build_jobs(config: CrissConfig) -> tuple[dict[str, list[str]], list[MiningJob]]:
    """Deduplicated corpora by name and the mining jobs over them."""
    corpora: dict[str, list[str]] = {}
    jobs: list[MiningJob] = []
    if config.training_text is not None:
        return training_text_jobs(config.training_text)
    if config.tatoeba is not None:
        source = config.tatoeba
        for lang in source.languages:
            pair = read_tatoeba_pair(lang, source.root)
            code = pair.lang
            count = len(pair) if source.max_sentences is None else min(len(pair), source.max_sentences)
            xx, en = pair.xx[:count], pair.en[:count]
            rng = random.Random(f"{source.seed}-{code}")
            xx_shuffled, en_shuffled = xx[:], en[:]
            rng.shuffle(xx_shuffled)
            rng.shuffle(en_shuffled)
            corpora[code] = _dedupe(xx_shuffled)
            corpora[f"en@{code}"] = _dedupe(en_shuffled)
            gold = {(a.strip(), b.strip()) for a, b in zip(xx, en, strict=True) if a.strip() and b.strip()}
            jobs.append(MiningJob(code, "en", code, f"en@{code}", gold))
        return corpora, jobs
    languages = {get_language(lang).code: Path(path) for lang, path in config.corpora.items()}
    for code, path in languages.items():
        corpora[code] = _dedupe(_read_corpus(path, config.max_sentences))
    pairs = config.pairs or [(code, "en") for code in languages if code != "en"]
    for src, tgt in pairs:
        src_code, tgt_code = get_language(src).code, get_language(tgt).code
        for code in (src_code, tgt_code):
            if code not in corpora:
                raise ConfigError(f"criss config: pairs: no corpus for language {code!r}; add it under `corpora`")
        jobs.append(MiningJob(src_code, tgt_code, src_code, tgt_code))
    if not jobs:
        raise ConfigError("criss config: pairs: nothing to mine (give `pairs` or a corpus besides en)")
    return corpora, jobs


def write_pairs_tsv(path: Path, pairs: Sequence[MinedPair]) -> None:
    """The pair file of :mod:`polyret.mining.pairfile`; corpus lines are free text, so each is made one line first
    (training reads the texts back from this file)."""
    write_scored_pairs(path, (ScoredPair(pair.score, one_line(pair.src), one_line(pair.tgt)) for pair in pairs))


def read_pairs_tsv(path: Path, src_lang: str, tgt_lang: str) -> list[MinedPair]:
    return [MinedPair(src_lang, tgt_lang, pair.src, pair.tgt, pair.score) for pair in read_scored_pairs(path)]


def encode_texts(encoder: Any, texts: Sequence[str], config: CrissConfig) -> np.ndarray:
    """Vectors of ``texts`` for mining and scoring: the query prefix on both sides (a symmetric task)."""
    return encoder.encode(
        list(texts), prefix=encoder.query_prefix, batch_size=config.mining.batch_size, show_progress=False
    )


def mining_floor(config: CrissConfig, n_src: int, n_tgt: int) -> int:
    """``min_count``, capped at ``max_floor_fraction`` of the smaller corpus (the threshold then applies whenever
    that many pairs pass it)."""
    return min(config.mining.min_count, int(config.mining.max_floor_fraction * min(n_src, n_tgt)))


def mine_iteration(
    config: CrissConfig,
    encoder: Any,
    corpora: dict[str, list[str]],
    jobs: Sequence[MiningJob],
    out_dir: Path,
    embeddings_dir: Path | None = None,
) -> dict[str, Any]:
    """Encode every corpus with ``encoder``, mine every job, write the pair files and return the summary."""
    started = time.perf_counter()
    needed = sorted({name for job in jobs for name in (job.src_corpus, job.tgt_corpus)})
    vectors: dict[str, np.ndarray] = {}
    for name in needed:
        vectors[name] = encode_texts(encoder, corpora[name], config)
        if embeddings_dir is not None:
            with atomic_write(embeddings_dir / f"{name}.npy", "wb") as handle:
                np.save(handle, vectors[name])
    encode_s = time.perf_counter() - started
    summary: dict[str, Any] = {"pairs": {}, "encode_s": round(encode_s, 2), "mining": config.mining.model_dump()}
    rng = random.Random(config.seed)
    for job in jobs:
        src_texts, tgt_texts = corpora[job.src_corpus], corpora[job.tgt_corpus]
        mined = mine_pairs(
            vectors[job.src_corpus],
            vectors[job.tgt_corpus],
            k=config.mining.k,
            margin=config.mining.margin,
            threshold=config.mining.threshold,
            min_count=mining_floor(config, len(src_texts), len(tgt_texts)),
            one_to_one=True,
        )
        accepted = [
            MinedPair(job.src_lang, job.tgt_lang, src_texts[int(i)], tgt_texts[int(j)], float(s))
            for i, j, s in zip(mined.src_index, mined.tgt_index, mined.score, strict=True)
        ]
        valid_size = min(config.mining.valid_size, len(accepted) // 5)
        if config.mining.valid_sampling == "top":
            valid_rows = set(range(valid_size))
        else:
            valid_rows = set(rng.sample(range(len(accepted)), valid_size))
        valid = [pair for row, pair in enumerate(accepted) if row in valid_rows]
        write_pairs_tsv(out_dir / f"{job.name}.tsv", accepted)
        write_pairs_tsv(out_dir / f"{job.name}.valid.tsv", valid)
        entry: dict[str, Any] = {
            "src_sentences": len(src_texts),
            "tgt_sentences": len(tgt_texts),
            "accepted": len(accepted),
            "valid": len(valid),
            "train": len(accepted) - len(valid),
            "above_threshold": int(np.sum(mined.score > config.mining.threshold))
            if config.mining.threshold is not None
            else len(accepted),
            "min_score": float(mined.score.min()) if len(accepted) else None,
        }
        if job.gold is not None:
            predicted = {(pair.src, pair.tgt) for pair in accepted}
            precision, recall, f1 = precision_recall_f1(predicted, job.gold)
            entry.update(
                {
                    "gold": len(job.gold),
                    "precision": round(100 * precision, 2),
                    "recall": round(100 * recall, 2),
                    "f1": round(100 * f1, 2),
                }
            )
        summary["pairs"][job.name] = entry
    summary["duration_s"] = round(time.perf_counter() - started, 2)
    return summary


def load_mined(iter_dir: Path, jobs: Sequence[MiningJob]) -> tuple[list[MinedPair], list[MinedPair]]:
    """(train, valid) pairs of one finished mining stage."""
    train: list[MinedPair] = []
    valid: list[MinedPair] = []
    for job in jobs:
        everything = read_pairs_tsv(iter_dir / "mined" / f"{job.name}.tsv", job.src_lang, job.tgt_lang)
        held = read_pairs_tsv(iter_dir / "mined" / f"{job.name}.valid.tsv", job.src_lang, job.tgt_lang)
        held_keys = {(pair.src, pair.tgt) for pair in held}
        train.extend(pair for pair in everything if (pair.src, pair.tgt) not in held_keys)
        valid.extend(held)
    return train, valid


def merge_pairs(previous: list[MinedPair], new: list[MinedPair]) -> list[MinedPair]:
    """``previous`` followed by the pairs of ``new`` it lacks (``data: cumulative``)."""
    seen = {(p.src_lang, p.tgt_lang, p.src, p.tgt) for p in previous}
    merged = list(previous)
    for pair in new:
        key = (pair.src_lang, pair.tgt_lang, pair.src, pair.tgt)
        if key not in seen:
            seen.add(key)
            merged.append(pair)
    return merged
