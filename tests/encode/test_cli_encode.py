"""`polyret encode`: .txt and .jsonl input, atomic .npy output, one-line errors for bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from polyret import cli
from polyret.encode.encoder import SentenceTransformerEncoder, read_texts
from polyret.errors import DataError


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["polyret", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def test_encode_txt_and_jsonl(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    texts = ["the cat sat", "猫在垫子上睡觉", "кошка спит"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                               for i, t in enumerate(texts)), encoding="utf-8")
    code, err = _run(monkeypatch, capsys, "encode", "--model", str(tiny_model_dir), "--input",
                     str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.npy"), "--prefix", "none",
                     "--batch-size", "2")
    assert code == 0, err
    assert "3 x 32" in err
    vectors = np.load(tmp_path / "out.npy")
    expected = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu").encode(texts, show_progress=False)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    code, err = _run(monkeypatch, capsys, "encode", "--model", str(tiny_model_dir), "--input",
                     str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out2.npy"), "--prefix", "none",
                     "--max-length", "64")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "out2.npy"), expected, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_empty_line_names_the_line(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text("first\n\nthird\n", encoding="utf-8")
    code, err = _run(monkeypatch, capsys, "encode", "--model", str(tiny_model_dir), "--input", str(source),
                     "--output", str(tmp_path / "out.npy"))
    assert code == 2
    assert f"{source}:2" in err and "empty text" in err
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(("content", "problem"), [
    ('{"text": "ok"}\n{"txt": "no"}\n', ':2: a JSON object with a "text" field'),
    ('{"text": "ok"}\nnot json\n', ":2: malformed JSON"),
    ('{"text": 3}\n', ':1: "text" is int'),
    ('{"text": "  "}\n', ":1: empty text"),
])
def test_bad_jsonl(tmp_path, content, problem):
    source = tmp_path / "in.jsonl"
    source.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_texts(source)
    assert problem in str(err.value)


def test_bad_options(tmp_path, tiny_model_dir, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text("a\n", encoding="utf-8")
    code, err = _run(monkeypatch, capsys, "encode", "--model", str(tiny_model_dir), "--input", str(source),
                     "--output", str(tmp_path / "out.npy"), "--prefix", "doc")
    assert code == 2 and "--prefix 'doc'" in err
    code, err = _run(monkeypatch, capsys, "encode", "--model", str(tiny_model_dir), "--input", str(source),
                     "--output", str(tmp_path / "out.txt"))
    assert code == 2 and ".npy" in err
    code, err = _run(monkeypatch, capsys, "encode", "--model", str(tiny_model_dir), "--input",
                     str(tmp_path / "missing.txt"), "--output", str(tmp_path / "out.npy"))
    assert code == 2 and "file not found" in err
    (tmp_path / "in.csv").write_text("a\n")
    with pytest.raises(DataError, match=r"expected a \.txt file"):
        read_texts(tmp_path / "in.csv")
