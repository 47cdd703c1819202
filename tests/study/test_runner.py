from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from helpers.synthetic_study import STUDY_YAML, CallLog, FakeEvaluator, FakeTrainer, write_study_config
from polyret import precision
from polyret.errors import ConfigError, PolyretError, UnknownNameError
from polyret.io import read_json, write_json
from polyret.study.config import expand_runs, load_study_config
from polyret.study.runner import run_study, select_runs, split_eval_options, study_lock

ALL_RUNS = [
    "tiny__zero-shot",
    "tiny__mono__s0",
    "tiny__mono__s1",
    "tiny__xy__s0",
    "tiny__xy__s1",
    "tiny__hybrid-a0.25__s0",
    "tiny__hybrid-a0.25__s1",
    "tiny__hybrid-a0.5__s0",
    "tiny__hybrid-a0.5__s1",
]
TASKS = ["xquad-r", "tatoeba", "udhr"]


@pytest.fixture
def study(tmp_path: Path):
    config = write_study_config(tmp_path / "study.yaml")
    return config, tmp_path / "study", CallLog(tmp_path / "calls.jsonl")


def run(config, study_dir, calls, **kwargs):
    trainer = kwargs.pop("trainer", None) or FakeTrainer(calls)
    evaluator = kwargs.pop("evaluator", None) or FakeEvaluator(calls)
    return run_study(config, study_dir, trainer=trainer, evaluator=evaluator, show_progress=False, **kwargs)


def test_full_study_then_nothing_to_do(study):
    config, study_dir, calls = study
    status = run(config, study_dir, calls)
    assert [o.name for o in status.runs] == ALL_RUNS and status.ok
    assert sorted(calls.names("train")) == sorted(ALL_RUNS[1:])  # zero-shot never trains
    assert len(calls.entries("eval")) == len(ALL_RUNS) * len(TASKS)
    zero_shot = [e for e in calls.entries("eval") if e["name"] == "tiny__zero-shot"]
    assert {e["model"] for e in zero_shot} == {"tiny-model"}  # zero-shot evaluates the backbone itself
    trained = [e for e in calls.entries("eval") if e["name"] == "tiny__mono__s0"]
    assert {e["model"] for e in trained} == {str(study_dir / "runs" / "tiny__mono__s0" / "train" / "model")}
    meta = read_json(study_dir / "study.json")
    assert meta["reference"] == "zero-shot" and len(meta["runs"]) == len(ALL_RUNS)
    assert meta["environment"]["polyret"] and meta["environment"]["scipy"]
    for name in ALL_RUNS:
        assert (study_dir / "runs" / name / "done.json").is_file()
    log = (study_dir / "runs" / "tiny__mono__s0" / "log.txt").read_text(encoding="utf-8")
    assert "training tiny__mono__s0 (resume=False)" in log  # the trainer's prints land in the run's log

    again = CallLog(calls.path.with_name("again.jsonl"))
    status = run(config, study_dir, again)
    assert {o.state for o in status.runs} == {"skipped"}
    assert again.entries() == []


def test_each_run_records_how_much_of_the_machine_it_had(study):
    config, study_dir, calls = study
    run(config, study_dir, calls, only=["tiny__mono__s0"])
    environment = read_json(study_dir / "study.json")["environment"]
    assert environment["cpu_count"] == os.cpu_count() and environment["cpu"]
    info = read_json(study_dir / "runs" / "tiny__mono__s0" / "run.json")
    assert info["cpu_seconds"] >= 0 and info["seconds"] >= info["train_seconds"] >= 0
    assert info["load_average"] == pytest.approx(list(os.getloadavg()), abs=5.0) and len(info["load_average"]) == 3


