"""Subprocess helper for the training tests: run ``polyret.train`` and optionally die like a killed job.

Usage: ``python _train_worker.py CONFIG.yaml RUN_DIR [--kill-at-step N] [--resume]``. With ``--kill-at-step``
the process SIGKILLs itself at the end of optimizer step N (no cleanup, no final save): a crash after the
checkpoint before it.
"""

from __future__ import annotations

import os
import signal
import sys

from transformers import TrainerCallback

from polyret.train.contrastive import train_contrastive
from polyret.train.methods import load_train_config


class KillAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    config_path, run_dir, *rest = argv
    kill_at = int(rest[rest.index("--kill-at-step") + 1]) if "--kill-at-step" in rest else None
    config = load_train_config(config_path)
    callbacks = [KillAt(kill_at)] if kill_at is not None else []
    train_contrastive(config, run_dir, resume="--resume" in rest, callbacks=callbacks)


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    main(sys.argv[1:])
