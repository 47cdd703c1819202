"""polyret.io: the one line reader, the one atomic folder writer, the writability pre-flight and write failures."""

from __future__ import annotations

import errno
import gzip
from pathlib import Path

import numpy as np
import pytest

from helpers.filesystem import read_only_folder
from polyret import io
from polyret.errors import DataError, OutputError


# ------------------------------------------------------------------------------------------------ line reader
def test_lines_end_at_newline_only(tmp_path: Path) -> None:
    """U+2028, U+0085, form feed and a lone CR are characters inside a line, not line ends (str.splitlines
    would split on each); one trailing CR is dropped; a final line without a newline counts."""
    path = tmp_path / "in.txt"
    path.write_bytes("a\u2028b\nc\u0085d\r\ne\x0cf\ng\rh\nlast".encode())
    assert list(io.iter_lines(path, blank_lines="keep")) == [
        (1, "a\u2028b"),
        (2, "c\u0085d"),
        (3, "e\x0cf"),
        (4, "g\rh"),
        (5, "last"),
    ]


def test_blank_lines_are_counted_and_kept_or_skipped(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"one\n\n  \r\ntwo\n\n")
    assert list(io.iter_lines(path, blank_lines="keep")) == [(1, "one"), (2, ""), (3, "  "), (4, "two"), (5, "")]
    assert list(io.iter_lines(path, blank_lines="skip")) == [(1, "one"), (4, "two")]
    assert io.read_lines(path, blank_lines="skip") == ["one", "two"]


@pytest.mark.parametrize("bad_line", [1, 3, 800])
def test_a_bad_byte_names_its_exact_line(tmp_path: Path, bad_line: int) -> None:
    lines = [f"line {i} ".encode() + "ü".encode() * (i % 50) for i in range(1, 1001)]  # multi-byte text
    lines[bad_line - 1] = b"caf\xe9"  # latin-1
    path = tmp_path / "in.txt"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=rf"in\.txt:{bad_line}: not UTF-8 text"):
        list(io.iter_lines(path, blank_lines="keep"))


def test_gzip_missing_and_damaged_files(tmp_path: Path) -> None:
    packed = tmp_path / "in.jsonl.gz"
    packed.write_bytes(gzip.compress(b"x\ny\n"))
    assert io.read_lines(packed, blank_lines="keep") == ["x", "y"]
    packed.write_bytes(gzip.compress(b"x\ny\n")[:-12])
    with pytest.raises(DataError, match=r"in\.jsonl\.gz:\d+: unreadable"):
        list(io.iter_lines(packed, blank_lines="keep"))
    with pytest.raises(DataError, match=r"nothing\.txt: file not found"):
        list(io.iter_lines(tmp_path / "nothing.txt", blank_lines="keep"))
    with pytest.raises(DataError, match="is a folder"):
        list(io.iter_lines(tmp_path, blank_lines="keep"))


def test_reading_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"good\n\xff\n")
    lines = io.iter_lines(path, blank_lines="keep")
    assert next(lines) == (1, "good")  # the bad second line is not read yet
    with pytest.raises(DataError, match=r":2: not UTF-8"):
        next(lines)


# ------------------------------------------------------------------------------------------------ folder writer
def test_folder_writer_replaces_the_old_copy_only_when_the_new_one_is_complete(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def fill(version: str):
        def write(folder: Path) -> None:
            (folder / "weights").write_text(version)

        return write

    assert io.write_dir_atomically(target, fill("v1")) == target
    io.write_dir_atomically(target, fill("v2"))
    assert (target / "weights").read_text() == "v2"

    def broken(folder: Path) -> None:
        (folder / "weights").write_text("half")
        raise RuntimeError("killed while saving")

    with pytest.raises(RuntimeError):
        io.write_dir_atomically(target, broken)
    assert (target / "weights").read_text() == "v2"  # the old copy is untouched
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]  # no temporary folder left


# ------------------------------------------------------------------------------------------------ pre-flight
def test_preflight_names_each_unwritable_output(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match=r"a-file: output is a file; give a folder path"):
        io.check_writable(a_file, folder=True)
    with pytest.raises(OutputError, match=r"output is a folder; give a file path"):
        io.check_writable(tmp_path, folder=False)
    with pytest.raises(OutputError, match=r"a-file is a file, so the output folder cannot be created there"):
        io.check_writable(a_file / "sub" / "out.npy")
    with pytest.raises(OutputError, match=r"out\.npy: output is not writable"):
        io.check_writable(read_only_folder(tmp_path) / "new" / "out.npy")
    io.check_writable(tmp_path / "new" / "deeper" / "out.npy")  # missing folders that can be created are fine
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


# ------------------------------------------------------------------------------------------------ write failures
def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    full_disk = r"out\.npy: cannot write \(no space left on the device\)"
    with pytest.raises(OutputError, match=full_disk), io.atomic_write(target, "wb") as handle:
        np.save(handle, np.zeros(3))
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


def test_a_short_write_on_a_nearly_full_disk_is_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy reports a short write as ``OSError("N requested and M written")``, without an errno."""

    def short(*args, **kwargs):
        raise OSError("4096 requested and 0 written")

    monkeypatch.setattr(np, "save", short)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 0})())
    with pytest.raises(OutputError, match="no space left"), io.atomic_write(tmp_path / "out.npy", "wb") as handle:
        np.save(handle, np.zeros(3))
    assert not list(tmp_path.iterdir())


def test_an_input_error_inside_the_block_is_not_called_a_write_failure(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), io.atomic_write(tmp_path / "out.txt") as handle:
        handle.write((tmp_path / "missing-input.txt").read_text())
    assert not list(tmp_path.iterdir())


def test_a_folder_where_the_file_goes_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "out.json").mkdir()
    with pytest.raises(OutputError, match=r"out\.json: cannot write \(Is a directory\)"):
        io.write_json(tmp_path / "out.json", {"a": 1})
    assert [path.name for path in tmp_path.iterdir()] == ["out.json"]


def test_a_copy_finished_meanwhile_by_another_process_can_be_kept(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def racing(folder: Path) -> None:
        (folder / "weights").write_text("mine")
        target.mkdir()  # the other process renames its finished copy into place first
        (target / "weights").write_text("theirs")

    io.write_dir_atomically(target, racing, keep_existing=lambda existing: (existing / "weights").exists())
    assert (target / "weights").read_text() == "theirs"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
