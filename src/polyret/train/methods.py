"""The method registry: every training method declared once, as data, and ``polyret train``'s dispatch.

A :class:`Method` says what a name means everywhere else: its config model (validated once, at the edge, by
:func:`load_train_config` or the study config), its runner, what it trains on, and the facts the study, the report
and the fairness checks read (trained or not, the shared ``train`` section of a study, one run per α, where it sits
on the hybrid's α axis, whether it mines parallel text, which backbone family it needs, the banner of its stand-in
results). The study config, the study runner, the CLI and the report read this registry; no other module names a
method. Adding one is a new module (its config and runner) plus one :func:`register_method` call or entry below
(``docs/extending.md``).

Runners take ``(config, run_dir, resume)`` and return the final model folder. The config model, the parser and the
runner are given as ``"module:attribute"`` (or as the objects themselves) and imported when a config is validated or
the method runs, so the registry loads neither pydantic nor torch: ``polyret --help`` lists the names and stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from polyret.distributed import distributed_layout
from polyret.errors import ConfigError, UnknownNameError
from polyret.io import check_writable
from polyret.train.runs import remove_checkpoints

Backbone = Literal["sentence-encoder", "seq2seq", "any"]


class RunConfig(Protocol):
    """What every method's config has: the method's name and the seed (the run directory is named after both)."""

    method: str
    seed: int

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]: ...


Runner = Callable[[Any, Path, bool], Path]
Parser = Callable[[Any, str], Any]
#: ``(settings, shared validation keys or None, fixed steps or None, the study's train.data) -> settings``: a study's
#: one selection rule (PROTOCOLS §6.2) written into the keys this method's trainer reads
SelectionHook = Callable[[dict[str, Any], dict[str, Any] | None, int | None, Any], dict[str, Any]]


@dataclass(frozen=True)
class Method:
    """One training method (or none: ``config is None`` means nothing is trained, the backbone is evaluated as is)."""

    name: str
    #: one line for help texts and docs
    summary: str
    #: the pydantic model of the method's ``polyret train`` config (``"module:Class"``); None: nothing is trained
    config: str | type | None = None
    #: ``(config, run_dir, resume) -> model folder``, or ``"module:function"`` imported when it runs
    runner: Runner | str | None = None
    #: ``(payload, source) -> config``; default: validate ``payload`` as :attr:`config`
    parser: Parser | str | None = None
    #: what the method learns from, in words (the report's provenance); None when it learns nothing
    trains_on: str | None = None
    #: a study's ``train`` section (data, max_steps, batch_size, settings) fills this method's config
    uses_train_section: bool = False
    #: one run per α (the probability that a batch is mono); runs are labelled ``<name>-a<α>``
    sweeps_alpha: bool = False
    #: the α values when a study gives none
    default_alpha: tuple[float, ...] = ()
    #: the α of hybrid batching this method equals (X-Y 0, X-X-mono 1): its point on the α-sweep figure
    alpha_equivalent: float | None = None
    #: trained with InfoNCE on aligned pairs through the shared contrastive trainer
    contrastive: bool = False
    #: mines parallel text from monolingual corpora, which must not be text an evaluation task reads (PROTOCOLS §6.3)
    mines_text: bool = False
    #: the backbone family it needs
    backbone: Backbone = "sentence-encoder"
    #: the report's banner when a result of this method comes from a stand-in model (``model.stand_in`` in a result)
    stand_in_banner: str | None = None
    #: the report's banner whenever the study has results of this method (what its label must not be read as)
    banner: str | None = None
    #: the difference listed beside a published number when our result comes from a stand-in model
    stand_in_note: str | None = None
    #: how a study's selection rule reaches this method's config; None: the method keeps its own (docs/study.md)
    select: SelectionHook | None = None
    #: ``(settings, train.data, train.languages) -> settings``: where a study's run mines by default when its settings
    #: name no text (PROTOCOLS §6.3: the study's own training text, which no evaluation reads)
    default_text: Callable[[dict[str, Any], Any, list[str] | None], dict[str, Any]] | None = None
    #: ``config -> task names`` whose results this run saw the text of (flagged transductive, never given a verdict)
    transductive_tasks: Callable[[Any], tuple[str, ...]] | None = None
    #: ``settings -> settings`` of a smoke run (``polyret compare --smoke``): every stage, at most 2 training steps
    smoke: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def trained(self) -> bool:
        return self.config is not None

    def labels(self, alphas: Sequence[float] | None) -> list[str]:
        """Labels of the runs one study entry expands to (``hybrid-a0.5`` per α, else the name)."""
        if self.sweeps_alpha:
            return [self.alpha_label(alpha) for alpha in alphas or ()]
        return [self.name]

    def alpha_label(self, alpha: float) -> str:
        return f"{self.name}-a{alpha:g}"

    def parse(self, payload: Any, source: str | Path) -> RunConfig:
        """``payload`` (a mapping with ``method`` set) validated into the method's typed config."""
        if self.config is None:
            raise ConfigError(f"{source}: method: {self.name} trains nothing; it has no training config")
        if self.parser is not None:
            return _resolve(self.parser)(payload, str(source))
        from polyret.validation import parse  # pydantic loads when a config is validated, not for `polyret --help`

        return parse(self.config_model(), payload, source)

    def config_model(self) -> type:
        """The config model (imported now)."""
        if self.config is None:
            raise ConfigError(f"method {self.name} trains nothing")
        return _resolve(self.config)

    def run(self, config: RunConfig, run_dir: Path, resume: bool) -> Path:
        """Train with ``config`` into ``run_dir``; return the final model folder."""
        return Path(self.runner_function()(config, Path(run_dir), resume))

    def runner_function(self) -> Runner:
        """The runner (imported now)."""
        if self.runner is None:
            raise ConfigError(f"method {self.name} trains nothing")
        return _resolve(self.runner)


