"""`mine_files` and `polyret mine`: dedupe, query prefix, TSV output, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.lookup_encoder import LookupEncoder
from polyret.cli import app
from polyret.errors import DataError
from polyret.mining.margin import MiningOptions, mine_files

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
    summary = mine_files(
        encoder, src, tgt, tmp_path / "out.tsv", MiningOptions(k=2, threshold=None), show_progress=False
    )
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
    assert result.exit_code == 2 and "Invalid value for '--margin'" in result.output and "'ratio'" in result.output


def test_cli_mines_two_shard_folders(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    src = write(tmp_path / "a.txt", ["el gato duerme", "the quick brown fox", "кошка спит", "un perro"])
    tgt = write(tmp_path / "b.txt", ["the cat sat on the mat", "猫在垫子上睡觉", "paka analala"])
    for side, folder in ((src, "sa"), (tgt, "sb")):
        encoded = CliRunner().invoke(
            app,
            [
                "encode",
                "--model",
                str(tiny_model_dir),
                "--input",
                str(side),
                "--shards",
                str(tmp_path / folder),
                "--shard-size",
                "2",
            ],
        )
        assert encoded.exit_code == 0, encoded.output
    by_text = CliRunner().invoke(
        app,
        [
            "mine",
            "--model",
            str(tiny_model_dir),
            "--src",
            str(src),
            "--tgt",
            str(tgt),
            "-o",
            str(tmp_path / "texts.tsv"),
            "--keep-all",
        ],
    )
    by_shards = CliRunner().invoke(
        app,
        [
            "mine",
            "--src-shards",
            str(tmp_path / "sa"),
            "--tgt-shards",
            str(tmp_path / "sb"),
            "-o",
            str(tmp_path / "ids.tsv"),
            "--keep-all",
        ],
    )
    assert by_text.exit_code == 0 and by_shards.exit_code == 0, by_shards.output
    lines = {"a": src.read_text().splitlines(), "b": tgt.read_text().splitlines()}
    as_texts = [
        [f"{float(score):.3f}", lines["a"][int(i)], lines["b"][int(j)]]
        for score, i, j in (line.split("\t") for line in (tmp_path / "ids.tsv").read_text().splitlines())
    ]
    expected = [
        [f"{float(score):.3f}", a, b]
        for score, a, b in (
            line.split("\t") for line in (tmp_path / "texts.tsv").read_text(encoding="utf-8").splitlines()
        )
    ]
    assert as_texts == expected  # float16 shards: the same pairs and order, scores to 3 decimals

    mixed = CliRunner().invoke(
        app, ["mine", "--src-shards", str(tmp_path / "sa"), "--tgt", str(tgt), "-o", str(tmp_path / "x.tsv")]
    )
    assert "--src-shards and --tgt-shards" in str(mixed.exception)
