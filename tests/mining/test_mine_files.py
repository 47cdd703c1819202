"""`mine_files` and `polyret mine`: dedupe, query prefix, TSV output, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.lookup_encoder import LookupEncoder
from polyret.cli import app
from polyret.errors import DataError
from polyret.mining.margin import mine_files

VECTORS = {
    "the cat": [1, 0, 0, 0.1],
    "a dog": [0, 1, 0, 0.1],
    "tea": [0, 0, 1, 0.1],
    "die Katze": [0.9, 0.1, 0, 0.1],
    "ein Hund": [0.1, 0.9, 0, 0.1],
    "Tee": [0, 0.1, 0.9, 0.1],
}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_mines_deduplicated_sides_with_the_query_prefix(tmp_path: Path) -> None:
    src = write(tmp_path / "en.txt", ["the cat", "a dog", "the cat", "tea"])
    tgt = write(tmp_path / "de.txt", ["Tee", "ein Hund", "die Katze"])
    encoder = LookupEncoder(VECTORS, dim=4)
    summary = mine_files(encoder, src, tgt, tmp_path / "out.tsv", k=2, threshold=None, show_progress=False)
    assert [call[0] for call in encoder.calls] == ["query: ", "query: "]
    assert encoder.calls[0][1] == ["the cat", "a dog", "tea"]  # deduplicated, first-occurrence order
    assert (summary.src_texts, summary.src_unique, summary.tgt_unique, summary.pairs) == (4, 3, 3, 3)
    rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()]
    assert {(src, tgt) for _, src, tgt in rows} == {("the cat", "die Katze"), ("a dog", "ein Hund"), ("tea", "Tee")}
    scores = [float(score) for score, _, _ in rows]
    assert scores == sorted(scores, reverse=True)


def test_tab_inside_a_jsonl_text_is_a_data_error(tmp_path: Path) -> None:
    src = write(tmp_path / "en.jsonl", ['{"text": "fine"}', '{"text": "has\\ta tab"}'])
    tgt = write(tmp_path / "de.txt", ["gut"])
    with pytest.raises(DataError, match=r"en\.jsonl:2: .*tab"):
        mine_files(LookupEncoder(dim=4), src, tgt, tmp_path / "out.tsv", show_progress=False)


def test_cli_mine_with_the_tiny_model(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    src = write(tmp_path / "a.txt", ["el gato duerme", "the quick brown fox", "кошка спит", "el gato duerme"])
    tgt = write(tmp_path / "b.txt", ["the cat sat on the mat", "猫在垫子上睡觉", "paka analala"])
    out = tmp_path / "mined.tsv"
    result = CliRunner().invoke(
        app,
        ["mine", "--model", str(tiny_model_dir), "--src", str(src), "--tgt", str(tgt), "-o", str(out), "--keep-all"],
    )
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and all(len(row) == 3 for row in rows)
    assert len({row[1] for row in rows}) == 3 and len({row[2] for row in rows}) == 3  # one-to-one


def test_cli_rejects_an_unknown_margin(tmp_path: Path) -> None:
    from polyret.errors import ConfigError

    src = write(tmp_path / "a.txt", ["x"])
    result = CliRunner().invoke(
        app,
        [
            "mine",
            "--model",
            "m",
            "--src",
            str(src),
            "--tgt",
            str(src),
            "-o",
            str(tmp_path / "o.tsv"),
            "--margin",
            "cosine",
        ],
    )
    assert isinstance(result.exception, ConfigError) and "ratio" in str(result.exception)