def _resolve(reference: Any) -> Any:
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


METHODS: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (``replace`` to redefine a name); its config needs ``method`` and ``seed``."""
    if method.name in METHODS and not replace:
        raise ValueError(f"method {method.name!r} is already registered")
    if method.trained != (method.runner is not None):
        raise ValueError(f"method {method.name!r}: a trained method needs a runner, an untrained one none")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    METHODS.pop(name, None)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownNameError("method", name, method_names()) from None


def find_method(name: str) -> Method | None:
    """The method registered as ``name``, or None (e.g. a study written by another polyret)."""
    return METHODS.get(name)


def method_names(*, trained: bool | None = None) -> tuple[str, ...]:
    """Registered names in registration order (``trained=True``: only those ``polyret train`` can run)."""
    return tuple(name for name, method in METHODS.items() if trained is None or method.trained == trained)


# --------------------------------------------------------------------------------------------------- the methods
CONTRASTIVE = "polyret.train.config:ContrastiveConfig"
CONTRASTIVE_PARSER = "polyret.train.config:parse_contrastive_run"
CONTRASTIVE_RUNNER = "polyret.train.contrastive:train_contrastive"
CRISS = "polyret.train.criss.config:CrissConfig"
CRISS_PARSER = "polyret.train.criss.config:load_criss_config"
CRISS_RUNNER = "polyret.train.criss.loop:run_criss"
PAIRS = "the study's aligned query-passage pairs (train.data)"
STAND_IN_BANNER = (
    "CRISS stand-in: the CRISS runs use an encoder–decoder warm-started from the embedded e5-small "
    "(untrained cross-attention), not mBART-cc25. Their results are not comparable with CRISS."
)


def _select_contrastive(settings: dict[str, Any], shared: dict[str, Any] | None, steps: int | None, _: Any) -> dict:
    """mono / xy / hybrid: the shared validation keys, or a fixed budget without validation."""
    if steps is not None:
        return {**settings, "max_steps": steps, "validation": {"fraction": 0.0}}
    return {**settings, "validation": shared if shared is not None else {"fraction": 0.0}}


def _select_mined_contrastive(
    settings: dict[str, Any], shared: dict[str, Any] | None, steps: int | None, train_data: Any
) -> dict:
    """criss-contrastive: validated on the study's held-out training pairs (not its own mined pairs), or fixed."""
    contrastive = dict(settings.get("contrastive") or {})
    if steps is not None:
        contrastive.update(max_steps=steps, validation={"fraction": 0.0})
    elif shared is not None:
        contrastive["validation"] = {**shared, "holdout_of": train_data}
    return {**settings, "contrastive": contrastive, "validate_on": "contrastive"}