def test_interrupted_study_finishes_only_the_missing_work(study):
    config, study_dir, calls = study

    class KilledTrainer(FakeTrainer):
        def __call__(self, run_spec, run_dir, resume):
            if run_spec.name == "tiny__xy__s0":
                self.calls.add("train", run_spec.name, resume=resume)
                (run_dir / "checkpoint-1").mkdir(parents=True)  # it got as far as a checkpoint
                raise KeyboardInterrupt
            return super().__call__(run_spec, run_dir, resume)

    with pytest.raises(KeyboardInterrupt):
        run(config, study_dir, calls, trainer=KilledTrainer(calls))
    first = set(calls.names("train"))
    assert first == {"tiny__mono__s0", "tiny__mono__s1", "tiny__xy__s0"}

    again = CallLog(calls.path.with_name("again.jsonl"))
    status = run(config, study_dir, again)
    assert status.ok
    assert [o.name for o in status.runs if o.state == "skipped"] == ALL_RUNS[:3]
    retrained = again.entries("train")
    assert [e["name"] for e in retrained] == ALL_RUNS[3:]
    assert retrained[0]["resume"] is True  # the interrupted run resumes from its checkpoint
    assert all(e["resume"] is False for e in retrained[1:])
    assert {e["name"] for e in again.entries("eval")} == set(ALL_RUNS[3:])


def test_interrupted_evaluation_resumes_at_the_next_task(study):
    config, study_dir, calls = study

    class KilledEvaluator(FakeEvaluator):
        def __call__(self, model, tasks, output_dir, options):
            if Path(output_dir).parent.name == "tiny__mono__s0" and tasks == ["tatoeba"]:
                raise KeyboardInterrupt
            return super().__call__(model, tasks, output_dir, options)

    with pytest.raises(KeyboardInterrupt):
        run(config, study_dir, calls, evaluator=KilledEvaluator(calls))
    again = CallLog(calls.path.with_name("again.jsonl"))
    run(config, study_dir, again)
    assert "tiny__mono__s0" not in again.names("train")  # training was done: not repeated
    mono = [e["task"] for e in again.entries("eval") if e["name"] == "tiny__mono__s0"]
    assert mono == ["tatoeba", "udhr"]  # xquad-r was finished


def test_config_changes_redo_only_what_they_touch(study, tmp_path: Path):
    config, study_dir, calls = study
    run(config, study_dir, calls)
    # eval options of one task: re-evaluate that task everywhere, train nothing
    config.write_text(
        STUDY_YAML.format(model="tiny-model").replace("max_sentences: 40", "max_sentences: 30"), encoding="utf-8"
    )
    again = CallLog(tmp_path / "eval-change.jsonl")
    run(config, study_dir, again)
    assert again.names("train") == []
    assert {e["task"] for e in again.entries("eval")} == {"tatoeba"}
    assert len(again.entries("eval")) == len(ALL_RUNS)
    # the training budget: retrain (fresh, old attempt moved aside) and re-evaluate the trained runs only
    config.write_text(
        STUDY_YAML.format(model="tiny-model")
        .replace("max_steps: 3", "max_steps: 4")
        .replace("max_sentences: 40", "max_sentences: 30"),
        encoding="utf-8",
    )
    third = CallLog(tmp_path / "train-change.jsonl")
    run(config, study_dir, third)
    assert sorted(third.names("train")) == sorted(ALL_RUNS[1:])
    assert all(e["resume"] is False for e in third.entries("train"))
    assert "tiny__zero-shot" not in third.names("eval")
    stale = list((study_dir / "runs" / "tiny__mono__s0").glob("stale-*"))
    assert len(stale) == 1 and (stale[0] / "train" / "model" / "config.json").is_file()


class PrecisionRecorder:
    """A fake trainer and evaluator that log the precision each stage was handed and record it in the result, as
    the real ones do (a resolved precision, never ``auto``)."""

    def __init__(self, calls: CallLog) -> None:
        self.calls = calls
        self.trainer, self.evaluator = FakeTrainer(calls), FakeEvaluator(calls)

    def train(self, run_spec, run_dir: Path, resume: bool) -> Path:
        self.calls.add("train-precision", run_spec.name, precision=run_spec.config.precision)
        return self.trainer(run_spec, run_dir, resume)

    def evaluate(self, model: str, tasks: list[str], output_dir: Path, options: dict) -> list:
        self.evaluator.model_info = {"name": "tiny-model", "precision": options["precision"]}
        return self.evaluator(model, tasks, output_dir, options)


