"""Where this process sits in a multi-process launch (torchrun, ``accelerate launch``)."""

from __future__ import annotations

import os


def distributed_layout() -> tuple[int, int]:
    """(world size, rank): from ``torch.distributed`` when initialised, else the launcher's environment
    (``WORLD_SIZE``/``RANK``, set by torchrun before the process group exists), else (1, 0)."""
    # torch loads only when this runs, not when distributed is imported
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))


def rank_device() -> str | None:
    """``cuda:LOCAL_RANK`` under a launcher on a CUDA machine (one GPU per process), else None (the default)."""
    # torch loads only when this runs, not when distributed is imported
    import torch

    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is None or not torch.cuda.is_available():
        return None
    return f"cuda:{int(local_rank) % torch.cuda.device_count()}"