def _select_translation(settings: dict[str, Any], shared: dict[str, Any] | None, steps: int | None, _: Any) -> dict:
    """criss: a translation model has no InfoNCE loss to share; a fixed budget caps every iteration's updates, else
    it keeps its last update (its own translation loss on mined pairs is logged, never used to pick a step)."""
    if steps is None:
        return settings
    return {**settings, "train": {**(settings.get("train") or {}), "max_steps": steps}}


def _mine_training_text(settings: dict[str, Any], train_data: Any, languages: list[str] | None) -> dict[str, Any]:
    if train_data is None or any(settings.get(key) for key in ("corpora", "tatoeba", "training_text")):
        return settings
    return {**settings, "training_text": {"data": train_data, "languages": languages}}


def _mined_tasks(config: Any) -> tuple[str, ...]:
    """Mining Tatoeba's own sentences makes every Tatoeba result of the run transductive: the mined languages, and
    the English lines the other languages share with them (9.5 % of Tatoeba-36's)."""
    return ("tatoeba",) if config.tatoeba is not None else ()


def _smoke_criss(settings: dict[str, Any]) -> dict[str, Any]:
    """One iteration (mine, train, re-encode) on a few sentences per language, 2 updates."""
    smoke = {**settings, "iterations": 1, "keep_embeddings": False}
    for source in ("tatoeba", "training_text"):
        if settings.get(source):
            smoke[source] = {**settings[source], "max_sentences": 40}
    if settings.get("corpora"):
        smoke["max_sentences"] = 40
    smoke["mining"] = {**(settings.get("mining") or {}), "min_count": 8, "valid_size": 4, "batch_size": 16}
    smoke["train"] = {
        **(settings.get("train") or {}),
        "max_steps": 2,
        "warmup_steps": 0,
        "batch_size": 4,
        "save_steps": 1,
        "max_source_length": 32,
        "max_target_length": 32,
        "precision": "fp32",
    }
    contrastive = dict(settings.get("contrastive") or {})
    validation = contrastive.get("validation")
    if isinstance(validation, dict) and validation.get("fraction", 0.05) > 0:
        contrastive["validation"] = {**validation, "eval_steps": 1, "batches": 1}
    # a study's batch (32, 100) cannot be filled from the few pairs mined out of 40 sentences per language
    smoke["contrastive"] = {
        **contrastive,
        "batch_size": 4,
        "max_steps": 2,
        "save_steps": 1,
        "logging_steps": 1,
        "precision": "fp32",
    }
    return smoke


def _smoke_tli(settings: dict[str, Any]) -> dict[str, Any]:
    return {**settings, "epochs": 1, "n_train": 8, "n_control": 4, "batch_size": 4, "warmup_steps": 0}


