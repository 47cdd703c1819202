"""Build tiny LAReQA/SQuAD-format paragraphs for tests."""

from __future__ import annotations


def lareqa_paragraph(sentences: list[str], qas: list[tuple[str, str, int]]) -> dict:
    """A paragraph of ``sentences`` whose questions ``(id, text, answer sentence index)`` start at that sentence."""
    breaks, start = [], 0
    for sentence in sentences:
        breaks.append([start, start + len(sentence)])
        start += len(sentence) + 1
    return {
        "context": " ".join(sentences),
        "sentences": sentences,
        "sentence_breaks": breaks,
        "qas": [
            {"id": qid, "question": text, "answers": [{"text": "x", "answer_start": breaks[s][0]}]}
            for qid, text, s in qas
        ],
    }
