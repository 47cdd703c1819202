"""The mined-pair file: ``score<TAB>src<TAB>tgt`` lines, best first, written atomically.

``polyret mine`` writes it (texts, or shard ids with ``--src-shards``), and so does every CRISS iteration
(``iter_t/mined/<src>-<tgt>.tsv``), which reads it back to train. Each field is one line of text, so the writer
refuses a text holding a tab or a line break instead of writing a file that reads back differently; callers with free
text make it one line first (:func:`one_line`). Scores carry 6 decimals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from polyret.errors import DataError
from polyret.io import atomic_write, iter_lines

FIELDS = "score<TAB>src<TAB>tgt"


@dataclass(frozen=True)
class ScoredPair:
    score: float
    src: str
    tgt: str


def one_line(text: str) -> str:
    """``text`` with every run of white space (tabs and line breaks included) collapsed to one space."""
    return " ".join(text.split())


def _unsafe(text: str) -> bool:
    return "\t" in text or "\n" in text or "\r" in text


def write_scored_pairs(path: str | Path, pairs: Iterable[ScoredPair]) -> None:
    """Write ``pairs`` in order; a text with a tab or line break is a :class:`DataError` and nothing is written."""
    target = Path(path)
    with atomic_write(target) as handle:
        for row, pair in enumerate(pairs, start=1):
            if _unsafe(pair.src) or _unsafe(pair.tgt):
                raise DataError.at(target, row, "a text contains a tab or line break, which the pair file cannot hold")
            handle.write(f"{pair.score:.6f}\t{pair.src}\t{pair.tgt}\n")


def read_scored_pairs(path: str | Path) -> list[ScoredPair]:
    """Every pair of a file :func:`write_scored_pairs` wrote; a malformed line is a DataError naming it."""
    source = Path(path)
    pairs = []
    for number, line in iter_lines(source, blank_lines="keep"):  # every line is a pair: a blank one is malformed
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError.at(source, number, f"expected {FIELDS}, got {len(fields)} fields")
        try:
            score = float(fields[0])
        except ValueError as err:
            raise DataError.at(source, number, f"score {fields[0]!r} is not a number") from err
        pairs.append(ScoredPair(score, fields[1], fields[2]))
    return pairs
