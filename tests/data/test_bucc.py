"""BUCC 2018 reader: the official layout, the text->ID map, and one-line errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyret.data.bucc import BuccSide, read_bucc, read_bucc_split, read_side
from polyret.errors import DataError, UnknownNameError


def write_split(root: Path, lang: str, split: str, xx: list[str], en: list[str], gold: list[str]) -> None:
    folder = root / f"{lang}-en"
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, lines in ((lang, xx), ("en", en), ("gold", gold)):
        (folder / f"{lang}-en.{split}.{suffix}").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def test_reads_the_official_layout(tmp_path: Path) -> None:
    write_split(
        tmp_path,
        "de",
        "sample",
        ["de-000000001\tHallo Welt", "de-000000002\tGuten Tag"],
        ["en-000000001\tgood day", "en-000000002\thello world", "en-000000003\tnoise"],
        ["de-000000001\ten-000000002", "de-000000002\ten-000000001"],
    )
    split = read_bucc_split("de", "sample", tmp_path)
    assert split.xx.ids == ["de-000000001", "de-000000002"] and split.xx.texts == ["Hallo Welt", "Guten Tag"]
    assert len(split.en.ids) == 3
    assert split.gold == {("de-000000001", "en-000000002"), ("de-000000002", "en-000000001")}


def test_texts_with_several_ids_are_dropped_from_the_map() -> None:
    side = BuccSide(["a", "b", "c", "d"], ["same", "unique", "same", "other"])
    assert side.text_to_id() == {"unique": "b", "other": "d"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [("de-1 no tab here", "expected ID<TAB>sentence"), ("de-1\t ", "expected ID<TAB>sentence")],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "de-en.sample.de"
    path.write_text(f"de-0\tfine\n\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"de-en\.sample\.de:3: {problem}"):
        read_side(path)


def test_repeated_ids_and_non_utf8_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.de"
    path.write_text("a\tone\na\ttwo\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.de:2: ID 'a' repeats"):
        read_side(path)
    path.write_bytes(b"a\tok\nb\t\xff\xfe\n")
    with pytest.raises(DataError, match=r"x\.de:2: not UTF-8"):
        read_side(path)


def test_gold_naming_unknown_ids_is_an_error(tmp_path: Path) -> None:
    write_split(tmp_path, "fr", "training", ["fr-1\tbonjour"], ["en-1\thello"], ["fr-1\ten-9"])
    with pytest.raises(DataError, match=r"fr-en\.training\.gold: gold pair fr-1 en-9 names an ID absent"):
        read_bucc_split("fr", "training", tmp_path)


def test_missing_files_say_where_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ru-en\.sample\.ru: BUCC file not found; download bucc2018-ru-en"):
        read_bucc(["ru"], tmp_path)


@pytest.mark.parametrize("lang", ["../../x", "xx", "sw"])
def test_languages_are_checked_against_the_language_table(tmp_path: Path, lang: str) -> None:
    with pytest.raises(UnknownNameError, match="unknown BUCC language"):
        read_bucc_split(lang, "sample", tmp_path)
    with pytest.raises(UnknownNameError, match="unknown BUCC language"):
        read_bucc(["de", lang], tmp_path)  # checked before any file is read


def test_paths_are_built_from_the_canonical_code(tmp_path: Path) -> None:
    write_split(tmp_path, "de", "sample", ["d1\tHallo"], ["e1\thello"], ["d1\te1"])
    assert read_bucc_split("deu-../../x", "sample", tmp_path).lang == "de"