def on_cpu(monkeypatch: pytest.MonkeyPatch, native_bf16: bool) -> None:
    monkeypatch.setattr(precision, "cpu_capabilities", lambda: {"avx512_bf16": native_bf16})


def test_auto_precision_is_resolved_once_per_study_not_per_machine(study, monkeypatch, tmp_path: Path):
    config, study_dir, calls = study
    recorder = PrecisionRecorder(calls)
    on_cpu(monkeypatch, native_bf16=True)
    run(config, study_dir, calls, only=["tiny__mono__s0"], trainer=recorder.train, evaluator=recorder.evaluate)
    assert read_json(study_dir / "study.json")["auto_precision"] == "bf16"

    on_cpu(monkeypatch, native_bf16=False)  # the next part of the study lands on a machine without native bf16
    later = CallLog(tmp_path / "later.jsonl")
    recorder = PrecisionRecorder(later)
    terminal = io.StringIO()
    status = run(
        config,
        study_dir,
        later,
        only=["tiny__xy__s0"],
        trainer=recorder.train,
        evaluator=recorder.evaluate,
        console=Console(file=terminal, width=400),
    )
    assert "runs in bf16" in terminal.getvalue() and "emulated" in terminal.getvalue()
    assert status.ok and [e["precision"] for e in later.entries("train-precision")] == ["bf16"]
    assert read_json(study_dir / "runs" / "tiny__xy__s0" / "train.done.json")["precision"] == "bf16"
    assert {read_json(study_dir / "runs/tiny__xy__s0/results" / f"{t}.json")["model"]["precision"] for t in TASKS} == {
        "bf16"
    }
    info = read_json(study_dir / "runs" / "tiny__xy__s0" / "run.json")
    declared = {r.name: r for r in expand_runs(load_study_config(config))}["tiny__xy__s0"]
    assert info["fingerprint"] == declared.fingerprint  # the config says auto: pinning changes no fingerprint
    assert info["train_precision"] == "bf16" and info["environment"]["polyret"]
    assert read_json(study_dir / "study.json")["auto_precision"] == "bf16"


def test_a_finished_run_recorded_in_another_precision_runs_again(study, monkeypatch, tmp_path: Path):
    config, study_dir, calls = study
    on_cpu(monkeypatch, native_bf16=False)
    recorder = PrecisionRecorder(calls)
    run(config, study_dir, calls, only=["tiny__zero-shot", "tiny__mono__s0"], evaluator=recorder.evaluate)
    # a study started before the rule: its zero-shot ran in bf16, so that is what auto means in it
    meta = read_json(study_dir / "study.json")
    del meta["auto_precision"]
    (study_dir / "study.json").write_text(json.dumps(meta), encoding="utf-8")
    zero_shot = study_dir / "runs" / "tiny__zero-shot" / "results"
    for task in TASKS:
        result = read_json(zero_shot / f"{task}.json")
        result["model"]["precision"] = "bf16"
        (zero_shot / f"{task}.json").write_text(json.dumps(result), encoding="utf-8")

    again = CallLog(tmp_path / "again.jsonl")
    recorder = PrecisionRecorder(again)
    only = ["tiny__zero-shot", "tiny__mono__s0"]
    status = run(config, study_dir, again, only=only, trainer=recorder.train, evaluator=recorder.evaluate)
    assert [o.state for o in status.runs] == ["skipped", "done"]
    assert again.names("train") == ["tiny__mono__s0"]  # mono s0 ran in fp32: trained and evaluated again in bf16
    assert {e["task"] for e in again.entries("eval")} == set(TASKS)
    stale = list((study_dir / "runs" / "tiny__mono__s0").glob("stale-*"))
    assert len(stale) == 1 and read_json(stale[0] / "results" / "udhr.json")["model"]["precision"] == "fp32"
    assert read_json(study_dir / "study.json")["auto_precision"] == "bf16"


