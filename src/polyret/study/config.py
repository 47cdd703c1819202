"""Study configs: backbones × methods × seeds, one YAML file, expanded into named, fingerprinted runs.

A study config looks like this (``configs/quickstart.yaml`` is a complete example)::

    name: quickstart
    backbones:                       # name -> model (embedded name, Hugging Face id or local path)
      e5-small: multilingual-e5-small
      mbart: {model: facebook/mbart-large-cc25, settings: {...}}   # settings: merged into training configs
    methods:                         # names from polyret.train.methods (polyret compare --help lists them)
      - zero-shot
      - mono
      - {method: hybrid, alpha: [0.4, 0.5, 0.6]}
      - {method: criss, backbones: [mbart], settings: {criss: {iterations: 3}}}
    seeds: [0, 1, 2]
    train:                           # shared by the methods that use it (mono, xy, hybrid: uses_train_section)
      data: [mlqa-r]                 # polyret.train.config.ContrastiveConfig keys
      languages: [ar, de, en]        # for the report's "unseen in training" marks only
      max_steps: 1000
      batch_size: 100
      settings: {...}                # any other ContrastiveConfig keys, deep-merged
    eval:
      tasks:                         # task name -> options for that task's evaluate function
        xquad-r: {articles: 3, candidate_text: sentence, max_length: 128}
        tatoeba: {languages: [sw, kk], max_sentences: 200}
    precision: auto                  # auto | fp32 | bf16 for every run's training and evaluation (polyret.precision);
                                     # unset: each stage's default (auto). A task may still set its own precision.
    selection: {validation: {batch_size: 32, eval_steps: 100}}   # or {fixed_steps: 1000} (PROTOCOLS §6.2)
    reference: zero-shot             # method label the significance tests compare against (same backbone)
    reference_backbone: null         # where backbones lacking the reference method find it
    demo_data: true                  # the report shows the embedded-demo-data banner

Each run is named ``{backbone}__{label}__s{seed}`` (``e5-small__hybrid-a0.5__s0``); an untrained method
(zero-shot) is deterministic and gets one run per backbone, ``{backbone}__zero-shot``. A run's *train fingerprint*
hashes everything that changes its trained weights, and each task's *eval fingerprint* hashes that plus
the task options, so editing only the eval section re-evaluates without re-training.

What a method or a task name means comes from the registries (:mod:`polyret.train.methods`,
:mod:`polyret.eval.tasks`). Loading a config validates everything before any run starts: every task's options
against the task's options model, and every trained run's training config against its method's config model (the
typed config is :attr:`RunSpec.config`, what the trainer gets).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from polyret.data.languages import get_language
from polyret.errors import ConfigError, UnknownNameError
from polyret.eval.options import ENCODER_OPTIONS, EncoderOptions
from polyret.eval.tasks import TASKS, get_spec
from polyret.io import read_yaml
from polyret.precision import Precision, check_precision
from polyret.train.config import SHARED_VALIDATION_POLICY
from polyret.train.methods import Method, RunConfig, get_method, method_names
from polyret.validation import StrictModel, config_error, parse

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BackboneSpec(StrictModel):
    """A model to start from; ``settings`` are merged into the training config of every trained run on it (so they
    must be keys each of its methods' configs accepts)."""

    model: str
    settings: dict[str, Any] = Field(default_factory=dict)
    #: name used to look up published numbers (e.g. ``multilingual-e5-small``); defaults to ``model``.
    published_as: str | None = None
    #: the method label this backbone's groups are tested against (default: the study's ``reference``): verdicts
    #: stay within one backbone (PROTOCOLS §6.4)
    reference: str | None = None


class MethodSpec(StrictModel):
    #: a registered method (:mod:`polyret.train.methods`)
    method: str
    #: methods that sweep α (hybrid): the probability that a batch is mono; one run per value.
    alpha: list[float] | None = None
    #: restrict the method to these backbone names (default: every backbone).
    backbones: list[str] | None = None
    #: deep-merged into the training config of this method's runs.
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("method")
    @classmethod
    def _registered(cls, value: str) -> str:
        try:
            get_method(value)
        except UnknownNameError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("alpha")
    @classmethod
    def _alpha_range(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one value")
            bad = [a for a in value if not 0.0 <= a <= 1.0]
            if bad:
                raise ValueError(f"every alpha must lie in [0, 1], got {bad}")
            if len(set(value)) != len(value):
                raise ValueError(f"alpha values repeat: {value}")
        return value

    @model_validator(mode="after")
    def _alpha_only_where_swept(self) -> MethodSpec:
        method = get_method(self.method)
        if method.sweeps_alpha and self.alpha is None:
            self.alpha = list(method.default_alpha)
        if not method.sweeps_alpha and self.alpha is not None:
            sweepers = " or ".join(name for name in method_names() if get_method(name).sweeps_alpha)
            raise ValueError(f"alpha applies to method {sweepers} only, not {self.method}")
        return self


class TrainSpec(StrictModel):
    """What the runs of methods that use the study's ``train`` section share: data, budget and any other keys of
    their config (``ContrastiveConfig`` for mono, xy and hybrid)."""

    data: Any = None
    #: the languages the training data covers; the report marks the others as unseen (not sent to the trainer).
    languages: list[str] | None = None
    max_steps: int | None = Field(default=None, gt=0)
    batch_size: int | None = Field(default=None, gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    #: keep the trainers' resume checkpoints (``checkpoint-N``) once a run's training is done (they hold the
    #: optimizer state: about 3x the model's size each).
    keep_checkpoints: bool = False


class EvalSpec(StrictModel):
    tasks: dict[str, dict[str, Any]]

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks_shape(cls, value: Any) -> Any:
        if isinstance(value, list):  # a plain list of names means default options
            value = {name: {} for name in value}
        if isinstance(value, dict):
            value = {name: ({} if opts is None else opts) for name, opts in value.items()}
            if not value:
                raise ValueError("name at least one task")
        return value


class SharedValidation(StrictModel):
    """PROTOCOLS §6.2, the default (as the paper's English-only SQuADShifts loss): a seeded ``fraction`` of the
    training data's items held out of every arm's training, its ``languages`` (English) monolingual pairs scored with
    one fixed loss (in-batch InfoNCE on mono batches of ``batch_size``), the same items and batches for every arm and
    seed; each run keeps its checkpoint of lowest loss (early stopping after ``patience`` evaluations)."""

    languages: list[str] = Field(default_factory=lambda: ["en"])
    fraction: float = Field(0.05, gt=0, lt=1)
    batch_size: int = Field(32, ge=2)
    batches: int = Field(4, ge=1)
    eval_steps: int = Field(100, ge=1)
    patience: int | None = Field(3, ge=1)
    seed: int = 0

    def trainer_keys(self) -> dict[str, Any]:
        """The ``validation`` keys of a contrastive training config that implement this rule."""
        return {**self.model_dump(mode="json"), "policy": SHARED_VALIDATION_POLICY}


class SelectionSpec(StrictModel):
    """How every arm of a study picks the checkpoint it keeps: one ``validation`` set shared by all arms (default),
    or ``fixed_steps: N`` (every arm keeps its step N)."""

    validation: SharedValidation | None = None
    fixed_steps: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_rule(self) -> SelectionSpec:
        if self.validation is not None and self.fixed_steps is not None:
            raise ValueError("give either validation or fixed_steps, not both")
        if self.fixed_steps is None and self.validation is None:
            self.validation = SharedValidation()
        return self


class StudyConfig(StrictModel):
    name: str
    description: str = ""
    backbones: dict[str, BackboneSpec]
    methods: list[MethodSpec]
    seeds: list[int] = Field(default_factory=lambda: [0])
    train: TrainSpec = Field(default_factory=TrainSpec)
    eval: EvalSpec
    #: the one checkpoint-selection rule of every arm (PROTOCOLS §6.2)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    #: a smoke run (``polyret compare --smoke`` writes it): every method's smoke settings, 2 steps per run
    smoke: bool = False
    #: the method label significance tests compare against (e.g. ``zero-shot``, ``mono``, ``hybrid-a0.5``), on the
    #: same backbone.
    reference: str | None = None
    #: groups on a backbone without the reference method are compared with the reference on this backbone.
    reference_backbone: str | None = None
    #: the report shows a banner: trained on the embedded demo data (MLQA-R), zero-shot elsewhere.
    demo_data: bool = False
    #: precision of every run's training and evaluation (part of the fingerprints when set); None: stage defaults.
    precision: Precision | None = None
    #: every run, expanded and validated once when the config loads (:func:`parse_study_config`)
    _runs: list[RunSpec] | None = PrivateAttr(None)

    @field_validator("backbones", mode="before")
    @classmethod
    def _backbone_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {"model": spec} if isinstance(spec, str) else spec for name, spec in value.items()}
        return value

    @field_validator("methods", mode="before")
    @classmethod
    def _method_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"method": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StudyConfig:
        for name in [self.name, *self.backbones]:
            if not _NAME.match(name) or "__" in name:
                raise ValueError(f"name {name!r} must be letters, digits, '.', '-' or '_' (no '__')")
        if not self.backbones:
            raise ValueError("backbones: name at least one")
        if not self.methods:
            raise ValueError("methods: name at least one")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: give distinct seeds, got {self.seeds}")
        for spec in self.methods:
            unknown = sorted(set(spec.backbones or ()) - set(self.backbones))
            if unknown:
                raise ValueError(f"method {spec.method}: unknown backbones {unknown}; known {sorted(self.backbones)}")
        _check_no_own_selection(self)
        labels = [label for spec in self.methods for label in method_labels(spec)]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"methods: {duplicated} listed twice")
        if self.reference is not None and self.reference not in labels:
            raise ValueError(f"reference {self.reference!r} is not one of the methods {labels}")
        for name, backbone in self.backbones.items():
            runs_here = [
                label for spec in self.methods if name in (spec.backbones or [name]) for label in method_labels(spec)
            ]
            if backbone.reference is not None and backbone.reference not in runs_here:
                raise ValueError(f"backbones.{name}.reference: {backbone.reference!r} does not run on {name}")
        if self.reference_backbone is not None:
            reference = self.reference_label()
            runs_it = [
                spec
                for spec in self.methods
                if reference in method_labels(spec)
                and self.reference_backbone in (spec.backbones or list(self.backbones))
            ]
            if not runs_it:
                raise ValueError(
                    f"reference_backbone {self.reference_backbone!r} does not run the reference method {reference!r}"
                )
        return self

    def reference_label(self) -> str:
        """The significance reference: the configured one, else the first untrained method (zero-shot), else the
        first method."""
        if self.reference:
            return self.reference
        labels = [label for spec in self.methods for label in method_labels(spec)]
        untrained = [
            label for spec in self.methods if not get_method(spec.method).trained for label in method_labels(spec)
        ]
        return untrained[0] if untrained else labels[0]


def _check_no_own_selection(config: StudyConfig) -> None:
    """An arm's own validation or step budget would select it by another yardstick (PROTOCOLS §6.2)."""
    places = {"train.settings": config.train.settings}
    places.update({f"backbones.{name}.settings": spec.settings for name, spec in config.backbones.items()})
    places.update({f"methods.{spec.method}.settings": spec.settings for spec in config.methods})
    for place, settings in places.items():
        for key in ("validation", "contrastive.validation"):
            head, _, tail = key.partition(".")
            holder = settings.get(head) if tail else settings
            if isinstance(holder, dict) and (tail or head) in holder:
                raise ValueError(f"{place}: {key}: checkpoint selection is study-level: use `selection:`")
    if config.selection.fixed_steps is not None and config.train.max_steps is not None:
        raise ValueError("train.max_steps: with selection.fixed_steps every arm trains that many steps; drop one")
    holds_out = config.selection.validation is not None and config.train.data is None
    for spec in config.methods:
        method = get_method(spec.method)
        if holds_out and method.contrastive and not method.uses_train_section:  # validates on held-out train.data
            raise ValueError(
                "selection: the shared validation set is held out of train.data; give train.data "
                "or selection: {fixed_steps: N}"
            )


def selection_settings(config: StudyConfig, method: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the study's selection rule written into the keys the method's trainer reads (the method's
    ``select`` hook; a method without one keeps its own rule, which docs/study.md lists)."""
    select = get_method(method).select
    if select is None:
        return settings
    rule = config.selection
    shared = rule.validation.trainer_keys() if rule.validation is not None else None
    return select(settings, shared, rule.fixed_steps, config.train.data)


def method_labels(spec: MethodSpec) -> list[str]:
    """Labels of the runs a method entry expands to: ``hybrid-a0.5`` per alpha, else the method name."""
    return get_method(spec.method).labels(spec.alpha)


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: what to train (if anything) and evaluate, with its fingerprints."""

    name: str
    backbone: str
    model: str
    method: str
    label: str
    seed: int
    alpha: float | None
    #: the training config handed to the trainer (None for zero-shot); see :func:`train_settings`.
    train: dict[str, Any] | None
    #: task name -> options, in config order.
    tasks: dict[str, dict[str, Any]]
    train_fingerprint: str
    eval_fingerprints: dict[str, str] = field(default_factory=dict)
    #: :attr:`train` validated by the method's config model (None for an untrained method): what the trainer gets
    config: RunConfig | None = field(default=None, compare=False, repr=False)
    #: tasks whose text this run trained on (PROTOCOLS §6.3): their results are flagged and get no verdict
    transductive_tasks: tuple[str, ...] = ()

    @property
    def trained(self) -> bool:
        return get_method(self.method).trained

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the whole run: training plus every task's evaluation."""
        return _hash({"train": self.train_fingerprint, "eval": self.eval_fingerprints})

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backbone": self.backbone,
            "model": self.model,
            "method": self.method,
            "label": self.label,
            "seed": self.seed,
            "alpha": self.alpha,
            "train": self.train,
            "tasks": self.tasks,
            "train_fingerprint": self.train_fingerprint,
            "eval_fingerprints": self.eval_fingerprints,
            "fingerprint": self.fingerprint,
            "transductive_tasks": list(self.transductive_tasks),
        }


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` merged into ``base``, recursing into nested dicts."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def train_settings(
    config: StudyConfig, backbone: str, spec: MethodSpec, seed: int, alpha: float | None
) -> dict[str, Any]:
    """The training config of one run (a ``polyret train`` config as a mapping), before the trainer validates it.

    Keys: ``method``, ``model``, ``seed``; for the methods that use the ``train`` section (mono, xy, hybrid) also
    ``data``, ``max_steps``, ``batch_size`` and ``alpha`` (where swept) from the ``train`` section and its
    ``settings``. Then the ``settings`` of the backbone and of the method entry are deep-merged, in that order (later
    wins). The other methods have configs of their own (``CrissConfig``, ``TliConfig``, see
    :mod:`polyret.train.methods`): give their keys in the method entry's ``settings``.
    """
    settings: dict[str, Any] = {"method": spec.method, "model": config.backbones[backbone].model, "seed": seed}
    if get_method(spec.method).uses_train_section:
        if config.train.data is not None:
            settings["data"] = config.train.data
        if config.train.max_steps is not None:
            settings["max_steps"] = config.train.max_steps
        if config.train.batch_size is not None:
            settings["batch_size"] = config.train.batch_size
        if alpha is not None:
            settings["alpha"] = alpha
        settings = deep_merge(settings, config.train.settings)
    if config.precision is not None:  # every method's config has a top-level precision
        settings["precision"] = config.precision
    for extra in (config.backbones[backbone].settings, spec.settings):
        settings = deep_merge(settings, extra)
    if isinstance(settings.get("model"), dict):  # e.g. {max_query_length: 64}: the backbone names the model
        settings["model"] = {"name": config.backbones[backbone].model, **settings["model"]}
    method = get_method(spec.method)
    if method.default_text is not None:
        settings = method.default_text(settings, config.train.data, config.train.languages)
    if config.smoke:
        settings = _smoke_settings(method, settings)
    return selection_settings(config, spec.method, settings)


SMOKE_STEPS = 2


def _smoke_settings(method: Method, settings: dict[str, Any]) -> dict[str, Any]:
    """Every stage of the method, at most ``SMOKE_STEPS`` updates, fp32 (a smoke run checks plumbing, not speed)."""
    if method.uses_train_section:
        settings = {**settings, "max_steps": SMOKE_STEPS, "precision": "fp32", "save_steps": 1, "logging_steps": 1}
        model = settings["model"] if isinstance(settings.get("model"), dict) else {"name": settings["model"]}
        settings["model"] = {**model, "max_query_length": 32, "max_passage_length": 32}
    return method.smoke(settings) if method.smoke is not None else settings


def eval_tasks(config: StudyConfig) -> dict[str, dict[str, Any]]:
    """Task name -> options as each run evaluates them: the study's precision unless the task sets its own."""
    if config.precision is None:
        return dict(config.eval.tasks)
    return {task: {"precision": config.precision, **options} for task, options in config.eval.tasks.items()}


def expand_runs(config: StudyConfig) -> list[RunSpec]:
    """Every run of the study, in config order (backbone-major within each method entry), each trained run with its
    typed training config; validated once (errors name the run and the key)."""
    if config._runs is None:
        config._runs = _expand(config, "<study config>")
    return list(config._runs)


def _expand(config: StudyConfig, source: str | Path) -> list[RunSpec]:
    runs: list[RunSpec] = []
    for spec in config.methods:
        method = get_method(spec.method)
        for backbone in spec.backbones or list(config.backbones):
            alphas: list[float | None] = list(spec.alpha) if spec.alpha else [None]
            for alpha in alphas:
                label = method.alpha_label(alpha) if alpha is not None else spec.method
                seeds: list[int | None] = list(config.seeds) if method.trained else [None]
                runs.extend(_run(config, spec, backbone, label, alpha, seed, source) for seed in seeds)
    return runs


def _run(
    config: StudyConfig, spec: MethodSpec, backbone: str, label: str, alpha: float | None, seed: int | None, source: Any
) -> RunSpec:
    name = f"{backbone}__{label}" + ("" if seed is None else f"__s{seed}")
    model = config.backbones[backbone].model
    train: dict[str, Any] | None = None
    typed: RunConfig | None = None
    if seed is None:
        train_fp = _hash({spec.method: model})
    else:
        train = train_settings(config, backbone, spec, seed, alpha)
        train_fp = _hash(train)
        typed = get_method(spec.method).parse(train, f"{source}: run {name}")
    tasks = eval_tasks(config)
    eval_fps = {task: _hash({"train": train_fp, "task": task, "options": options}) for task, options in tasks.items()}
    return RunSpec(
        name=name,
        backbone=backbone,
        model=model,
        method=spec.method,
        label=label,
        seed=0 if seed is None else seed,
        alpha=alpha,
        train=train,
        tasks=tasks,
        train_fingerprint=train_fp,
        eval_fingerprints=eval_fps,
        config=typed,
        transductive_tasks=_transductive(spec.method, typed, config),
    )


def _transductive(method: str, typed: RunConfig | None, config: StudyConfig) -> tuple[str, ...]:
    flag = get_method(method).transductive_tasks
    return tuple(task for task in (flag(typed) if flag and typed else ()) if task in config.eval.tasks)


def parse_study_config(payload: Any, source: str | Path = "<config>") -> StudyConfig:
    """Validate a loaded YAML mapping, its tasks' options and every run's training config (errors name the file and
    the key, and the run)."""
    if not isinstance(payload, dict):
        raise ConfigError(f"{source}: a study config is a YAML mapping with keys name, backbones, methods, eval")
    config = parse(StudyConfig, payload, source)
    unknown = [name for name in config.eval.tasks if name not in TASKS]
    if unknown:
        raise ConfigError(f"{source}: eval.tasks: unknown task {unknown[0]!r}; valid: {', '.join(sorted(TASKS))}")
    for task, options in config.eval.tasks.items():
        check_task_options(task, options, f"{source}: eval.tasks.{task}")
        check_eval_languages(options, f"{source}: eval.tasks.{task}")
    config._runs = _expand(config, source)
    return config


def check_task_options(task: str, options: dict[str, Any], source: str) -> None:
    """Validate one task's options (the encoder's and the task's own options models) before any work.

    ``source`` names the place in messages (``study.yaml: eval.tasks.tatoeba``).
    """
    model = get_spec(task).options_model()
    encoder = {k: v for k, v in options.items() if k in ENCODER_OPTIONS}
    own = {k: v for k, v in options.items() if k not in ENCODER_OPTIONS or k in model.model_fields}
    unknown = sorted(set(own) - set(model.model_fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown option {unknown[0]!r} (not an option of {task} nor an encoder option; "
            f"valid: {', '.join(sorted({*model.model_fields, *ENCODER_OPTIONS}))})"
        )
    for schema, values in ((EncoderOptions, encoder), (model, own)):
        try:
            schema.model_validate(values)
        except ValidationError as err:
            raise config_error(err, source) from None


def check_eval_languages(options: dict[str, Any], source: str) -> None:
    """Every language a task is asked for must be one polyret knows, so a typo fails before the first run (the
    task itself checks, before encoding, that it has data for the language)."""
    listed = options.get("languages") or []
    codes = listed.split(",") if isinstance(listed, str) else listed if isinstance(listed, list) else [listed]
    for code in codes:
        try:
            get_language(str(code))
        except UnknownNameError as err:
            raise ConfigError(f"{source}.languages: {err}") from None


def load_study_config(path: str | Path, precision: str | None = None) -> StudyConfig:
    """Read and validate a study YAML file (one-line :class:`ConfigError` naming file and key).

    ``precision`` (``--precision``) replaces the file's before the runs are expanded and validated, so it reaches
    every run's training config, task options and fingerprints.
    """
    source = Path(path)
    payload = read_yaml(source, "study config")
    if precision is not None and isinstance(payload, dict):
        check_precision(precision)
        payload = {**payload, "precision": precision}
    return parse_study_config(payload, source)
