"""The mined-pair file: one writer for `polyret mine` and CRISS, refusing what it cannot hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyret.errors import DataError
from polyret.mining.pairfile import ScoredPair, one_line, read_scored_pairs, write_scored_pairs
from polyret.train.criss.mining import MinedPair, read_pairs_tsv, write_pairs_tsv


def test_pairs_round_trip_with_six_decimals(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    write_scored_pairs(path, [ScoredPair(1.23456789, "Hund", "dog"), ScoredPair(0.5, "Katze", "cat")])
    assert path.read_text(encoding="utf-8") == "1.234568\tHund\tdog\n0.500000\tKatze\tcat\n"
    assert read_scored_pairs(path) == [ScoredPair(1.234568, "Hund", "dog"), ScoredPair(0.5, "Katze", "cat")]


@pytest.mark.parametrize("text", ["a\tb", "a\nb", "a\rb"])
def test_a_text_the_file_cannot_hold_is_refused_and_nothing_is_written(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pairs.tsv"
    with pytest.raises(DataError, match=r"pairs\.tsv:2: .*tab or line break"):
        write_scored_pairs(path, [ScoredPair(1.0, "fine", "ok"), ScoredPair(0.9, text, "x")])
    assert not path.exists() and not list(tmp_path.iterdir())


def test_criss_makes_free_text_one_line_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "de-en.tsv"
    write_pairs_tsv(path, [MinedPair("de", "en", "ein\tHund  hier", "a\ndog", 1.1)])
    assert read_pairs_tsv(path, "de", "en") == [MinedPair("de", "en", "ein Hund hier", "a dog", 1.1)]
    assert one_line(" a \t b\r\nc ") == "a b c"


def test_a_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("1.0\ta\tb\nnot-a-score\ta\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.tsv:2: score 'not-a-score' is not a number"):
        read_scored_pairs(path)
    path.write_text("1.0\tonly two\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.tsv:1: expected score<TAB>src<TAB>tgt, got 2 fields"):
        read_scored_pairs(path)
