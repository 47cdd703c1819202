"""Run directories for training: resolved config, versions, logs, checkpoints and the final model.

Layout (every JSON/YAML file written atomically)::

    config.yaml            the resolved config (defaults filled in); a resumed run must match it
    run.json               versions, seed, world size, resolved prefixes, status, best checkpoint, final metrics
    checkpoints/           Hugging Face Trainer checkpoints (model, optimizer, scheduler, RNG, trainer state);
                           removed when training ends, unless ``polyret train --keep-checkpoints``
    train_log.jsonl        one line per Trainer log event (loss, learning rate, eval_loss, step, epoch)
    batches.rank{r}.jsonl  what each rank trained on at each step: kind, data set, language(s), item ids
    model/                 the final sentence-transformers model (best validation checkpoint when early stopping);
                           written to a temporary sibling and renamed into place, so it is complete or absent;
                           its polyret_training.json records method, alpha, data sets, languages and prefixes

``--resume`` continues from the last checkpoint with the same sampler state (a batch depends only on seed, epoch
and step, and the Trainer replays the epoch's first batches), dropping log lines of steps after that checkpoint.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from polyret.encode.identity import SIDECAR
from polyret.errors import ConfigError, PolyretError
from polyret.io import atomic_write, iter_lines, write_json

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
TRAIN_LOG = "train_log.jsonl"
MODEL_DIR = "model"
#: written into the final model folder: what it was trained on (so evaluation can refuse its training benchmark)
TRAINING_INFO = "polyret_training.json"


def batch_log_path(run_dir: Path, rank: int) -> Path:
    return run_dir / f"batches.rank{rank}.jsonl"


def versions() -> dict[str, Any]:
    """Library versions, Python, platform, accelerator and the polyret commit (when run from a checkout)."""
    out: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("polyret", "torch", "transformers", "sentence-transformers", "datasets", "accelerate", "numpy"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            out[package] = None
    try:
        # torch loads only when this runs, not when runs is imported
        import torch

        out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover - informational only
        out["device"] = "unknown"
    checkout = Path(__file__).resolve().parents[3]
    try:
        out["git_commit"] = (
            subprocess.run(
                ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def check_run_dir(run_dir: Path, resolved: dict[str, Any], resume: bool) -> None:
    """Refuse to start over a finished or started run (without ``resume``) or to resume it with another config.

    Writes nothing: a run checks this first and calls :func:`prepare_run_dir` only once it can start, so a run
    that fails before its first step leaves no ``config.yaml`` behind to block its rerun.
    """
    config_file = run_dir / CONFIG_FILE
    if config_file.exists():
        if not resume:
            raise PolyretError(
                f"{run_dir} already holds a run; pass --resume to continue it or choose another run directory"
            )
        previous = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        changed = _differences(previous, resolved)
        if changed:
            raise ConfigError(
                f"{config_file}: the run was started with a different config ({', '.join(changed[:5])}"
                " changed); resume with the same config or start a new run directory"
            )


def prepare_run_dir(run_dir: Path, resolved: dict[str, Any], resume: bool) -> None:
    """Check ``run_dir`` (see :func:`check_run_dir`), create it and write ``config.yaml``: the run starts now."""
    check_run_dir(run_dir, resolved, resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / CONFIG_FILE) as handle:
        yaml.safe_dump(resolved, handle, allow_unicode=True, sort_keys=False)


#: a Trainer checkpoint holds one of these (full model, sharded index, or a PEFT adapter)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last: its presence says the checkpoint is finished


def checkpoint_complete(folder: Path) -> bool:
    """True when ``folder`` holds model weights and a readable ``trainer_state.json``."""
    try:
        json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any((folder / name).is_file() for name in WEIGHT_FILES)


def last_checkpoint(checkpoints: Path, *, move_aside: bool = True) -> str | None:
    """The newest complete ``checkpoint-N`` in ``checkpoints`` (a Trainer's output folder), if any.

    The Hugging Face Trainer writes a checkpoint in place, so a run killed while saving leaves a ``checkpoint-N``
    without its trainer state or weights, which would crash the resume. Such a folder is skipped, named in a
    warning and (with ``move_aside``; only one process of a multi-process run should) renamed to
    ``incomplete-checkpoint-N-<time>``, so that the Trainer can write ``checkpoint-N`` again and never rotates
    the partial one back into use.
    """
    if not checkpoints.is_dir():
        return None
    steps = sorted(
        (int(match.group(1)), path)
        for path in checkpoints.iterdir()
        if path.is_dir() and (match := re.fullmatch(r"checkpoint-(\d+)", path.name))
    )
    for _, folder in reversed(steps):
        if checkpoint_complete(folder):
            return str(folder)
        aside = folder
        if move_aside:
            aside = checkpoints / f"incomplete-{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(folder, aside)
        log.warning(
            "%s is incomplete (no %s or model weights: the run stopped while saving it); resuming from an earlier "
            "checkpoint%s",
            folder,
            TRAINER_STATE,
            f", the partial one moved aside to {aside}" if move_aside else "",
        )
    return None


def remove_checkpoints(run_dir: Path, keep: Path, hint: str) -> int:
    """Delete the trainers' ``checkpoint-N`` folders (resume state) under ``run_dir`` once training is done, never
    the model ``keep`` itself, and ``checkpoints/`` folders left empty; returns how many were removed. ``hint`` says
    how to keep them (a 2-step run of a small model leaves over 1 GB of optimizer state)."""
    keep = keep.resolve()
    removed = 0
    for path in sorted(run_dir.rglob("checkpoint-*")):
        if (
            path.is_dir()
            and path.name.removeprefix("checkpoint-").isdigit()
            and keep != path.resolve()
            and path.resolve() not in keep.parents
        ):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
            log.info("removed resume checkpoint %s (training is done; %s)", path, hint)
    for folder in sorted(run_dir.rglob(CHECKPOINTS), reverse=True):
        with contextlib.suppress(OSError):  # only when empty
            folder.rmdir()
    return removed


def recorded_kept_step(model_dir: str | Path) -> int | None:
    """The training step whose weights a saved model holds, as its trainer recorded it (``None``: not recorded)."""
    for name in (TRAINING_INFO, SIDECAR):
        path = Path(model_dir) / name
        if path.is_file():
            step = json.loads(path.read_text(encoding="utf-8")).get("kept_step")
            if step is not None:
                return int(step)
    return None


def checkpoint_step(checkpoint: str | None) -> int:
    return 0 if checkpoint is None else int(Path(checkpoint).name.rsplit("-", 1)[-1])


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop lines whose ``step`` is ≥ ``step`` (work after the checkpoint a resumed run restarts from)."""
    if not path.exists():
        return
    kept = []
    # a kill can cut the last line anywhere, even inside a UTF-8 sequence: such a line is dropped, not an error
    for _, line in iter_lines(path, blank_lines="skip", errors="replace"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if isinstance(record, dict) and record.get("step", 0) < step:
            kept.append(line)
    with atomic_write(path) as handle:
        handle.write("".join(f"{line}\n" for line in kept))


def update_run_file(run_dir: Path, **fields: Any) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    payload: dict[str, Any] = {}
    if path.exists():
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            payload = {}
    payload.update(fields)
    write_json(path, payload)
    return payload


class JsonlLog:
    """Append-only JSON lines (flushed per line so a killed run keeps what it logged)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
