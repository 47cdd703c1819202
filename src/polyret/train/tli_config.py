"""The TLI config (``polyret train --method tli``), validated once at the edge; :mod:`polyret.train.tli` trains it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from polyret.data.languages import get_language
from polyret.precision import DEFAULT_PRECISION, Precision
from polyret.validation import StrictModel, parse


class TliConfig(StrictModel):
    """Settings of one TLI run; paper values [P] are the defaults unless marked polyret default [D]."""

    method: Literal["tli"] = "tli"
    model: str = "multilingual-e5-small"
    language: str = "sw"
    target_language: str = "en"
    dictionary: str = Field("freedict", description="'freedict' (installed dictd pair) or a src<TAB>tgt TSV path")
    n_train: int | None = Field(623, ge=1, description="train pairs; None = all left after the control set")
    n_control: int = Field(63, ge=1)
    loss_layer: int = Field(
        2,
        ge=1,
        description="k: the loss reads hidden_states[k] (0 = embeddings); [P] 2 for the paper's 32-layer decoder, "
        "[D] for an encoder",
    )
    layers: list[int] | None = Field(None, description="0-based layers to adapt; default: all below loss_layer")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="[D] not stated by the paper")
    target_modules: list[str] | None = Field(None, description="default by model type (peft's table)")
    lr: float = Field(2e-4, gt=0)
    warmup_steps: int = Field(50, ge=0, description="[P] the official schedule: linear warm-up, then linear decay")
    batch_size: int = Field(8, ge=2)
    epochs: int = Field(5, ge=1)
    margin: float = Field(0.4, ge=0)
    seed: int = 0
    device: str | None = None
    precision: Precision = Field(DEFAULT_PRECISION, description="of the training steps; similarities stay fp32")

    @field_validator("language", "target_language")
    @classmethod
    def _iso1(cls, code: str) -> str:
        language = get_language(code)
        return language.iso1 or language.iso3

    @field_validator("layers")
    @classmethod
    def _layers_feed_the_loss(cls, layers: list[int] | None, info: ValidationInfo) -> list[int] | None:
        loss_layer = info.data.get("loss_layer", 2)
        if layers is not None and (not layers or any(not 0 <= layer < loss_layer for layer in layers)):
            raise ValueError(
                f"layers {layers} must lie in 0..{loss_layer - 1}: only layers below "
                f"loss_layer {loss_layer} change hidden_states[{loss_layer}]"
            )
        return layers

    @property
    def adapted_layers(self) -> list[int]:
        return sorted(self.layers) if self.layers is not None else list(range(self.loss_layer))


def parse_tli_config(payload: TliConfig | Mapping[str, Any], source: str | Path = "<config>") -> TliConfig:
    """Validate a TLI config mapping (e.g. from ``polyret train`` YAML); problems become one-line ConfigErrors."""
    return parse(TliConfig, payload if isinstance(payload, TliConfig) else dict(payload), source)
