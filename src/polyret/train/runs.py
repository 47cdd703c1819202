"""Run directories for training: resolved config, versions, logs, checkpoints and the final model.

Layout (every JSON/YAML file written atomically)::

    config.yaml            the resolved config (defaults filled in); a resumed run must match it
    run.json               versions, seed, world size, resolved prefixes, status, best checkpoint, final metrics
    checkpoints/           Hugging Face Trainer checkpoints (model, optimizer, scheduler, RNG, trainer state)
    train_log.jsonl        one line per Trainer log event (loss, learning rate, eval_loss, step, epoch)
    batches.rank{r}.jsonl  what each rank trained on at each step: kind, data set, language(s), item ids
    model/                 the final sentence-transformers model (best validation checkpoint when early stopping);
                           written to a temporary sibling and renamed into place, so it is complete or absent;
                           its polyret_training.json records method, alpha, data sets, languages and prefixes

``--resume`` continues from the last checkpoint with the same sampler state (a batch depends only on seed, epoch
and step, and the Trainer replays the epoch's first batches), dropping log lines of steps after that checkpoint.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from polyret.encode.seq2seq import SIDECAR
from polyret.errors import ConfigError, PolyretError
from polyret.io import atomic_write, write_json

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


def prepare_run_dir(run_dir: Path, resolved: dict[str, Any], resume: bool) -> None:
    """Create ``run_dir`` or check that resuming it uses the same config; write ``config.yaml``."""
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
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(config_file) as handle:
        yaml.safe_dump(resolved, handle, allow_unicode=True, sort_keys=False)


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest complete Trainer checkpoint under ``run_dir/checkpoints``, if any."""
    # transformers loads only when this runs, not when runs is imported
    from transformers.trainer_utils import get_last_checkpoint

    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return None
    return get_last_checkpoint(str(folder))


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
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if record.get("step", 0) < step:
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


def save_model_atomically(save: Callable[[str], object], target: Path) -> Path:
    """Call ``save(tmp_dir)`` on a temporary sibling of ``target`` and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save(str(staging))
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, trash / target.name)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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
