"""The onnx backend: a sentence encoder's transformer exported once to ONNX (fp32, or with int8 weights) and run by
ONNX Runtime on the CPU. Needs the ``fast`` extra (``pip install 'polyret[fast]'``: onnxruntime, onnx).

Only the transformer moves. Tokenisation, prefixes, max length, pooling (mean over the pooling mask, or CLS),
the modules after pooling (LaBSE's Dense) and L2 normalisation stay the torch code of
:class:`~polyret.encode.encoder.SentenceTransformerEncoder`, so the two backends differ only in how
``last_hidden_state`` is computed.

* Export: ``torch.onnx.export`` of ``(input_ids, attention_mask) -> last_hidden_state`` with dynamic batch and
  sequence axes (opset 17). sentence-transformers' own ONNX backend needs optimum-onnx, whose releases pin
  transformers < 4.58 (optimum-intel, for OpenVINO: < 5.6), which clashes with the transformers 5 polyret uses.
* int8: ``onnxruntime.quantization.quantize_dynamic`` (weights QInt8 per output channel, activations quantised per
  batch at run time) with ``reduce_range`` (7-bit weights): ONNX Runtime's advice for its u8s8 kernels on AVX2 /
  AVX-512 CPUs without VNNI, whose 16-bit intermediate sums saturate with full 8-bit weights. On the embedded
  e5-small it raised the mean cosine to the fp32 vectors from 0.990 to 0.997.
* Files: ``$POLYRET_HOME/onnx/<key>/<precision>/model.onnx``; ``key`` hashes the weights' identity and the export
  settings, so each model is exported (and quantised) once and reused. A folder is built beside its target and
  renamed into place, so a killed export leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from polyret.errors import ModelError
from polyret.io import polyret_home

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
OPSET = 17
MODEL_FILE = "model.onnx"
QUANTIZATION: dict[str, Any] = {"method": "dynamic", "weights": "QInt8", "per_channel": True, "reduce_range": True}
_EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's 2 GB limit, with room: larger graphs keep weights in side files


def export_settings(precision: str) -> dict[str, Any]:
    """What the exported graph depends on besides the weights (part of the cache key and of ``describe()``)."""
    settings: dict[str, Any] = {"export_version": EXPORT_VERSION, "opset": OPSET, "output": "last_hidden_state"}
    if precision == "int8":
        settings["quantization"] = QUANTIZATION
    return settings


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a one-line ModelError saying how to install it."""
    try:
        # onnxruntime and torch load only when the onnx backend runs, not when this module is imported
        import onnxruntime
    except ImportError as err:
        raise ModelError(
            "the onnx backend needs onnxruntime and onnx: pip install 'polyret[fast]' (or use --backend torch)"
        ) from err
    return onnxruntime


def onnx_model_path(key: str, precision: str) -> Path:
    return polyret_home() / "onnx" / key / precision / MODEL_FILE


def ensure_onnx_model(transformer: Any, key: str, precision: str) -> Path:
    """The ONNX file of ``transformer`` (a Hugging Face encoder) in ``precision`` (fp32 | int8), exported once."""
    target = onnx_model_path(key, precision)
    if target.is_file():
        return target
    require_onnxruntime()
    if precision == "int8":
        source = ensure_onnx_model(transformer, key, "fp32")
        log.info("quantising %s to int8 (once per model)", source)
        _build(target.parent, lambda folder: _quantize(source, folder / MODEL_FILE))
    else:
        log.info("exporting the transformer to ONNX (once per model) -> %s", target)
        _build(target.parent, lambda folder: _export(transformer, folder / MODEL_FILE))
    return target


def _build(destination: Path, write: Any) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.build-", dir=destination.parent))
    try:
        write(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the rest of $POLYRET_HOME is not
        try:
            os.replace(staging, destination)
        except OSError:  # another process finished the same export first
            if not (destination / MODEL_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _last_hidden_state(transformer: Any) -> Any:
    """The module that is exported: ``(input_ids, attention_mask) -> last_hidden_state`` of ``transformer``."""
    # onnxruntime and torch load only when the onnx backend runs, not when this module is imported
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHiddenState(transformer).eval()


def _export(transformer: Any, path: Path) -> None:
    # onnxruntime and torch load only when the onnx backend runs, not when this module is imported
    import torch

    module = _last_hidden_state(transformer)
    example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter of the TorchScript exporter
        # The TorchScript exporter (dynamo=False): the torch.export path needs onnxscript and was slower to run here.
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=OPSET,
            dynamo=False,
        )


def _quantize(source: Path, path: Path) -> None:
    # onnxruntime and torch load only when the onnx backend runs, not when this module is imported
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic warns through the root logger to "consider pre-processing"
    try:
        quantize_dynamic(
            str(source),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=QUANTIZATION["per_channel"],
            reduce_range=QUANTIZATION["reduce_range"],
            use_external_data_format=source.stat().st_size > _EXTERNAL_DATA_BYTES,
        )
    finally:
        root.setLevel(level)


class OnnxTransformer:
    """An ONNX Runtime session over an exported transformer: ``(input_ids, attention_mask) -> last_hidden_state``.

    Runs on as many threads as torch is set to use (``torch.set_num_threads`` / ``OMP_NUM_THREADS``), with every
    graph optimisation (attention, layer-norm and GELU fusion).
    """

    def __init__(self, path: Path) -> None:
        # onnxruntime and torch load only when the onnx backend runs, not when this module is imported
        import torch

        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
            raise ModelError(
                f"{path}: cannot load the exported model ({err}); delete its folder to export again"
            ) from err
        self.path = path

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        (hidden,) = self.session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(hidden, dtype=np.float32)