for _method in (
    Method("zero-shot", "the backbone as it is, nothing trained (the reference of most studies)", backbone="any"),
    Method(
        "mono",
        "X-X-mono batches: every batch one language, query and passage in it (PROTOCOLS §1.2)",
        CONTRASTIVE,
        CONTRASTIVE_RUNNER,
        CONTRASTIVE_PARSER,
        trains_on=PAIRS,
        uses_train_section=True,
        alpha_equivalent=1.0,
        contrastive=True,
        select=_select_contrastive,
    ),
    Method(
        "xy",
        "X-Y batches: every triplet pairs a query with its passage in another language (PROTOCOLS §1.2)",
        CONTRASTIVE,
        CONTRASTIVE_RUNNER,
        CONTRASTIVE_PARSER,
        trains_on=PAIRS,
        uses_train_section=True,
        alpha_equivalent=0.0,
        contrastive=True,
        select=_select_contrastive,
    ),
    Method(
        "hybrid",
        "hybrid batches: each whole batch X-X-mono with probability α, else X-Y (arXiv 2408.10536)",
        CONTRASTIVE,
        CONTRASTIVE_RUNNER,
        CONTRASTIVE_PARSER,
        trains_on=PAIRS,
        uses_train_section=True,
        sweeps_alpha=True,
        default_alpha=(0.5,),
        contrastive=True,
        select=_select_contrastive,
    ),
    Method(
        "criss",
        "CRISS: mine pairs with margin scoring, fine-tune for translation, iterate (arXiv 2006.09526)",
        CRISS,
        CRISS_RUNNER,
        CRISS_PARSER,
        trains_on="pairs it mines from unaligned text (default: the study's training text; or corpora, tatoeba)",
        mines_text=True,
        backbone="seq2seq",
        stand_in_banner=STAND_IN_BANNER,
        stand_in_note="CRISS stand-in model (e5-small encoder–decoder), not comparable with CRISS",
        select=_select_translation,
        default_text=_mine_training_text,
        transductive_tasks=_mined_tasks,
        smoke=_smoke_criss,
    ),
    Method(
        "criss-contrastive",
        "CRISS-style mining, then InfoNCE on the mined pairs (a dual encoder instead of translation)",
        CRISS,
        CRISS_RUNNER,
        CRISS_PARSER,
        trains_on="pairs it mines from unaligned text (default: the study's training text; or corpora, tatoeba)",
        contrastive=True,
        mines_text=True,
        banner="criss-contrastive: CRISS-style mining + InfoNCE, not CRISS's translation objective.",
        select=_select_mined_contrastive,
        default_text=_mine_training_text,
        transductive_tasks=_mined_tasks,
        smoke=_smoke_criss,
    ),
    Method(
        "tli",
        "targeted lexical injection: LoRA word alignment of one language at an early layer (arXiv 2506.15415)",
        "polyret.train.tli_config:TliConfig",
        "polyret.train.tli:run_tli",
        "polyret.train.tli_config:parse_tli_config",
        trains_on="a bilingual dictionary of one language with English (tli.dictionary)",
        smoke=_smoke_tli,
    ),
):
    register_method(_method)


# --------------------------------------------------------------------------------------------------- polyret train
def load_train_config(
    path: str | Path | None = None, *, method: str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """The typed config of a ``polyret train`` run: the YAML at ``path`` with ``overrides`` (command-line flags; a
    ``None`` means "not given") and ``method`` applied, validated by the method's own model."""
    from polyret.train.config import read_yaml  # pydantic loads when a config is read, not for `polyret --help`

    payload = read_yaml(path) if path is not None else {}
    source = str(path or "<command line>")
    if overrides:
        payload = {**payload, **{k: v for k, v in overrides.items() if v is not None}}
    if method is not None:
        payload["method"] = method
    trainable = method_names(trained=True)
    chosen = payload.get("method")
    if chosen is None:
        raise ConfigError(f"{source}: method: give one of {', '.join(trainable)} (in the config or --method)")
    if chosen not in trainable:
        raise ConfigError(f"{source}: method: unknown method {chosen!r}; valid: {', '.join(trainable)}")
    return get_method(chosen).parse(payload, source)


def run_method(config: RunConfig, run_dir: str | Path, resume: bool = False) -> Path:
    """Train ``config`` (a typed config of a registered method) into ``run_dir``; return the final model folder."""
    return get_method(config.method).run(config, Path(run_dir), resume)


def default_run_dir(config_path: str | Path | None, method: str, seed: int) -> Path:
    stem = Path(config_path).stem if config_path is not None else "train"
    return Path("runs") / f"{stem}-{method}-s{seed}"


def run_training(
    config_path: str | Path | None,
    *,
    method: str | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    keep_checkpoints: bool = False,
) -> Path:
    """``polyret train``: load and validate the config, train, return the final model folder.

    The trainers' resume checkpoints are removed once the final model is written, unless ``keep_checkpoints``.
    """
    config = load_train_config(config_path, method=method, overrides=overrides)
    target = Path(run_dir) if run_dir is not None else default_run_dir(config_path, config.method, config.seed)
    check_writable(target, folder=True, what="run directory")
    model_dir = run_method(config, target, resume)
    if not keep_checkpoints and distributed_layout()[1] == 0:  # one rank cleans up; the run ended on every rank
        remove_checkpoints(target, keep=model_dir, hint="pass --keep-checkpoints to keep them")
    return model_dir
