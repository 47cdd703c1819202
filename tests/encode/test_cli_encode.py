"""`polyret encode`: .txt and .jsonl input, atomic .npy output, one-line errors for bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import PASSAGE_SHARDS, encode_args, run_polyret
from polyret.encode.encoder import SentenceTransformerEncoder, read_texts
from polyret.errors import DataError


def test_encode_txt_and_jsonl(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    texts = ["the cat sat", "猫在垫子上睡觉", "кошка спит"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)),
        encoding="utf-8",
    )
    code, err = run_polyret(
        monkeypatch,
        capsys,
        *encode_args(tiny_model_dir, tmp_path / "in.txt"),
        "--output",
        str(tmp_path / "out.npy"),
        "--prefix",
        "none",
        "--batch-size",
        "2",
    )
    assert code == 0, err
    assert "3 x 32" in err
    vectors = np.load(tmp_path / "out.npy")
    expected = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu").encode(texts, show_progress=False)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    code, err = run_polyret(
        monkeypatch,
        capsys,
        *encode_args(tiny_model_dir, tmp_path / "in.jsonl"),
        "--output",
        str(tmp_path / "out2.npy"),
        "--prefix",
        "none",
        "--max-length",
        "64",
    )
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "out2.npy"), expected, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_empty_line_names_the_line(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text("first\n\nthird\n", encoding="utf-8")
    code, err = run_polyret(
        monkeypatch, capsys, *encode_args(tiny_model_dir, source), "--output", str(tmp_path / "out.npy")
    )
    assert code == 2
    assert f"{source}:2" in err and "empty text" in err
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"text": "ok"}\n{"txt": "no"}\n', ':2: a JSON object with a "text" field'),
        ('{"text": "ok"}\nnot json\n', ":2: malformed JSON"),
        ('{"text": 3}\n', ':1: "text" is int'),
        ('{"text": "  "}\n', ":1: empty text"),
    ],
)
def test_bad_jsonl(tmp_path, content, problem):
    source = tmp_path / "in.jsonl"
    source.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_texts(source)
    assert problem in str(err.value)


def test_bad_bytes_name_their_line_and_ids_come_from_jsonl(tmp_path):
    from polyret.encode.encoder import iter_records

    source = tmp_path / "in.txt"
    source.write_bytes(("line one\r\nline two\n" * 3000).encode() + b"caf\xe9\n")
    with pytest.raises(DataError, match=r"in\.txt:6001: not UTF-8 text"):
        read_texts(source)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": "a-1", "text": "x"}\n{"text": "y"}\n{"id": 7, "text": "z"}\n', encoding="utf-8")
    assert list(iter_records(jsonl)) == [("a-1", "x"), ("1", "y"), ("7", "z")]
    jsonl.write_text('{"id": [1], "text": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r':1: "id" is list'):
        list(iter_records(jsonl))


def test_bad_options(tmp_path, tiny_model_dir, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text("a\n", encoding="utf-8")
    # an unknown --prefix is a usage error listing the valid ones: tests/test_cli_habits.py
    code, err = run_polyret(
        monkeypatch, capsys, *encode_args(tiny_model_dir, source), "--output", str(tmp_path / "out.txt")
    )
    assert code == 2 and ".npy" in err
    code, err = run_polyret(
        monkeypatch,
        capsys,
        *encode_args(tiny_model_dir, tmp_path / "missing.txt"),
        "--output",
        str(tmp_path / "out.npy"),
    )
    assert code == 2 and "file not found" in err
    (tmp_path / "in.csv").write_text("a\n")
    with pytest.raises(DataError, match=r"expected a \.txt file"):
        read_texts(tmp_path / "in.csv")


def _jsonl(path, texts, prefix="d"):
    path.write_text(
        "".join(json.dumps({"id": f"{prefix}{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)),
        encoding="utf-8",
    )
    return path


PASSAGES = [f"passage {i} about {topic}" for i, topic in enumerate(["cats", "dogs", "rain", "tea", "maps"] * 9)]


def test_encode_into_shards_equals_encoding_into_one_file(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    from polyret.encode.shards import load_shards

    source = _jsonl(tmp_path / "corpus.jsonl", PASSAGES)
    common = [*encode_args(tiny_model_dir, source), "--prefix", "passage"]
    code, err = run_polyret(monkeypatch, capsys, *common, "--output", str(tmp_path / "all.npy"))
    assert code == 0, err
    code, err = run_polyret(
        monkeypatch, capsys, *common, "--shards", str(tmp_path / "shards"), "--shard-size", "10", "--dtype", "float32"
    )
    assert code == 0 and "encoded 5 shards" in err and "complete" in err, err
    ids, shards = load_shards(tmp_path / "shards")
    assert ids == [f"d{i}" for i in range(45)] and [len(shard) for shard in shards] == [10, 10, 10, 10, 5]
    np.testing.assert_allclose(np.concatenate(list(shards)), np.load(tmp_path / "all.npy"), atol=1e-6)
    code, err = run_polyret(
        monkeypatch, capsys, *common, "--shards", str(tmp_path / "shards"), "--shard-size", "10", "--dtype", "float32"
    )
    assert code == 0 and "encoded 0 shards" in err and "reused 5" in err, err
    code, err = run_polyret(monkeypatch, capsys, *common)
    assert code == 2 and "exactly one of --output" in err


def _search_args(model: Path, shards: Path, queries: Path) -> list[str]:
    return ["search", "--model", str(model), "--shards", str(shards), "--queries", str(queries)]


def _read_run(path):
    run: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        qid, q0, docid, rank, score, tag = line.split()
        assert q0 == "Q0" and int(rank) == len(run.setdefault(qid, [])) + 1 and tag.startswith("polyret-")
        run[qid].append((docid, float(score)))
    return run


def test_search_exact_and_through_a_saved_index(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    from polyret.encode.encoder import load_encoder
    from polyret.mining import index as index_module
    from polyret.mining.knn import exact_topk

    source = _jsonl(tmp_path / "corpus.jsonl", PASSAGES)
    queries = _jsonl(tmp_path / "queries.jsonl", ["cats and dogs", "a cup of tea", "maps"], prefix="q")
    sharded = [*encode_args(tiny_model_dir, source), *PASSAGE_SHARDS, "--shards", str(tmp_path / "shards")]
    code, err = run_polyret(monkeypatch, capsys, *sharded)
    assert code == 0, err
    search = [*_search_args(tiny_model_dir, tmp_path / "shards", queries), "--k", "5"]
    code, err = run_polyret(monkeypatch, capsys, *search, "-o", str(tmp_path / "exact.trec"))
    assert code == 0, err
    exact = _read_run(tmp_path / "exact.trec")

    encoder = load_encoder(str(tiny_model_dir), cache=False)
    query_vectors = encoder.encode(
        ["cats and dogs", "a cup of tea", "maps"], prefix=encoder.query_prefix, show_progress=False
    )
    passage_vectors = encoder.encode(PASSAGES, prefix=encoder.passage_prefix, show_progress=False)
    scores, rows = exact_topk(query_vectors, passage_vectors.astype(np.float16), 5)
    assert {qid: [docid for docid, _ in hits] for qid, hits in exact.items()} == {
        f"q{q}": [f"d{row}" for row in rows[q]] for q in range(3)
    }
    np.testing.assert_allclose([[s for _, s in exact[f"q{q}"]] for q in range(3)], scores, atol=1e-5)

    hnsw = [*search, "--index", "hnsw", "--index-param", "hnsw_m=8", "--index-param", "ef_search=64"]
    code, err = run_polyret(monkeypatch, capsys, *hnsw, "-o", str(tmp_path / "hnsw.trec"))
    assert code == 0, err
    assert len(list((tmp_path / "shards").glob("index-hnsw-*.faiss"))) == 1
    assert _read_run(tmp_path / "hnsw.trec").keys() == exact.keys()
    monkeypatch.setattr(index_module, "build_index", lambda *a, **k: pytest.fail("the saved index was rebuilt"))
    code, err = run_polyret(
        monkeypatch, capsys, *hnsw, "--index-param", "ef_search=32", "-o", str(tmp_path / "again.trec")
    )
    assert code == 0, err  # ef_search is a search-time setting: the saved index serves it

    ivf = [*search, "--index", "ivf-flat", "-o", str(tmp_path / "bad.trec")]
    code, err = run_polyret(monkeypatch, capsys, *ivf, "--index-param", "nlists=4")
    assert code == 2 and "nlists" in err and len(err.strip().splitlines()) == 1
    code, err = run_polyret(monkeypatch, capsys, *ivf, "--index-param", "nlist=four")
    assert code == 2 and "nlist" in err and not (tmp_path / "bad.trec").exists()


def test_search_refuses_shards_of_another_model(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    from helpers.lookup_encoder import LookupEncoder
    from polyret.encode.shards import encode_to_shards

    encode_to_shards(LookupEncoder(dim=32), PASSAGES, tmp_path / "shards", shard_size=10, show_progress=False)
    queries = _jsonl(tmp_path / "queries.jsonl", ["cats"], prefix="q")
    search = [*_search_args(tiny_model_dir, tmp_path / "shards", queries), "-o", str(tmp_path / "run.trec")]
    code, err = run_polyret(monkeypatch, capsys, *search)
    assert code == 2 and "another model" in err and not (tmp_path / "run.trec").exists()


@pytest.mark.slow
def test_torchrun_ranks_encode_their_own_shards(tmp_path, tiny_model_dir, polyret_home):
    """2 CPU processes under torchrun: each rank writes only its own shards, and the finished folder holds the same
    ids and vectors as a single-process run."""
    import os
    import subprocess

    from polyret.encode.shards import load_shards

    source = _jsonl(tmp_path / "corpus.jsonl", PASSAGES)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    encode = ["-m", "polyret.cli", *encode_args(tiny_model_dir, source), *PASSAGE_SHARDS, "--dtype", "float32"]
    encode += ["--device", "cpu"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ddp = subprocess.run(
        [*launcher, *encode, "--shards", str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=300
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "rank 0/2: encoded 3 shards" in ddp.stderr and "rank 1/2: encoded 2 shards" in ddp.stderr
    single = subprocess.run(
        [sys.executable, *encode, "--shards", str(tmp_path / "single")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    ids_ddp, shards_ddp = load_shards(tmp_path / "ddp")
    ids_single, shards_single = load_shards(tmp_path / "single")
    assert ids_ddp == ids_single == [f"d{i}" for i in range(45)]
    np.testing.assert_allclose(np.concatenate(list(shards_ddp)), np.concatenate(list(shards_single)), atol=1e-6)
    assert (tmp_path / "ddp" / "ids.txt").read_bytes() == (tmp_path / "single" / "ids.txt").read_bytes()


def test_only_newline_ends_a_text(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    """A form feed, U+0085 or U+2028 inside a line is part of its text: 2 lines are 2 vectors, not 3."""
    (tmp_path / "in.txt").write_text("page one\x0cpage two\nnext\u0085line\u2028end\n", encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "a\u2028b"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_texts(tmp_path / "in.txt") == ["page one\x0cpage two", "next\u0085line\u2028end"]
    assert read_texts(tmp_path / "in.jsonl") == ["a\u2028b"]
    args = [*encode_args(tiny_model_dir, tmp_path / "in.txt")]
    code, err = run_polyret(monkeypatch, capsys, *args, "--output", str(tmp_path / "out.npy"))
    assert code == 0, err
    assert np.load(tmp_path / "out.npy").shape == (2, 32)