def test_a_training_started_in_another_precision_starts_again_instead_of_resuming(study, monkeypatch):
    config, study_dir, calls = study
    on_cpu(monkeypatch, native_bf16=True)
    declared = {r.name: r for r in expand_runs(load_study_config(config))}["tiny__mono__s0"]
    run_dir = study_dir / "runs" / "tiny__mono__s0"
    # killed mid-training before the rule: its trainer recorded the config as given, `auto`
    (run_dir / "train" / "checkpoint-1").mkdir(parents=True)
    (run_dir / "train" / "config.yaml").write_text("precision: auto\n", encoding="utf-8")
    write_json(run_dir / "train.started.json", {"fingerprint": declared.train_fingerprint})

    status = run(config, study_dir, calls, only=["tiny__mono__s0"], trainer=PrecisionRecorder(calls).train)
    assert status.ok
    assert [(e["name"], e["resume"]) for e in calls.entries("train")] == [("tiny__mono__s0", False)]
    assert [e["precision"] for e in calls.entries("train-precision")] == ["bf16"]
    stale = list(run_dir.glob("stale-*"))
    assert len(stale) == 1 and (stale[0] / "train" / "checkpoint-1").is_dir()


def test_a_second_compare_on_a_study_being_run_is_refused_in_one_line(study):
    config, study_dir, calls = study
    with study_lock(study_dir), pytest.raises(PolyretError) as refused:
        run(config, study_dir, calls)
    message = str(refused.value)
    assert "is being run by polyret compare (pid" in message and "--study-dir" in message and "\n" not in message
    assert calls.entries("train") == [] and calls.entries("eval") == []
    assert run(config, study_dir, calls).ok  # released with its holder


def test_resume_checkpoints_are_removed_once_training_is_done(study):
    config, study_dir, calls = study
    run(config, study_dir, calls, only=["tiny__mono__s0"])
    train_dir = study_dir / "runs" / "tiny__mono__s0" / "train"
    assert (train_dir / "model" / "config.json").is_file()
    assert not (train_dir / "checkpoint-1").exists()


def test_a_failing_run_does_not_stop_the_study(study):
    config, study_dir, calls = study
    status = run(config, study_dir, calls, trainer=FakeTrainer(calls, fail={"tiny__xy__s0"}))
    assert [o.name for o in status.failed] == ["tiny__xy__s0"]
    assert "synthetic training failure" in status.failed[0].error
    assert sum(o.state == "done" for o in status.runs) == len(ALL_RUNS) - 1
    log = status.failed[0].log.read_text(encoding="utf-8")
    assert "Traceback" in log and "RuntimeError: synthetic training failure" in log
    assert "1 failed" in status.summary()
    # the next attempt retries only the failed run
    again = CallLog(calls.path.with_name("again.jsonl"))
    assert run(config, study_dir, again).ok
    assert again.names("train") == ["tiny__xy__s0"]


def test_only_selects_runs_by_name_or_pattern(study):
    config, study_dir, calls = study
    status = run(config, study_dir, calls, only=["tiny__zero-shot", "tiny__hybrid*__s1"])
    assert [o.name for o in status.runs] == ["tiny__zero-shot", "tiny__hybrid-a0.25__s1", "tiny__hybrid-a0.5__s1"]
    runs = expand_runs(load_study_config(config))
    with pytest.raises(UnknownNameError, match="unknown run 'tiny__best'"):
        select_runs(runs, ["tiny__best"])


