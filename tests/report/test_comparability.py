"""Which recorded encoder settings make two results "not comparable" (PROTOCOLS §6.1)."""

from __future__ import annotations

from polyret.encode.onnx_backend import export_settings
from polyret.eval.results import MainScore, TaskResult
from polyret.report.comparability import settings_differences


def _result(**model: object) -> TaskResult:
    return TaskResult(
        task="tatoeba",
        main_score=MainScore(metric="p@1", value=50.0),
        languages={"jv": {"p@1": 50.0}},
        model={"model": "tiny", "query_prefix": "query: ", "precision": "fp32", **model},
    )


def test_a_torch_result_and_an_onnx_int8_result_are_not_comparable():
    """The encoder records ``backend: "torch"`` or the onnx export settings (SentenceEncoder.describe)."""
    torch_result = _result(backend="torch")
    onnx_result = _result(backend={"name": "onnx", **export_settings("int8")}, precision="int8")
    assert settings_differences(torch_result, onnx_result) == ["backend", "precision"]
    onnx_fp32 = _result(backend={"name": "onnx", **export_settings("fp32")})
    assert settings_differences(torch_result, onnx_fp32) == ["backend"]


def test_a_result_written_before_the_backend_was_recorded_compares_equal_with_torch_only():
    old = _result()
    assert settings_differences(old, _result(backend="torch")) == []
    assert settings_differences(old, _result(backend={"name": "onnx", **export_settings("fp32")})) == ["backend"]
