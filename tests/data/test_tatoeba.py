"""Tatoeba v1 reader: raw aligned lines, language codes, and one-line errors for every kind of bad file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyret.data.languages import TATOEBA_V1_CODES
from polyret.data.tatoeba import available_codes, read_tatoeba_pair, tatoeba_dir
from polyret.errors import DataError, UnknownNameError


def write_pair(root: Path, code: str, xx: bytes, en: bytes) -> Path:
    folder = tatoeba_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"tatoeba.{code}-eng.{code}").write_bytes(xx)
    (folder / f"tatoeba.{code}-eng.eng").write_bytes(en)
    return folder


def test_reads_raw_lines_in_file_order(tmp_path: Path) -> None:
    write_pair(tmp_path, "swh", b"Habari yako?\nzz b\r\nNdiyo\n", b"How are you?\na b\nYes\n")
    pair = read_tatoeba_pair("sw", root=tmp_path)
    assert pair.lang == "sw" and len(pair) == 3
    assert pair.xx == ["Habari yako?", "zz b", "Ndiyo"]  # unsorted, CRLF ending removed
    assert pair.en == ["How are you?", "a b", "Yes"]
    assert pair.path.name == "tatoeba.swh-eng.swh"
    assert read_tatoeba_pair("swh", root=tmp_path).xx == pair.xx


def test_file_without_final_newline(tmp_path: Path) -> None:
    write_pair(tmp_path, "cmn", "你好\n谢谢".encode(), b"Hello\nThanks")
    assert read_tatoeba_pair("zh", root=tmp_path).xx == ["你好", "谢谢"]


def test_misaligned_pair_names_file_and_line(tmp_path: Path) -> None:
    folder = write_pair(tmp_path, "deu", b"a\nb\nc\n", b"x\ny\n")
    with pytest.raises(DataError, match=re.escape(f"{folder / 'tatoeba.deu-eng.eng'}:3: misaligned pair: 2 lines")):
        read_tatoeba_pair("de", root=tmp_path)


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    folder = write_pair(tmp_path, "fra", b"un\n\xff\xfedeux\n", b"one\ntwo\n")
    with pytest.raises(DataError, match=re.escape(f"{folder / 'tatoeba.fra-eng.fra'}:2: not UTF-8")):
        read_tatoeba_pair("fr", root=tmp_path)


@pytest.mark.parametrize(
    ("xx", "en", "problem"),
    [
        (b"", b"", "empty file"),
        (b"a\n\nc\n", b"x\ny\nz\n", ":2: empty sentence"),
        (b"a\n", b" \n", ":1: empty sentence"),
    ],
)
def test_empty_input(tmp_path: Path, xx: bytes, en: bytes, problem: str) -> None:
    write_pair(tmp_path, "ita", xx, en)
    with pytest.raises(DataError, match=re.escape(problem)):
        read_tatoeba_pair("it", root=tmp_path)


def test_missing_half_of_a_pair(tmp_path: Path) -> None:
    folder = write_pair(tmp_path, "ita", b"a\n", b"x\n")
    (folder / "tatoeba.ita-eng.eng").unlink()
    with pytest.raises(DataError, match=r"tatoeba\.ita-eng\.eng: file not found"):
        read_tatoeba_pair("it", root=tmp_path)


def test_unknown_language_lists_available(tmp_path: Path) -> None:
    write_pair(tmp_path, "swh", b"a\n", b"x\n")
    write_pair(tmp_path, "deu", b"a\n", b"x\n")
    assert available_codes(tmp_path) == ["deu", "swh"]
    with pytest.raises(UnknownNameError, match=r"unknown Tatoeba language 'fr'; valid: deu, swh"):
        read_tatoeba_pair("fr", root=tmp_path)
    with pytest.raises(UnknownNameError, match=r"'klingon'; valid: deu, swh"):
        read_tatoeba_pair("klingon", root=tmp_path)


def test_missing_folder_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="set POLYRET_DATA_DIR"):
        read_tatoeba_pair("sw", root=tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(xx=st.binary(max_size=60), en=st.binary(max_size=60))
def test_hostile_bytes_give_a_pair_or_a_data_error(tmp_path: Path, xx: bytes, en: bytes) -> None:
    write_pair(tmp_path, "swh", xx, en)
    try:
        pair = read_tatoeba_pair("sw", root=tmp_path)
    except DataError as err:
        assert "\n" not in str(err) and "tatoeba.swh-eng" in str(err)
    else:
        assert len(pair.xx) == len(pair.en) > 0 and all(line.strip() for line in pair.xx + pair.en)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), min_size=1, max_size=12
        ).filter(str.strip),
        min_size=1,
        max_size=8,
    ),
    cut=st.integers(min_value=1, max_value=7),
)
def test_truncated_english_side_is_reported(tmp_path: Path, lines: list[str], cut: int) -> None:
    text = "\n".join(lines) + "\n"
    english = "\n".join(lines[: max(0, len(lines) - cut)])
    write_pair(tmp_path, "swh", text.encode(), english.encode())
    with pytest.raises(DataError, match=f"tatoeba.swh-eng.eng:{max(0, len(lines) - cut) + 1}: misaligned pair"):
        read_tatoeba_pair("sw", root=tmp_path)


def _readme_counts(root: Path) -> dict[str, int]:
    text = (root / "README.md").read_text(encoding="utf-8")
    block = text.split("All 112 pairs (code:lines):", 1)[1].split("\n\n", 1)[0]
    return {code: int(lines) for code, lines in re.findall(r"([a-z]{3}):(\d+)", block)}


@pytest.mark.integration
def test_all_112_pairs_match_the_readme_counts(shared_data: Path) -> None:
    expected = _readme_counts(shared_data)
    assert len(expected) == 112 and sorted(expected) == available_codes(shared_data) == sorted(TATOEBA_V1_CODES)
    counts = {code: len(read_tatoeba_pair(code, shared_data)) for code in TATOEBA_V1_CODES}
    assert counts == expected
    small = {"jv": 205, "te": 234, "ta": 307, "sw": 390, "th": 548, "kk": 575, "ml": 687, "ka": 746}
    assert {code: len(read_tatoeba_pair(code, shared_data)) for code in small} == small  # PROTOCOLS.md §3.2
