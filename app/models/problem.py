"""RFC 9457 problem details: the body of every REST error, and of one failed item in a bulk request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    """One thing wrong with the input, with where it is."""

    loc: list[str | int] = Field(description="Where: `body`/`query`/`path`/`header`, then names and indexes",
                                 examples=[["body", "title"]])  # fmt: skip
    msg: str = Field(examples=["at least one language is required"])
    type: str = Field(description="Machine-readable kind, e.g. `missing`, `value_error`", examples=["value_error"])
    input: Any = Field(default=None, description="The offending value, when it is a scalar")


class Problem(BaseModel):
    """An RFC 9457 problem (`application/problem+json`); `errors` locates each fault in the input."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI of a page explaining the problem (relative to the API's origin)",
                      examples=["/problems/invalid"])  # fmt: skip
    title: str = Field(examples=["Invalid input"])
    status: int = Field(ge=100, le=599, examples=[422])
    detail: str = Field(examples=["body.title: at least one language is required"])
    code: str | None = Field(default=None, description="Stable machine-readable code, e.g. `NOT_FOUND`",
                             examples=["INVALID"])  # fmt: skip
    errors: list[FieldError] | None = Field(default=None, description="Field-level faults (validation problems)")
    request_id: str | None = Field(default=None, description="Quote it when reporting a 500")
    tombstone: dict[str, Any] | None = Field(
        default=None, description="What remains public of a withdrawn record (410)"
    )


class ItemError(BaseModel):
    """Why one item of a bulk request failed (its siblings are unaffected)."""

    code: str = Field(examples=["INVALID"])
    detail: str
    errors: list[FieldError] | None = None
