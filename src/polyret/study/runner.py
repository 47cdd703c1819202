"""The study runner: train (unless zero-shot) and evaluate every run of a study, skipping what is done.

Layout of a study directory::

    study.json                 resolved config, run list, command line, versions and what ``auto`` precision means
                               in this study (rewritten each start)
    config.yaml                the config text as given
    .compare.lock              held by the ``polyret compare`` running the study (a second one is refused)
    runs/<run>/run.json        the run's spec and fingerprints, timings of the last attempt (wall, CPU, load)
    runs/<run>/log.txt         everything the run printed or logged (appended per attempt)
    runs/<run>/train/          the trainer's run directory (checkpoints, final model)
    runs/<run>/train.started.json / train.done.json   {fingerprint, model_dir}
    runs/<run>/results/<task>.json (+ .per_query.npz) and <task>.done.json {fingerprint}
    runs/<run>/done.json       {fingerprint}: the whole run is finished

Every marker is written atomically after the work it marks, so a killed study re-run does only the
missing work: finished runs are skipped, finished tasks of a half-evaluated run are skipped, and a
half-trained run resumes through the trainer's own ``resume``. A marker whose fingerprint differs from the
config's (the config changed) does not count: the stage runs again, and a stale training directory is
moved aside to ``runs/<run>/stale-<time>/`` rather than resumed.

One precision per study (PROTOCOLS §6: every arm evaluated the same way): ``auto`` resolves per machine (bf16 where
the CPU has native bf16, else fp32), so a study run in parts over different machines would mix them. The runner
resolves ``auto`` once, when the study starts, records it in study.json (``auto_precision``) and runs every later
part in it, whatever the machine; fingerprints still hash ``auto``, as the config says. A run whose results or
training (finished, or started and not finished) record another precision (a study started before this rule) is
moved aside and run again.

Training and evaluation are injected (:class:`Trainer`, :class:`Evaluator`), so tests drive the runner with
fakes; the defaults dispatch through the registries: :func:`polyret.train.methods.run_method` trains a run's typed
config, :func:`polyret.eval.run.run_eval` evaluates it (tasks from :mod:`polyret.eval.tasks`). The config was
validated when it loaded (:func:`polyret.study.config.load_study_config`), so a bad option or training key fails
before any run starts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import fnmatch
import logging
import os
import platform
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from polyret.errors import PolyretError, UnknownNameError
from polyret.eval.model_card import write_model_card
from polyret.eval.options import ENCODER_OPTIONS
from polyret.eval.results import read_result
from polyret.eval.run import EvalOptions, run_eval
from polyret.io import atomic_write, read_json, timestamp, write_json
from polyret.precision import DEFAULT_BACKEND, DEFAULT_PRECISION, cpu_has_native_bf16, resolve_precision
from polyret.progress import LineProgress
from polyret.study.config import RunSpec, StudyConfig, expand_runs, load_study_config
from polyret.train.methods import get_method, run_method
from polyret.train.runs import CONFIG_FILE as TRAIN_CONFIG_FILE
from polyret.train.runs import recorded_kept_step, remove_checkpoints, versions

log = logging.getLogger(__name__)

#: held by the ``polyret compare`` that runs the study (:func:`study_lock`)
STUDY_LOCK = ".compare.lock"

# Beside polyret.train.runs.versions(): the libraries evaluation and the report depend on.
EXTRA_PACKAGES = ("faiss-cpu", "scipy", "ir-measures", "matplotlib", "pydantic")


class Trainer(Protocol):
    """Trains one run into ``run_dir`` (resuming from its checkpoints when ``resume``); returns the model dir."""

    def __call__(self, run: RunSpec, run_dir: Path, resume: bool) -> Path: ...


class Evaluator(Protocol):
    """Evaluates ``model`` on ``tasks`` and writes each result into ``output_dir`` (``run_eval``'s shape)."""

    def __call__(self, model: str, tasks: list[str], output_dir: Path, options: dict[str, Any]) -> Any: ...


@dataclass
class RunOutcome:
    name: str
    state: str = "pending"  # pending | running | done | skipped | failed
    seconds: float = 0.0
    error: str | None = None
    log: Path | None = None


@dataclass
class StudyStatus:
    """What :func:`run_study` did: one outcome per selected run."""

    study_dir: Path
    runs: list[RunOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[RunOutcome]:
        return [run for run in self.runs if run.state == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        counts = {state: sum(run.state == state for run in self.runs) for state in ("done", "skipped", "failed")}
        return f"{counts['done']} run(s) done, {counts['skipped']} already done, {counts['failed']} failed"


# --------------------------------------------------------------------------- environment and paths


def environment_info() -> dict[str, Any]:
    """What produced the numbers: the training runs' version record plus the evaluation and report libraries."""
    info = versions()
    for name in EXTRA_PACKAGES:
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            info[name] = None
    with contextlib.suppress(Exception):
        import torch  # heavy: loads when a study starts, not for `polyret --help`

        info["torch_threads"] = torch.get_num_threads()
    info["cpu"] = cpu_model()
    info["cpu_count"] = os.cpu_count()
    return info


def cpu_model() -> str | None:
    """The CPU's model name (``platform.processor()`` is empty on Linux, so /proc/cpuinfo first)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def run_dir_of(study_dir: Path, name: str) -> Path:
    return Path(study_dir) / "runs" / name


def _marker_matches(path: Path, fingerprint: str) -> bool:
    if not path.is_file():
        return False
    try:
        payload = read_json(path)
    except PolyretError:  # a damaged marker counts as absent
        return False
    return isinstance(payload, dict) and payload.get("fingerprint") == fingerprint


# --------------------------------------------------------------------------- default trainer and evaluator


def default_trainer(run: RunSpec, run_dir: Path, resume: bool) -> Path:
    """Train the run's typed config with its method's runner (:mod:`polyret.train.methods`)."""
    if run.config is None:
        raise PolyretError(f"run {run.name} has nothing to train")
    return run_method(run.config, run_dir, resume)


def split_eval_options(tasks: list[str], options: dict[str, Any]) -> EvalOptions:
    """A task's config options as :class:`polyret.eval.run.EvalOptions`: encoder options as its fields (``max_length``
    reaches the task too), every other option passed to the task exactly as written."""
    shared = {k: v for k, v in options.items() if k in ENCODER_OPTIONS}
    extra = {k: v for k, v in options.items() if k not in ENCODER_OPTIONS}
    return EvalOptions(**shared, task_options={task: dict(extra) for task in tasks} if extra else {})


def default_evaluator(model: str, tasks: list[str], output_dir: Path, options: dict[str, Any]) -> Any:
    return run_eval(model, tasks, output_dir, split_eval_options(tasks, options))


# --------------------------------------------------------------------------- per-run logging


def _std_fds() -> list[int] | None:
    """The file descriptors behind sys.stdout/sys.stderr, or None when they have none (e.g. captured in memory)."""
    try:
        return [sys.stdout.fileno(), sys.stderr.fileno()]
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return None


def _terminal_stream() -> tuple[Any, bool]:
    """A stream on the real terminal for the progress view, unaffected by the per-run redirection (and whether it
    is a duplicate this module must close)."""
    fds = _std_fds()
    if fds is None:
        return sys.stderr, False
    return os.fdopen(os.dup(fds[1]), "w", buffering=1, encoding="utf-8", errors="replace"), True


@contextlib.contextmanager
def _captured_output(log_path: Path) -> Iterator[None]:
    """Send stdout, stderr and logging of one run into its log file (the progress view keeps the terminal).

    Redirection is at the file-descriptor level where there is one, so output of C extensions, and of handlers
    that hold on to ``sys.stderr`` (transformers', tqdm's), lands in the log too and nothing keeps a closed file.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    with log_path.open("a", encoding="utf-8", buffering=1) as handle:
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        saved_handlers, saved_level = root.handlers[:], root.level
        root.handlers = [handler]
        root.setLevel(min(saved_level, logging.INFO) if saved_level else logging.INFO)
        fds = _std_fds()
        saved_fds: list[int] = []
        try:
            if fds is None:
                with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                    yield
            else:
                sys.stdout.flush()
                sys.stderr.flush()
                saved_fds = [os.dup(fd) for fd in fds]
                for fd in fds:
                    os.dup2(handle.fileno(), fd)
                yield
        finally:
            if saved_fds:
                with contextlib.suppress(OSError, ValueError):
                    sys.stdout.flush()
                    sys.stderr.flush()
                for fd, saved in zip(fds or [], saved_fds, strict=True):
                    os.dup2(saved, fd)
                    os.close(saved)
            root.handlers = saved_handlers
            root.setLevel(saved_level)


# --------------------------------------------------------------------------- one run


def move_aside(run_dir: Path) -> Path:
    """Move a run's training, markers and results to ``run_dir/stale-<time>/`` (kept, never deleted); return it."""
    stale = run_dir / f"stale-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    stale.mkdir(parents=True)
    for name in ("train", "train.started.json", "train.done.json", "results", "done.json"):
        if (run_dir / name).exists():
            (run_dir / name).rename(stale / name)
    return stale


def _train_stage(run: RunSpec, run_dir: Path, trainer: Trainer, keep_checkpoints: bool = False) -> str:
    """Train (or find the finished training of) one run; return the model to evaluate."""
    if not run.trained:
        return run.model
    done = run_dir / "train.done.json"
    if _marker_matches(done, run.train_fingerprint):
        model_dir = Path(read_json(done)["model_dir"])
        model_dir = model_dir if model_dir.is_absolute() else run_dir / model_dir
        if model_dir.exists():
            log.info("training already done: %s", model_dir)
            return str(model_dir)
        log.warning("training marked done but %s is missing: training again", model_dir)
    train_dir, started = run_dir / "train", run_dir / "train.started.json"
    resume = train_dir.exists() and _marker_matches(started, run.train_fingerprint)
    if train_dir.exists() and not resume:
        stale = move_aside(run_dir)
        log.warning("config changed since the last training attempt: moved it aside to %s", stale)
    write_json(started, {"fingerprint": run.train_fingerprint, "started": timestamp()})
    log.info("training %s (%s)%s", run.name, run.method, ", resuming" if resume else "")
    model_dir = Path(trainer(run, train_dir, resume))
    if not keep_checkpoints:
        remove_checkpoints(train_dir, keep=model_dir, hint="set train.keep_checkpoints to keep them")
    try:
        stored = str(model_dir.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        stored = str(model_dir.resolve())
    kept = recorded_kept_step(model_dir)
    write_json(
        done,
        {
            "fingerprint": run.train_fingerprint,
            "model_dir": stored,
            "kept_step": kept,
            "precision": getattr(run.config, "precision", None),
            "finished": timestamp(),
        },
    )
    return str(model_dir)


def _eval_stage(run: RunSpec, run_dir: Path, model: str, evaluator: Evaluator, on_task: Callable[[str], None]) -> None:
    results_dir = run_dir / "results"
    for task, options in run.tasks.items():
        fingerprint = run.eval_fingerprints[task]
        marker = results_dir / f"{task}.done.json"
        if _marker_matches(marker, fingerprint) and (results_dir / f"{task}.json").is_file():
            log.info("%s already evaluated", task)
            continue
        on_task(task)
        log.info("evaluating %s on %s with %s", model, task, options)
        started = time.monotonic()
        evaluator(model, [task], results_dir, dict(options))
        if not (results_dir / f"{task}.json").is_file():
            raise PolyretError(f"evaluating {task} wrote no {results_dir / (task + '.json')}")
        write_json(
            marker,
            {"fingerprint": fingerprint, "seconds": round(time.monotonic() - started, 3), "finished": timestamp()},
        )


def _write_card(run: RunSpec, run_dir: Path, model: str) -> None:
    if not run.trained:
        return
    results = [read_result(run_dir / "results" / f"{task}.json") for task in run.tasks]
    try:
        write_model_card(Path(model), results, run_name=run.name)
    except OSError as err:  # a card is a courtesy: never fail a finished run for it
        log.warning("could not write the model card into %s: %s", model, err)


def execute_run(
    run: RunSpec,
    run_dir: Path,
    trainer: Trainer,
    evaluator: Evaluator,
    on_stage: Callable[[str], None] = lambda stage: None,
    *,
    keep_checkpoints: bool = False,
) -> bool:
    """Train and evaluate one run unless its done marker matches; return False when it was already done."""
    done = run_dir / "done.json"
    if _marker_matches(done, run.fingerprint):
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    # versions per run: a study run in parts may get other library versions in each part
    info = {
        **run.to_json(),
        "train_precision": getattr(run.config, "precision", None),
        "environment": environment_info(),
        "started": timestamp(),
    }
    write_json(run_dir / "run.json", info)
    started, cpu_started = time.monotonic(), time.process_time()
    if run.trained:
        on_stage("training")
    model = _train_stage(run, run_dir, trainer, keep_checkpoints)
    trained_s = time.monotonic() - started
    _eval_stage(run, run_dir, model, evaluator, lambda task: on_stage(f"evaluating {task}"))
    _write_card(run, run_dir, model)
    total_s = time.monotonic() - started
    write_json(
        run_dir / "run.json",
        {
            **info,
            "model_used": model,
            "kept_step": read_json(run_dir / "train.done.json").get("kept_step") if run.trained else None,
            "finished": timestamp(),
            "train_seconds": round(trained_s, 3),
            "seconds": round(total_s, 3),
            # how much of the machine the run had: CPU seconds of all its threads, and the load when it ended
            "cpu_seconds": round(time.process_time() - cpu_started, 3),
            "load_average": [round(load, 2) for load in os.getloadavg()],
        },
    )
    write_json(done, {"fingerprint": run.fingerprint, "finished": timestamp()})
    return True


# --------------------------------------------------------------------------- one precision per study


def _leaves_precision_to_auto(options: dict[str, Any]) -> bool:
    """Whether a task runs in ``auto`` on torch (onnx resolves ``auto`` to fp32 on every machine)."""
    return options.get("precision", DEFAULT_PRECISION) == "auto" and options.get("backend", DEFAULT_BACKEND) == "torch"


def study_auto_precision(study_dir: Path, runs: Sequence[RunSpec]) -> str:
    """What ``auto`` means in this study: what its study.json recorded; else what its first finished result of an
    ``auto`` task ran in (a study started before the rule); else this machine's ``auto``."""
    with contextlib.suppress(PolyretError):
        recorded = read_json(study_dir / "study.json").get("auto_precision")
        if recorded:
            return str(recorded)
    for run in runs:
        for task, options in run.tasks.items():
            path = run_dir_of(study_dir, run.name) / "results" / f"{task}.json"
            if _leaves_precision_to_auto(options) and path.is_file():
                with contextlib.suppress(PolyretError):
                    if precision := read_result(path).model.get("precision"):
                        return str(precision)
    return resolve_precision("auto")


def pin_precision(run: RunSpec, precision: str) -> RunSpec:
    """``run`` with each ``auto`` precision of its training and evaluation set to ``precision``; its fingerprints
    stay those of the config, which says ``auto``."""
    config = run.config
    if config is not None and getattr(config, "precision", None) == "auto":
        config = get_method(run.method).parse({**(run.train or {}), "precision": precision}, f"run {run.name}")
    tasks = {
        task: {**options, "precision": precision} if _leaves_precision_to_auto(options) else options
        for task, options in run.tasks.items()
    }
    return replace(run, config=config, tasks=tasks)


def precision_mismatches(run: RunSpec, run_dir: Path) -> list[str]:
    """The stages of ``run`` (``train``, task names) finished or, for training, started in another precision than
    it runs in now (a training must not resume in another precision, nor be evaluated in one)."""
    stages: list[str] = []
    with contextlib.suppress(PolyretError, OSError, yaml.YAMLError):
        trained = getattr(run.config, "precision", None)
        done, started = run_dir / "train.done.json", run_dir / "train" / TRAIN_CONFIG_FILE
        if not run.trained:
            recorded = None
        elif done.is_file():
            recorded = read_json(done).get("precision")
        elif started.is_file():
            recorded = (yaml.safe_load(started.read_text(encoding="utf-8")) or {}).get("precision")
        else:
            recorded = None
        if recorded and recorded != trained:
            stages.append("train")
    for task, options in run.tasks.items():
        path = run_dir / "results" / f"{task}.json"
        if options.get("precision", "auto") == "auto" or not path.is_file():
            continue
        with contextlib.suppress(PolyretError):
            recorded = read_result(path).model.get("precision")
            if recorded and recorded != options["precision"]:
                stages.append(task)
    return stages


def _precision_note(name: str, precision: str) -> str | None:
    """A line for the terminal when the study's precision is not what ``auto`` would choose on this machine."""
    if precision == resolve_precision("auto"):
        return None
    why = f"study {name} runs in {precision}, as `auto` resolved when it started (study.json auto_precision)"
    if precision == "bf16" and not cpu_has_native_bf16():
        return (
            f"{why}, so its arms stay comparable; this CPU has no native bf16, so it is emulated and several times "
            "slower than fp32 (a new --study-dir would run in fp32)"
        )
    return f"{why}, so its arms stay comparable"


# --------------------------------------------------------------------------- the study


def select_runs(runs: Sequence[RunSpec], only: Sequence[str] | None) -> list[RunSpec]:
    """The runs named by ``only`` (exact names or shell patterns such as ``e5-small__hybrid*``)."""
    if not only:
        return list(runs)
    names = [run.name for run in runs]
    chosen: set[str] = set()
    for pattern in only:
        matched = fnmatch.filter(names, pattern)
        if not matched:
            raise UnknownNameError("run", pattern, names)
        chosen.update(matched)
    return [run for run in runs if run.name in chosen]


def _view(progress: Progress, outcomes: list[RunOutcome], stages: dict[str, str]) -> Group:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("run")
    table.add_column("state")
    table.add_column("time", justify="right")
    style = {"done": "green", "skipped": "dim", "failed": "red", "running": "yellow", "pending": "dim"}
    for outcome in outcomes:
        state = stages.get(outcome.name, outcome.state) if outcome.state == "running" else outcome.state
        if outcome.state == "skipped":
            state = "already done"
        seconds = f"{outcome.seconds:.0f}s" if outcome.seconds else ""
        table.add_row(Text(outcome.name), f"[{style[outcome.state]}]{state}[/]", seconds)
    return Group(table, progress)


def write_study_metadata(
    config_path: Path,
    config: StudyConfig,
    runs: list[RunSpec],
    study_dir: Path,
    command: str | None,
    auto_precision: str | None = None,
) -> None:
    text = config_path.read_text(encoding="utf-8")
    study_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(study_dir / "config.yaml") as handle:
        handle.write(text)
    previous = {}
    with contextlib.suppress(PolyretError):
        previous = read_json(study_dir / "study.json") if (study_dir / "study.json").is_file() else {}
    commands = [c for c in previous.get("commands", []) if c != command] + ([command] if command else [])
    write_json(
        study_dir / "study.json",
        {
            "name": config.name,
            "description": config.description,
            "config_path": str(config_path),
            "config": config.model_dump(mode="json"),
            "reference": config.reference_label(),
            "reference_backbone": config.reference_backbone,
            "demo_data": config.demo_data,
            "runs": [run.to_json() for run in runs],
            "commands": commands[-20:],
            "updated": timestamp(),
            "auto_precision": auto_precision or previous.get("auto_precision"),
            "environment": environment_info(),
        },
    )


def run_study(
    config_path: str | Path,
    study_dir: str | Path,
    only: list[str] | None = None,
    *,
    trainer: Trainer | None = None,
    evaluator: Evaluator | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    command: str | None = None,
    precision: str | None = None,
) -> StudyStatus:
    """Run (or finish) every run of a study; see the module docstring for what is skipped and resumed.

    ``only`` restricts the study to some runs (names or patterns). ``command`` is the command line
    recorded in study.json (the CLI passes its own). ``precision`` overrides the config's (``--precision``). A
    failing run is logged to its ``log.txt`` and the study goes on with the next; :attr:`StudyStatus.failed` lists
    them.
    """
    config_path, study_dir = Path(config_path), Path(study_dir)
    # validates every task option and training config, with --precision in place of the file's
    config = load_study_config(config_path, precision)
    runs = expand_runs(config)
    selected = select_runs(runs, only)
    with study_lock(study_dir):
        auto_precision = study_auto_precision(study_dir, runs)
        command = command or _default_command(config_path, study_dir)
        write_study_metadata(config_path, config, runs, study_dir, command, auto_precision)
        selected = [pin_precision(run, auto_precision) for run in selected]
        trainer = trainer or default_trainer
        evaluator = evaluator or default_evaluator
        terminal, owned = (None, False) if console is not None else _terminal_stream()
        console = console or Console(file=terminal)
        if note := _precision_note(config.name, auto_precision):
            console.print(f"[yellow]note[/] {escape(note)}", highlight=False)
        try:
            return _run_all(config, selected, study_dir, trainer, evaluator, console, show_progress)
        finally:
            if owned and terminal is not None:
                terminal.close()


@contextlib.contextmanager
def study_lock(study_dir: Path) -> Iterator[None]:
    """Hold ``study_dir`` for one ``polyret compare``: two at once would train into and write the same run
    directories. The lock goes with the process (``flock``), so a killed study never leaves it held."""
    study_dir.mkdir(parents=True, exist_ok=True)
    with open(study_dir / STUDY_LOCK, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PolyretError(
                f"{study_dir} is being run by {holder}: wait for it to finish (or stop it), or give another --study-dir"
            ) from None
        handle.truncate(0)
        handle.write(f"polyret compare (pid {os.getpid()}, started {timestamp()})")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Display:
    """A study's progress: a live view of the runs on a terminal, also plain lines (done/total, rate, ETA) on a log
    file or pipe, where a live view stays blank until the study ends; nothing without ``show``."""

    def __init__(self, name: str, outcomes: list[RunOutcome], console: Console, show: bool) -> None:
        self.outcomes, self.console = outcomes, console
        self.stages: dict[str, str] = {}
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.overall = self.progress.add_task(f"study {name}", total=len(outcomes))
        self.live = (
            Live(
                _view(self.progress, outcomes, self.stages),
                console=console,
                refresh_per_second=4,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            if show
            else None
        )
        self.lines = (
            LineProgress(f"study {name}", len(outcomes), "runs", write=self._write_line)
            if show and not console.is_terminal
            else None
        )

    def _write_line(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> _Display:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def refresh(self) -> None:
        if self.live is not None:
            self.live.update(_view(self.progress, self.outcomes, self.stages))

    def stage(self, name: str, stage: str) -> None:
        self.stages[name] = stage
        if self.lines is not None:
            self.lines.write(f"{self.lines.line()}; {name}: {stage}")
        self.refresh()

    def finished_one(self) -> None:
        self.progress.advance(self.overall)
        if self.lines is not None:
            self.lines.advance()
        self.refresh()


def _run_all(
    config: StudyConfig,
    selected: list[RunSpec],
    study_dir: Path,
    trainer: Trainer,
    evaluator: Evaluator,
    console: Console,
    show_progress: bool,
) -> StudyStatus:
    status = StudyStatus(study_dir=study_dir, runs=[RunOutcome(run.name) for run in selected])
    with _Display(config.name, status.runs, console, show_progress) as display:
        for run, outcome in zip(selected, status.runs, strict=True):
            run_dir = run_dir_of(study_dir, run.name)
            outcome.log = run_dir / "log.txt"
            if mismatched := precision_mismatches(run, run_dir):
                stale = move_aside(run_dir)
                console.print(
                    f"[yellow]again[/] {escape(run.name)}: {escape(', '.join(mismatched))} ran in another precision "
                    f"than the study's; moved aside to {escape(str(stale))}",
                    highlight=False,
                )
            if _marker_matches(run_dir / "done.json", run.fingerprint):
                outcome.state = "skipped"
                display.finished_one()
                continue
            outcome.state = "running"
            display.stages[run.name] = "starting"
            display.refresh()

            def on_stage(stage: str, name: str = run.name) -> None:
                display.stage(name, stage)

            started = time.monotonic()
            try:
                with _captured_output(outcome.log):
                    log.info("=== %s: run %s (fingerprint %s)", timestamp(), run.name, run.fingerprint)
                    try:
                        execute_run(
                            run, run_dir, trainer, evaluator, on_stage, keep_checkpoints=config.train.keep_checkpoints
                        )
                    except Exception:
                        log.error("run %s failed:\n%s", run.name, traceback.format_exc())
                        raise
            except Exception as err:  # one failing run does not stop the study
                outcome.state, outcome.error = "failed", " ".join(str(err).split()) or type(err).__name__
                console.print(
                    f"[red]failed[/] {escape(f'{run.name}: {outcome.error} (log: {outcome.log})')}", highlight=False
                )
            else:
                outcome.state = "done"
            outcome.seconds = time.monotonic() - started
            display.finished_one()
    return status


def _default_command(config_path: Path, study_dir: Path) -> str:
    return shlex.join(["polyret", "compare", str(config_path), "--study-dir", str(study_dir)])


def default_study_dir(config_path: str | Path) -> Path:
    """``studies/<config stem>`` beside the working directory: where ``polyret compare`` writes by default."""
    return Path("studies") / Path(config_path).stem
