"""Running ``polyret`` in the test process, and the argument lists the encode tests share."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from polyret import cli

#: ``polyret encode`` options of the sharded passage runs: a passage corpus, 10 vectors a shard
PASSAGE_SHARDS = ("--prefix", "passage", "--shard-size", "10")


def run_polyret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``polyret ARGS`` in this process: its exit code and what it wrote to stderr."""
    monkeypatch.setattr(sys, "argv", ["polyret", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def encode_args(model: Path, *inputs: Path) -> list[str]:
    """``encode --model MODEL --input INPUT...``; the options go after it."""
    return ["encode", "--model", str(model), "--input", *map(str, inputs)]
