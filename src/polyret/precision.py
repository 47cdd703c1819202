"""Which number format the model computes in: ``auto | fp32 | bf16`` (``int8`` for the onnx backend, ``fp16`` for
training), and the one place that turns ``auto`` into a choice.

``auto`` means bf16 autocast where the hardware runs bf16 natively: a CPU with AVX512-BF16 or AMX-BF16 (as torch's
own CPU capability table reports it, ``torch.cpu.get_capabilities()``) or a CUDA device that supports bf16;
everywhere else fp32, and that fallback is logged once per device kind. Emulated bf16 is never chosen: on a CPU
without those instructions bf16 autocast is several times *slower* than fp32. Only the transformer runs under
autocast; pooling, normalisation, similarity scores, metrics and stored embeddings stay fp32. The resolved
precision (never ``auto``) is what results, model cards and embedding-cache keys record.

The onnx backend (:mod:`polyret.encode.onnx_backend`) runs the exported graph in fp32 (``auto`` and ``fp32``) or with
dynamically quantised int8 weights (``int8``); it has no bf16 path.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from polyret.errors import ConfigError

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16"]
EncodePrecision = Literal["auto", "fp32", "bf16", "int8"]
TrainPrecision = Literal["auto", "fp32", "bf16", "fp16"]
Backend = Literal["torch", "onnx"]

BACKENDS: tuple[str, ...] = ("torch", "onnx")
ENCODE_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")
TRAIN_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
# The default everywhere (encoding, training, studies): the fast format where the hardware has it. Measured parity
# with fp32 is in docs/reproduction.md ("Precision and backends").
DEFAULT_PRECISION = "auto"
DEFAULT_BACKEND = "torch"
# torch.cpu.get_capabilities() keys that mean native bf16 dot products (x86: AVX512-BF16, AMX; arm64: BF16 / SVE).
_CPU_BF16_KEYS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")
_VALID = {"torch": ("auto", "fp32", "bf16"), "onnx": ("auto", "fp32", "int8")}

_fallback_logged: set[str] = set()


def cpu_capabilities() -> Mapping[str, Any]:
    """torch's runtime CPU feature table (cpuinfo); a separate function so tests can simulate another CPU."""
    # torch loads only when a precision is resolved or applied, not when polyret.precision is imported
    import torch

    return torch.cpu.get_capabilities()


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 dot-product instructions (AVX512-BF16, AMX-BF16, or arm64 BF16)."""
    capabilities = cpu_capabilities()
    return any(bool(capabilities.get(key)) for key in _CPU_BF16_KEYS)


def device_has_native_bf16(device: str) -> bool:
    """Whether ``device`` (``cpu``, ``cuda``, ``cuda:1``, ...) computes bf16 natively."""
    # torch loads only when a precision is resolved or applied, not when polyret.precision is imported
    import torch

    kind = torch.device(device).type
    if kind == "cpu":
        return cpu_has_native_bf16()
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu`` (what the encoders and trainers pick when not told)."""
    # torch loads only when a precision is resolved or applied, not when polyret.precision is imported
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_precision(precision: str, backend: str = DEFAULT_BACKEND) -> None:
    """A ConfigError naming the valid values when ``precision`` does not apply to ``backend``."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if precision not in _VALID[backend]:
        raise ConfigError(
            f"precision {precision!r} is not available with backend {backend}; use one of {', '.join(_VALID[backend])}"
            + (" (int8 needs --backend onnx)" if precision == "int8" else "")
            + (" (bf16 needs --backend torch)" if precision == "bf16" and backend == "onnx" else "")
        )


def resolve_precision(precision: str, device: str | None = None, backend: str = DEFAULT_BACKEND) -> str:
    """The precision to run: ``precision`` itself, or for ``auto`` bf16 where ``device`` has native bf16, else fp32.

    ``device`` defaults to :func:`default_device`. The fp32 fallback of ``auto`` is logged once per device kind.
    """
    check_precision(precision, backend)
    if precision != "auto":
        return precision
    if backend == "onnx":
        return "fp32"
    device = device or default_device()
    if device_has_native_bf16(device):
        return "bf16"
    kind = device.split(":")[0]
    if kind not in _fallback_logged:
        _fallback_logged.add(kind)
        log.info(
            "precision auto: %s has no native bf16 (AVX512-BF16/AMX on CPUs, bf16 support on GPUs); using fp32",
            "this CPU" if kind == "cpu" else f"device {device}",
        )
    return "fp32"


def resolve_train_precision(precision: str, device: str | None = None) -> str:
    """Training precision (``auto | fp32 | bf16 | fp16``) to run: ``auto`` as in :func:`resolve_precision`."""
    if precision not in TRAIN_PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(TRAIN_PRECISIONS)}")
    return precision if precision == "fp16" else resolve_precision(precision, device)


def trainer_precision_flags(precision: str, device: str | None = None) -> dict[str, bool]:
    """``bf16`` / ``fp16`` keyword arguments of transformers' ``TrainingArguments`` for a training precision.

    bf16 on a CPU also sets ``use_cpu``: without it transformers refuses bf16 when no bf16 GPU is visible.
    """
    device = device or default_device()
    resolved = resolve_train_precision(precision, device)
    flags = {"bf16": resolved == "bf16", "fp16": resolved == "fp16"}
    if resolved == "bf16" and device.split(":")[0] == "cpu":
        flags["use_cpu"] = True
    return flags


@contextlib.contextmanager
def autocast(precision: str, device: str) -> Iterator[None]:
    """bf16 autocast on ``device`` for ``precision == "bf16"``; nothing for fp32 (a resolved precision is expected)."""
    if precision != "bf16":
        yield
        return
    # torch loads only when a precision is resolved or applied, not when polyret.precision is imported
    import torch

    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
        yield
