"""Mutation inputs as the plain dicts the REST body models validate."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from strawberry import UNSET


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return data_of(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def data_of(input_: Any) -> dict[str, Any]:
    """The fields the client sent (left-out fields stay out, so PATCH semantics hold), by their Python names."""
    return {f.name: _plain(v) for f in dataclasses.fields(input_) if (v := getattr(input_, f.name)) is not UNSET}
