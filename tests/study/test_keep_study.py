"""scripts/keep_study.sh: a study's finished runs kept without checkpoints report as before and are skipped when the
study is continued from the copy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.synthetic_study import CallLog, FakeEvaluator, FakeTrainer, write_study_config
from polyret.report.claims import evaluate_claims
from polyret.report.tables import load_study
from polyret.study.runner import run_study

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "keep_study.sh"
FINISHED = ["tiny__zero-shot", "tiny__mono__s0", "tiny__hybrid-a0.5__s0"]

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="scripts/keep_study.sh needs rsync")


def _study(config: Path, study_dir: Path, calls: CallLog, only: list[str] | None = None) -> None:
    run_study(
        config, study_dir, only=only, trainer=FakeTrainer(calls), evaluator=FakeEvaluator(calls), show_progress=False
    )


def test_kept_runs_report_alike_and_are_not_rerun(tmp_path: Path):
    config = write_study_config(tmp_path / "study.yaml")
    original = tmp_path / "study"
    _study(config, original, CallLog(tmp_path / "first.jsonl"), only=FINISHED)
    unfinished = original / "runs" / "tiny__xy__s0"
    (unfinished / "train").mkdir(parents=True)  # a run killed mid-training: it needs its checkpoints, not kept

    kept = tmp_path / "kept"
    done = subprocess.run(["bash", str(SCRIPT), str(original), str(kept)], capture_output=True, text=True, check=True)
    assert f"kept {len(FINISHED)} finished run(s)" in done.stdout
    assert sorted(p.name for p in (kept / "runs").iterdir()) == sorted(FINISHED)
    assert not [p for p in kept.rglob("*") if p.name in ("model", "train") or p.name.startswith("checkpoint")]

    claims = [evaluate_claims(load_study(folder), n_resamples=200).to_json() for folder in (original, kept)]
    assert claims[0] == claims[1]

    calls = CallLog(tmp_path / "second.jsonl")
    _study(config, kept, calls)
    trained = set(calls.names("train"))
    assert trained and not trained & set(FINISHED)
    continued = load_study(kept).runs
    assert continued and all(run.done for run in continued)


def test_a_folder_that_is_no_study_is_named_in_one_line(tmp_path: Path):
    result = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path), str(tmp_path / "kept")], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "study.json" in result.stderr
    assert not (tmp_path / "kept").exists()


def test_the_kept_cpu_study_is_not_ignored_by_git():
    """The kept runs must reach the repository, or the next machine starts the study again."""
    root = SCRIPT.parents[1]
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout of polyret")
    kept = "docs/findings/cpu-study/runs/e5-small__mono__s0/results/xquad-r.per_query.npz"
    ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", kept], capture_output=True)
    assert ignored.returncode == 1, f"{kept} is git-ignored"
