import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyret.data.words import (
    DICTD_B64,
    DICTD_DIR,
    WordPair,
    extract_word_pairs,
    freedict_index_path,
    load_word_pairs,
    read_dictd,
    read_word_pairs_tsv,
    split_word_pairs,
    write_word_pairs_tsv,
)
from polyret.errors import DataError, UnknownNameError

# Articles in the shapes found in freedict-swh-eng (POS tags, sense numbers, notes) and freedict-afr-eng (no POS).
ARTICLES = {
    "00databaseshort": "Swahili-English FreeDict Dictionary\n",
    "paka": "paka /pˈaka/ <n> [sg=pl]\n\ncat\n",
    "acha": "acha /ˈatʃa/ <v>\n1.\nleave\n2.\nquit, stop doing sth\n",
    "afisa": "afisa, ofisa /afˈisa/ /ofˈisa/ <n> (pl: {maafisa})\n\nofficer\n",
    "hii": "hii /hˈii/ <pron, dem prox, agr: 4,9>\n\nthis, these\n",
    "afrika": "Afrika /afrˈika/ <n>\n\nAfrica\n",
    "mavuno": "mavuno /mavˈuno/ <n>\n\n Plural of {vuno}: harvest\n\n",
    "choka": "choka /tʃˈoka/ <v>\n\nget tired\n",
    "redio": "redio /rˈedio/ <n>\n\nradio\n",
    "radio": "radio /rˈadio/ <n>\n\nradio\n",
    "adhuhuri": "adhuhuri <n> [sg=pl]\n\n(noon), midday\n period between noon and 2 p.m.\n\n",
    "ng'ombe": "ng'ombe /ŋɡˈombe/ <n> [sg=pl]\n\ncow; cattle\n",
    "aag": "aag /ˈɑːx/\n1. ah, oh, ow\n2. woe\n",
    "baba mdogo": "baba mdogo /bˈaba mdˈoɡo/ <n>\n\nuncle\n",
}


def b64(value: int) -> str:
    digits = ""
    while True:
        value, digit = divmod(value, 64)
        digits = DICTD_B64[digit] + digits
        if not value:
            return digits


def write_dictd(directory: Path, name: str, articles: dict[str, str], extra_index_lines: tuple[str, ...] = ()) -> Path:
    body, index_lines = b"", []
    for headword, text in articles.items():
        encoded = text.encode("utf-8")
        index_lines.append(f"{headword}\t{b64(len(body))}\t{b64(len(encoded))}")
        body += encoded
    (directory / f"{name}.dict.dz").write_bytes(gzip.compress(body))
    index = directory / f"{name}.index"
    index.write_text("\n".join([*index_lines, *extra_index_lines]) + "\n", encoding="utf-8")
    return index


def test_dictd_offsets_decode_to_the_articles(tmp_path):
    entries = read_dictd(write_dictd(tmp_path, "freedict-swh-eng", ARTICLES))
    assert [(entry.headword, entry.text) for entry in entries] == list(ARTICLES.items())


def test_dictd_base64_is_big_endian_in_dictd_alphabet(tmp_path):
    # 'B/' = 1*64 + 63 = 127 is the offset, 'c' = 28 the length, per dictd's alphabet A-Z a-z 0-9 + /.
    body = b"x" * 127 + b"paka <n>\n\ncat\n" + b"y" * 14
    (tmp_path / "d.dict").write_bytes(body)
    (tmp_path / "d.index").write_text("paka\tB/\tc\n", encoding="utf-8")
    assert read_dictd(tmp_path / "d.index")[0].text == "paka <n>\n\ncat\n" + "y" * 14


