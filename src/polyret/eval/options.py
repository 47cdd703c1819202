"""Task options as pydantic models: what a study config may set per task, validated when the config loads.

:class:`EncoderOptions` are the options of the encoder every task shares (``load_encoder``'s keywords);
:class:`TaskOptions` the ones every task takes. Each task's own model (next to its evaluate function, named by its
registry entry, :attr:`polyret.eval.tasks.TaskMetadata.options`) adds the keyword arguments of that function.
"""

from __future__ import annotations

from pydantic import Field

from polyret.validation import StrictModel


class EncoderOptions(StrictModel):
    """Options of the encoder every task of a study entry shares (``load_encoder``'s keywords)."""

    max_length: int | None = Field(None, ge=1)
    pooling: str | None = None
    layer: int | None = None
    device: str | None = None
    cache: bool = True


#: encoder option names (``max_length`` also reaches the tasks that take it)
ENCODER_OPTIONS: tuple[str, ...] = tuple(EncoderOptions.model_fields)


class TaskOptions(StrictModel):
    """Options every task takes; a task's options model adds its own (the keyword arguments of its function)."""

    languages: list[str] | None = None
    batch_size: int = Field(32, ge=1)
    show_progress: bool = True
