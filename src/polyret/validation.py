"""Config validation shared by every stage: the strict base model and the one-line error it turns into.

Configs are validated once, at the edge, into typed models that reject unknown keys (:class:`StrictModel`);
:func:`config_error` turns pydantic's error list into one :class:`~polyret.errors.ConfigError` line naming the
source, the key and the problem, and :func:`parse` does both for a model and a payload.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from polyret.errors import ConfigError, PolyretError

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """A config section: unknown keys are errors (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid")


def _location(error: Any, tags: Collection[str]) -> str:
    parts = [str(part) for part in error["loc"] if not (isinstance(part, str) and part in tags)]
    return ".".join(parts) or "(top level)"


def config_error(err: ValidationError, source: str | Path, *, tags: Collection[str] = ()) -> ConfigError:
    """One line naming ``source``, the key and the problem (and how many more problems there are).

    ``tags``: the discriminator values of tagged unions in the model, which pydantic puts in the key path.
    """
    first = err.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return ConfigError(f"{source}: {_location(first, tags)}: {message}{more}")


def parse(model: type[Model], payload: Any, source: str | Path, *, tags: Collection[str] = ()) -> Model:
    """``payload`` validated as ``model``; every problem is one :class:`ConfigError` line naming ``source``."""
    if isinstance(payload, model):
        return payload
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise config_error(err, source, tags=tags) from None
    except PolyretError as err:  # e.g. an unknown language code, raised inside a validator
        raise ConfigError(f"{source}: {err}") from None