def test_filtering_keeps_clean_single_word_content_pairs(tmp_path):
    pairs = extract_word_pairs(read_dictd(write_dictd(tmp_path, "freedict-swh-eng", ARTICLES)))
    assert pairs == [
        WordPair("paka", "cat"),
        WordPair("acha", "leave"),  # first sense only
        WordPair("afisa", "officer"),  # first headword of a variant list
        WordPair("redio", "radio"),  # 'radio' -> 'radio' is dropped as identical
        WordPair("adhuhuri", "midday"),  # bracketed equivalent skipped, indented note ignored
        WordPair("ng'ombe", "cow"),
        WordPair("aag", "ah"),  # no POS tag (afr-eng style), sense number on the line
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("paka\tA", "expected 'headword<TAB>b64offset<TAB>b64length'"),
        ("paka\tA\tB\textra", "expected"),
        ("paka\tA!\tB", "expected"),
        ("paka\t\tB", "expected"),
        ("paka\tA\tzzzz", "points past the end"),
    ],
)
def test_malformed_index_line_names_file_and_line(tmp_path, line, problem):
    index = write_dictd(tmp_path, "freedict-swh-eng", {"paka": ARTICLES["paka"]}, extra_index_lines=(line,))
    with pytest.raises(DataError) as caught:
        read_dictd(index)
    assert str(caught.value).startswith(f"{index}:2: ")
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_tsv_round_trip_and_malformed_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    write_word_pairs_tsv(path, [WordPair("paka", "cat"), WordPair("mbwa", "dog")])
    assert read_word_pairs_tsv(path) == [WordPair("paka", "cat"), WordPair("mbwa", "dog")]
    path.write_text("# comment\npaka\tcat\n\nmbwa dog\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:4: expected 'source<TAB>target'"):
        read_word_pairs_tsv(path)
    with pytest.raises(DataError, match="file not found"):
        read_word_pairs_tsv(tmp_path / "absent.tsv")


def test_freedict_lookup_matches_iso3_file_codes(tmp_path):
    index = write_dictd(tmp_path, "freedict-swh-eng", ARTICLES)
    assert freedict_index_path("sw", "en", root=tmp_path) == index
    assert freedict_index_path("swa", "eng", root=tmp_path) == index


def test_missing_freedict_names_the_apt_command(tmp_path):
    with pytest.raises(DataError, match=r"apt-get install -y dict-freedict-swh-eng"):
        freedict_index_path("sw", "en", root=tmp_path)


def test_unknown_language_is_rejected(tmp_path):
    path = tmp_path / "pairs.tsv"
    write_word_pairs_tsv(path, [WordPair("paka", "cat")])
    with pytest.raises(UnknownNameError):
        load_word_pairs(str(path), "zz")


def test_load_word_pairs_reads_tsv_and_dictd_paths(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    write_word_pairs_tsv(tsv, [WordPair("paka", "cat")])
    assert load_word_pairs(str(tsv), "sw") == [WordPair("paka", "cat")]
    index = write_dictd(tmp_path, "freedict-swh-eng", ARTICLES)
    assert load_word_pairs(str(index), "sw")[0] == WordPair("paka", "cat")


words = st.text(alphabet="abcdef", min_size=1, max_size=2)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.builds(WordPair, words, words), max_size=40),
    n_control=st.integers(0, 10),
    n_train=st.none() | st.integers(0, 40),
    seed=st.integers(0, 5),
)
def test_split_never_shares_a_word(pairs, n_control, n_train, seed):
    try:
        split = split_word_pairs(pairs, n_control=n_control, n_train=n_train, seed=seed)
    except DataError:
        return  # not enough separable pairs for the control size: reported, never leaked
    train_words = {word for pair in split.train for word in (pair.source, pair.target)}
    control_words = {word for pair in split.control for word in (pair.source, pair.target)}
    assert not train_words & control_words
    assert len(split.control) == n_control
    assert n_train is None or len(split.train) <= n_train
    if n_train is None:
        assert sorted(split.train + split.control, key=repr) == sorted(pairs, key=repr)
    assert split == split_word_pairs(pairs, n_control=n_control, n_train=n_train, seed=seed)


def test_split_depends_on_seed():
    pairs = [WordPair(f"s{i}", f"t{i}") for i in range(100)]
    assert split_word_pairs(pairs, 10, seed=0).control != split_word_pairs(pairs, 10, seed=1).control


def test_split_reports_too_few_pairs():
    with pytest.raises(DataError, match="only 2 of the 3 control word pairs"):
        split_word_pairs([WordPair("a", "x"), WordPair("b", "y")], n_control=3)


@pytest.mark.integration
def test_installed_freedict_swahili_gives_the_paper_split():
    if not (DICTD_DIR / "freedict-swh-eng.index").exists():
        pytest.skip("FreeDict Swahili-English not installed: apt-get install -y dict-freedict-swh-eng")
    pairs = load_word_pairs("freedict", "sw")
    assert len(pairs) > 1000
    split = split_word_pairs(pairs, n_control=63, n_train=623, seed=0)
    assert (len(split.train), len(split.control)) == (623, 63)
