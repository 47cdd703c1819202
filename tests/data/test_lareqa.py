"""LAReQA reader: canonical order, answer sentences, errors, and the published counts (integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyret.data.lareqa import available_languages, lareqa_dir, load_lareqa
from polyret.errors import DataError, UnknownNameError


def _paragraph(sentences: list[str], qas: list[tuple[str, str, int]]) -> dict:
    context = " ".join(sentences)
    breaks, start = [], 0
    for sentence in sentences:
        breaks.append([start, start + len(sentence)])
        start += len(sentence) + 1
    return {
        "context": context,
        "sentences": sentences,
        "sentence_breaks": breaks,
        "qas": [{"id": qid, "question": q, "answers": [{"text": "x", "answer_start": pos}]} for qid, q, pos in qas],
    }


def write_lareqa(root: Path, name: str = "xquad-r") -> Path:
    """Two languages, written in reverse code order to check canonical sorting."""
    folder = root / "lareqa" / name
    folder.mkdir(parents=True)
    en = {
        "data": [
            {
                "title": "A",
                "paragraphs": [
                    _paragraph(
                        ["Cats sleep.", "Dogs bark loudly."], [("q1", "Who barks?", 12), ("q2", "Who sleeps?", 0)]
                    ),
                ],
            },
            {
                "title": "B",
                "paragraphs": [
                    _paragraph(["Rain falls.", "Sun shines."], [("q3", "What falls?", 11)]),  # 11 = the gap (space)
                ],
            },
        ]
    }
    de = {
        "data": [
            {
                "title": "A",
                "paragraphs": [
                    _paragraph(
                        ["Katzen schlafen.", "Hunde bellen laut."],
                        [("q1", "Wer bellt?", 17), ("q2", "Wer schläft?", 3)],
                    ),
                ],
            },
            {
                "title": "B",
                "paragraphs": [
                    _paragraph(["Regen fällt.", "Die Sonne scheint."], [("q3", "Was fällt?", 0)]),
                ],
            },
        ]
    }
    (folder / "en.json").write_text(json.dumps(en), encoding="utf-8")
    (folder / "de.json").write_text(json.dumps(de), encoding="utf-8")
    return root


def test_load_tiny_canonical_order_and_answers(tmp_path):
    data = load_lareqa("xquad-r", root=write_lareqa(tmp_path))
    assert data.languages == ("de", "en")
    assert [(c.lang, c.article, c.paragraph, c.sentence) for c in data.candidates] == [
        ("de", 0, 0, 0),
        ("de", 0, 0, 1),
        ("de", 1, 0, 0),
        ("de", 1, 0, 1),
        ("en", 0, 0, 0),
        ("en", 0, 0, 1),
        ("en", 1, 0, 0),
        ("en", 1, 0, 1),
    ]
    assert data.candidates[1].text == "Hunde bellen laut."
    assert data.candidates[1].context == "Katzen schlafen. Hunde bellen laut."
    by_key = {(q.lang, q.id): q.answer_candidates for q in data.questions}
    assert by_key == {
        ("de", "q1"): (1,),
        ("de", "q2"): (0,),
        ("de", "q3"): (2,),
        ("en", "q1"): (5,),
        ("en", "q2"): (4,),
    }
    assert data.unanswered == 1  # en q3 starts in the gap between two sentences
    assert data.answers_by_item()["q3"] == {"de": (2,)}
    assert data.candidate_slices() == {"de": slice(0, 4), "en": slice(4, 8)}
    assert data.counts() == {"de": {"questions": 3, "candidates": 4}, "en": {"questions": 2, "candidates": 4}}


def test_languages_articles_and_root_forms(tmp_path):
    root = write_lareqa(tmp_path)
    assert available_languages("xquad-r", root) == ("de", "en")
    only_en = load_lareqa("xquad-r", ["eng"], root / "lareqa")
    assert {c.lang for c in only_en.candidates} == {"en"} and len(only_en.candidates) == 4
    first = load_lareqa("xquad-r", root=root / "lareqa" / "xquad-r", articles=1)
    assert len(first.candidates) == 4 and first.unanswered == 0
    with pytest.raises(UnknownNameError, match="valid: de, en"):
        load_lareqa("xquad-r", ["sw"], root)
    with pytest.raises(UnknownNameError):
        load_lareqa("squad", root=root)  # type: ignore[arg-type]


def test_mlqa_dev_r_folder_name(tmp_path):
    write_lareqa(tmp_path, "mlqa-dev-r")
    assert lareqa_dir("mlqa-r", tmp_path).name == "mlqa-dev-r"
    assert len(load_lareqa("mlqa-r", root=tmp_path).questions) == 5


def test_missing_data_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="POLYRET_DATA_DIR"):
        load_lareqa("xquad-r", root=tmp_path)


def test_malformed_json_names_file_and_line(tmp_path):
    folder = write_lareqa(tmp_path) / "lareqa" / "xquad-r"
    (folder / "en.json").write_text('{"data": [\n  {"paragraphs": [\n    oops]}]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"en\.json:3: malformed JSON"):
        load_lareqa("xquad-r", root=tmp_path)


def test_structural_errors_name_the_place(tmp_path):
    folder = write_lareqa(tmp_path) / "lareqa" / "xquad-r"
    payload = json.loads((folder / "en.json").read_text(encoding="utf-8"))
    payload["data"][1]["paragraphs"][0]["sentence_breaks"].pop()
    (folder / "en.json").write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(DataError, match=r"en\.json: data\[1\]\.paragraphs\[0\]: 2 sentences but 1"):
        load_lareqa("xquad-r", root=tmp_path)
    del payload["data"][0]["paragraphs"][0]["qas"][0]["id"]
    payload["data"][1]["paragraphs"][0]["sentence_breaks"].append([12, 23])
    (folder / "en.json").write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(DataError, match=r"qas\[0\]: missing field 'id'"):
        load_lareqa("xquad-r", root=tmp_path)


XQUAD_R_CANDIDATES = {
    "ar": 1222,
    "de": 1276,
    "el": 1234,
    "en": 1180,
    "es": 1215,
    "hi": 1244,
    "ru": 1219,
    "th": 852,
    "tr": 1167,
    "vi": 1209,
    "zh": 1196,
}
MLQA_R_QUESTIONS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
MLQA_R_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}


@pytest.mark.integration
def test_xquad_r_published_counts(shared_data):
    data = load_lareqa("xquad-r", root=shared_data)
    counts = data.counts()
    assert {lang: c["candidates"] for lang, c in counts.items()} == XQUAD_R_CANDIDATES
    assert {c["questions"] for c in counts.values()} == {1190}
    assert len(data.candidates) == 13014 and len(data.questions) == 13090 and data.unanswered == 0
    items = data.answers_by_item()
    assert len(items) == 1190 and all(len(answers) == 11 for answers in items.values())
    # the two shifted tr breaks: text comes from `sentences`, not context[start:end]
    assert all(c.text for c in data.candidates)


@pytest.mark.integration
def test_mlqa_r_published_counts(shared_data):
    data = load_lareqa("mlqa-r", root=shared_data)
    counts = data.counts()
    assert {lang: c["questions"] for lang, c in counts.items()} == MLQA_R_QUESTIONS
    assert {lang: c["candidates"] for lang, c in counts.items()} == MLQA_R_CANDIDATES
    assert len(data.candidates) == 20534 and len(data.questions) == 4199 and data.unanswered == 0
    spans: dict[int, int] = {}
    for answers in data.answers_by_item().values():
        assert "en" in answers
        spans[len(answers)] = spans.get(len(answers), 0) + 1
    assert spans == {4: 820, 3: 263, 2: 65}
