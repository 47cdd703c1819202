"""Unwritable places for the write-failure tests, as root too (root ignores permission bits)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def read_only_folder(tmp_path: Path) -> Path:
    """An existing folder in which no file can be created: a 0555 folder, or for root the read-only ``/sys``."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/sys/kernel")
    try:
        (folder / ".polyret-probe").touch()
    except OSError:
        return folder
    pytest.skip("running as root without a read-only file system (/sys) to test against")
