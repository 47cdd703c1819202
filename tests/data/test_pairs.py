"""Training-data readers: JSONL (both layouts), LAReQA/SQuAD conversion, TSV translation sets, HF datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyret.data.pairs import (
    ColumnMapping,
    LangEntry,
    ParallelColumns,
    TrainingSet,
    TrainItem,
    from_hf_dataset,
    from_lareqa,
    items_from_bitext,
    load_hf_dataset,
    read_jsonl,
    read_tsv,
    write_jsonl,
)
from polyret.errors import DataError


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_nested_and_long_layouts(tmp_path):
    nested = write_lines(
        tmp_path / "nested.jsonl",
        [
            json.dumps(
                {
                    "id": "a",
                    "langs": {
                        "en": {"query": "q a", "passage": "p a", "negatives": ["n a"]},
                        "deu": {"query": "q a de", "passage": "p a de"},
                    },
                }
            ),
            "",
            json.dumps({"id": 7, "langs": {"en": {"query": "q 7", "passage": "p 7"}}}),
        ],
    )
    data = read_jsonl(nested)
    assert data.name == "nested" and len(data) == 2
    assert data.languages == ("de", "en")  # ISO 639-3 deu normalised to de
    assert data.items[0].langs["en"] == LangEntry("q a", "p a", ("n a",))
    assert data.items[1].id == "7"

    long = write_lines(
        tmp_path / "long.jsonl",
        [
            json.dumps({"id": "a", "lang": "en", "query": "q a", "passage": "p a"}),
            json.dumps({"id": "b", "lang": "en", "query": "q b", "passage": "p b"}),
            json.dumps({"id": "a", "lang": "sw", "query": "q a sw", "passage": "p a sw"}),
        ],
    )
    data = read_jsonl(long, name="mine")
    assert data.name == "mine"
    assert [item.id for item in data.items] == ["a", "b"]
    assert set(data.items[0].langs) == {"en", "sw"}
    assert data.language_counts() == {"en": 2, "sw": 1}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": "a", "lang": "en", "query": "q"', "malformed JSON"),
        ('{"id": "a", "lang": "en", "query": "q"}', "'passage'"),
        ('{"id": "a", "lang": "xx-nope", "query": "q", "passage": "p"}', "unknown language"),
        ('{"id": "", "lang": "en", "query": "q", "passage": "p"}', "'id'"),
        ('{"id": "a", "query": "q", "passage": "p"}', "either 'langs'"),
        ('{"id": "a", "lang": "en", "query": "q", "passage": "p", "negatives": "n"}', "negatives"),
        ('{"id": "z", "lang": "en", "query": "q", "passage": "p"}', "language 'en' twice"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_jsonl_bad_lines_name_file_and_line(tmp_path, line, problem):
    path = write_lines(
        tmp_path / "bad.jsonl", [json.dumps({"id": "z", "lang": "en", "query": "q", "passage": "p"}), line]
    )
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    message = str(err.value)
    assert f"{path}:2" in message and problem in message
    assert "\n" not in message


def test_jsonl_round_trip(tmp_path):
    data = TrainingSet("x", [TrainItem("1", {"en": LangEntry("q", "p", ("n",)), "de": LangEntry("qd", "pd")})])
    write_jsonl(data, tmp_path / "x.jsonl")
    again = read_jsonl(tmp_path / "x.jsonl")
    assert again.items == data.items


def test_mono_and_cross_pairs():
    data = TrainingSet(
        "x",
        [
            TrainItem(
                "1",
                {
                    "de": LangEntry("q1de", "p1de", ("n1de",)),
                    "en": LangEntry("q1en", "p1en"),
                    "sw": LangEntry("q1sw", "p1sw"),
                },
            ),
            TrainItem("2", {"en": LangEntry("q2en", "p2en")}),
        ],
    )
    mono = list(data.mono_pairs())
    assert [(p.item_id, p.query_lang) for p in mono] == [("1", "de"), ("1", "en"), ("1", "sw"), ("2", "en")]
    assert all(not p.cross for p in mono)
    cross = list(data.cross_pairs())
    assert len(cross) == 6 and all(p.cross for p in cross)
    en_de = next(p for p in cross if (p.query_lang, p.passage_lang) == ("en", "de"))
    assert (en_de.query, en_de.passage, en_de.negatives) == ("q1en", "p1de", ("n1de",))
    assert len(list(data.cross_pairs(["en", "de"]))) == 2


def test_duplicate_item_ids_are_rejected():
    with pytest.raises(DataError, match="appears twice"):
        TrainingSet("x", [TrainItem("1", {"en": LangEntry("q", "p")}), TrainItem("1", {"de": LangEntry("q", "p")})])


def test_split_holds_out_whole_items_deterministically():
    data = TrainingSet("x", [TrainItem(str(i), {"en": LangEntry(f"q{i}", f"p{i}")}) for i in range(40)])
    train, held = data.split(0.25, seed=3)
    assert len(train) == 30 and len(held) == 10
    assert not {i.id for i in train.items} & {i.id for i in held.items}
    assert [i.id for i in data.split(0.25, seed=3)[1].items] == [i.id for i in held.items]


def _squad(tmp_path: Path, lang: str, questions: list[tuple[str, str, int]]) -> None:
    """A tiny LAReQA-style (SQuAD v1.1 + sentences) file: one paragraph of two sentences."""
    sentences = [f"First {lang} sentence.", f"Second {lang} sentence."]
    context = " ".join(sentences)
    breaks = [[0, len(sentences[0])], [len(sentences[0]) + 1, len(context)]]
    qas = [
        {"id": qid, "question": text, "answers": [{"text": "x", "answer_start": start}]}
        for qid, text, start in questions
    ]
    payload = {
        "data": [
            {
                "title": "t",
                "paragraphs": [{"context": context, "sentences": sentences, "sentence_breaks": breaks, "qas": qas}],
            }
        ]
    }
    folder = tmp_path / "lareqa" / "mlqa-r"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{lang}.json").write_text(json.dumps(payload), encoding="utf-8")


def test_from_lareqa_links_languages_by_question_id(tmp_path):
    _squad(tmp_path, "en", [("q1", "Which first?", 2), ("q2", "Which second?", 20)])
    _squad(tmp_path, "de", [("q2", "Welcher zweite?", 22)])
    data = from_lareqa("mlqa-r", root=tmp_path)
    by_id = {item.id: item for item in data.items}
    assert set(by_id) == {"q1", "q2"} and data.name == "mlqa-r"
    assert set(by_id["q2"].langs) == {"de", "en"}
    entry = by_id["q2"].langs["de"]
    assert entry.query == "Welcher zweite?"
    assert entry.passage == "Second de sentence. First de sentence. Second de sentence."  # sentence + ' ' + paragraph
    sentence_only = from_lareqa("mlqa-r", ["en"], tmp_path, candidate_text="sentence")
    assert {i.id: i.langs["en"].passage for i in sentence_only.items}["q1"] == "First en sentence."


@pytest.mark.integration
def test_from_lareqa_on_real_mlqa(shared_data):
    data = from_lareqa("mlqa-r", root=shared_data)
    assert len(data) == 1148  # every item includes en (PROTOCOLS §3.1)
    spans = sorted(len(item.langs) for item in data.items)
    assert spans.count(4) == 820 and spans.count(3) == 263 and spans.count(2) == 65


def test_tsv_per_language_files(tmp_path):
    en = write_lines(tmp_path / "en.tsv", ["1\tq one\tp one\tn one", "2\tq two\tp two"])
    de = write_lines(tmp_path / "de.tsv", ["2\tq zwei\tp zwei"])
    data = read_tsv({"en": en, "de": de}, name="tsv")
    items = {i.id: i for i in data.items}
    assert items["1"].langs["en"].negatives == ("n one",)
    assert set(items["2"].langs) == {"de", "en"}
    bad = write_lines(tmp_path / "bad.tsv", ["1\tq\tp", "2\tonly two"])
    with pytest.raises(DataError, match=rf"{bad}:2"):
        read_tsv({"en": bad})


def test_tsv_mmarco_layout(tmp_path):
    queries = {
        "en": write_lines(tmp_path / "q.en.tsv", ["10\twhat is x", "11\twhat is y"]),
        "es": write_lines(tmp_path / "q.es.tsv", ["10\tqué es x"]),
    }
    passages = {
        "en": write_lines(tmp_path / "p.en.tsv", ["a\tx is a letter", "b\ty is a letter", "c\tz"]),
        "es": write_lines(tmp_path / "p.es.tsv", ["a\tx es una letra", "c\tzeta"]),
    }
    pairs = write_lines(tmp_path / "pairs.tsv", ["10\ta\tc", "11\tb"])
    data = read_tsv(queries=queries, passages=passages, pairs=pairs)
    items = {i.id: i for i in data.items}
    assert items["10"].langs["es"] == LangEntry("qué es x", "x es una letra", ("zeta",))
    assert set(items["11"].langs) == {"en"}  # no Spanish translation of query 11


def test_hf_dataset_long_layout():
    from datasets import Dataset

    rows = Dataset.from_dict(
        {
            "id": ["a", "a", "b"],
            "lang": ["en", "de", "en"],
            "query": ["qa", "qad", "qb"],
            "passage": ["pa", "pad", "pb"],
            "negatives": [["na"], [], []],
        }
    )
    data = from_hf_dataset(rows, "hf")
    assert [i.id for i in data.items] == ["a", "b"]
    assert data.items[0].langs["en"].negatives == ("na",)
    with pytest.raises(DataError, match="'id' column"):
        from_hf_dataset(Dataset.from_dict({"query": ["q"]}), "bad")


def test_hf_sentence_transformers_columns_with_a_fixed_language():
    from datasets import Dataset

    rows = Dataset.from_dict({"anchor": ["q1", "q2"], "positive": ["p1", "p2"], "negative": ["n1", None]})
    data = from_hf_dataset(rows, "st", ColumnMapping(negatives=("negative",), lang="swa"))
    assert [item.id for item in data.items] == ["0", "1"]  # no id column: each row is its own item
    assert data.items[0].langs == {"sw": LangEntry("q1", "p1", ("n1",))}
    assert data.items[1].langs == {"sw": LangEntry("q2", "p2")}


def test_hf_columns_with_a_language_column_and_item_ids_group_translations():
    rows = [
        {"qid": 7, "language": "en", "question": "what", "answer": "this"},
        {"qid": 7, "language": "de", "question": "was", "answer": "das"},
        {"qid": 8, "language": "en", "question": "who", "answer": "her"},
    ]
    mapping = ColumnMapping(anchor="question", positive="answer", lang_column="language", id_column="qid")
    data = from_hf_dataset(rows, "grouped", mapping)
    assert [(item.id, sorted(item.langs)) for item in data.items] == [("7", ["de", "en"]), ("8", ["en"])]
    with pytest.raises(DataError, match="language 'en' twice"):
        from_hf_dataset([*rows, rows[0]], "twice", mapping)


def test_hf_parallel_sentences_layout():
    rows = [{"english": "cat", "non_english": "paka"}, {"english": "dog", "non_english": "mbwa"}]
    data = from_hf_dataset(rows, "talks", ParallelColumns(lang="sw"))
    assert data.items[1].langs == {"en": LangEntry("dog", "dog"), "sw": LangEntry("mbwa", "mbwa")}


def test_hf_layout_errors_name_the_fix():
    from datasets import Dataset

    st = Dataset.from_dict({"anchor": ["q"], "positive": ["p"]})
    with pytest.raises(DataError, match=r"columns: \{lang: <code>\}"):
        from_hf_dataset(st, "st")
    with pytest.raises(DataError, match="parallel"):
        from_hf_dataset(Dataset.from_dict({"english": ["a"], "non_english": ["b"]}), "pl")
    with pytest.raises(DataError, match="no column 'negative'"):
        from_hf_dataset(st, "st", ColumnMapping(negatives=("negative",), lang="sw"))
    with pytest.raises(DataError, match="either lang"):
        from_hf_dataset(st, "st", ColumnMapping())
    with pytest.raises(DataError, match="row 0: field 'positive'"):
        from_hf_dataset(Dataset.from_dict({"anchor": ["q"], "positive": [""]}), "st", ColumnMapping(lang="sw"))


def test_load_hf_dataset_reads_saved_folders_and_local_files(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = Dataset.from_dict({"anchor": ["q1", "q2"], "positive": ["p1", "p2"]})
    rows.save_to_disk(str(tmp_path / "single"))
    DatasetDict({"train": rows, "dev": rows.select([0])}).save_to_disk(str(tmp_path / "dict"))
    rows.to_json(str(tmp_path / "pairs.jsonl"))
    rows.to_csv(str(tmp_path / "pairs.csv"), index=False)
    mapping = ColumnMapping(lang="de")
    assert len(load_hf_dataset(str(tmp_path / "single"), columns=mapping)) == 2
    assert len(load_hf_dataset(str(tmp_path / "dict"), split="dev", columns=mapping)) == 1
    for name in ("pairs.jsonl", "pairs.csv"):
        data = load_hf_dataset(str(tmp_path / name), columns=mapping)
        assert data.name == "pairs" and data.items[1].langs == {"de": LangEntry("q2", "p2")}


def test_bitext_items():
    data = items_from_bitext([("en", "hello", "de", "hallo"), ("en", "cat", "sw", "paka")])
    assert data.items[1].langs["sw"] == LangEntry("paka", "paka")
    with pytest.raises(DataError, match="same language"):
        items_from_bitext([("en", "a", "en", "b")])


@pytest.mark.parametrize("bad_line", [1, 3, 800])
def test_jsonl_bad_byte_names_its_exact_line(tmp_path, bad_line):
    """Bytes are decoded line by line: text-mode decoding in chunks named the chunk's first line instead."""
    rows = [
        json.dumps(
            {"id": f"i{i}", "lang": "de", "query": f"Frage {i} " + "ü" * 40, "passage": "Antwort"}, ensure_ascii=False
        )
        for i in range(1, 1001)
    ]
    lines = [row.encode() for row in rows]
    lines[bad_line - 1] = lines[bad_line - 1].replace("ü".encode(), b"\xfc", 1)  # one latin-1 byte
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=rf"train\.jsonl:{bad_line}: not UTF-8"):
        read_jsonl(path)


def test_jsonl_line_separators_inside_strings_are_text(tmp_path):
    """A raw U+2028 or U+0085 is valid inside a JSON string; str.splitlines() used to cut the line there."""
    row = {"id": "a", "lang": "de", "query": "eins\u2028zwei", "passage": "drei\u0085vier\x0cfünf"}
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    entry = read_jsonl(path).items[0].langs["de"]
    assert (entry.query, entry.passage) == ("eins\u2028zwei", "drei\u0085vier\x0cfünf")