def test_default_path_checks_task_options_before_any_work(tmp_path: Path):
    config = write_study_config(tmp_path / "bad.yaml", text=STUDY_YAML.replace("max_sentences: 40", "max_sentence: 40"))
    with pytest.raises(ConfigError, match=r"bad.yaml: eval.tasks.tatoeba: unknown option 'max_sentence'"):
        run_study(config, tmp_path / "study", trainer=FakeTrainer(CallLog(tmp_path / "c.jsonl")), show_progress=False)
    assert not (tmp_path / "study" / "runs").exists()


def test_a_bad_eval_language_fails_at_study_start_before_any_run(tmp_path: Path):
    config = write_study_config(tmp_path / "bad.yaml", text=STUDY_YAML.replace("[sw, kk, jv,", "[sw, kk, jvx,"))
    calls = CallLog(tmp_path / "c.jsonl")
    with pytest.raises(ConfigError, match=r"bad.yaml: eval.tasks.tatoeba.languages: unknown language .*'jvx'"):
        run(config, tmp_path / "study", calls)
    assert not calls.entries("train") and not calls.entries("eval") and not (tmp_path / "study" / "runs").exists()


def test_default_path_checks_training_configs_before_any_work(tmp_path: Path):
    text = STUDY_YAML.replace("batch_size: 4", "batch_size: 4\n  settings: {{optim: {{lrr: 0.1}}}}")
    config = write_study_config(tmp_path / "bad.yaml", text=text)
    with pytest.raises(ConfigError, match=r"bad.yaml: run tiny__mono__s0: .*optim.lrr"):
        run_study(
            config, tmp_path / "study", evaluator=FakeEvaluator(CallLog(tmp_path / "c.jsonl")), show_progress=False
        )


def test_eval_options_split_into_shared_and_task_options():
    options = split_eval_options(["udhr"], {"versions": ["swh"], "articles": "even", "max_length": 64})
    assert options.max_length == 64 and options.languages is None and options.articles is None
    assert options.task_options == {"udhr": {"versions": ["swh"], "articles": "even"}}
    assert options.task_kwargs("udhr")["articles"] == "even"  # reaches UDHR as written


@pytest.mark.slow
def test_sigkill_mid_study_then_rerun_finishes_only_missing_runs(tmp_path: Path):
    """A real process killed with SIGKILL mid-study: the rerun redoes nothing that had finished."""
    config = write_study_config(tmp_path / "study.yaml")
    study_dir, calls_path = tmp_path / "study", tmp_path / "calls.jsonl"
    script = tmp_path / "run.py"
    helpers = Path(__file__).resolve().parents[1]
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(helpers)!r})
        from pathlib import Path
        from helpers.synthetic_study import CallLog, FakeEvaluator, FakeTrainer
        from polyret.study.runner import run_study
        calls = CallLog(Path({str(calls_path)!r}))
        run_study({str(config)!r}, {str(study_dir)!r}, trainer=FakeTrainer(calls, delay=0.4),
                  evaluator=FakeEvaluator(calls, delay=0.1), show_progress=False)
    """),
        encoding="utf-8",
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(study_dir.glob("runs/*/done.json"))) < 3:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the study did not get going"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    finished = {path.parent.name for path in study_dir.glob("runs/*/done.json")}
    assert 3 <= len(finished) < len(ALL_RUNS)
    calls = CallLog(calls_path)
    before = len(calls.entries())

    status = run_study(
        config, study_dir, trainer=FakeTrainer(calls), evaluator=FakeEvaluator(calls), show_progress=False
    )
    assert status.ok and {o.name for o in status.runs if o.state == "skipped"} == finished
    redone = calls.entries()[before:]
    assert not {e["name"] for e in redone} & finished
    assert {path.parent.name for path in study_dir.glob("runs/*/done.json")} == set(ALL_RUNS)
    for name in ALL_RUNS:  # every result file is complete JSON (atomic writes)
        for task in TASKS:
            json.loads((study_dir / "runs" / name / "results" / f"{task}.json").read_text(encoding="utf-8"))
