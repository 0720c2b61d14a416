"""Parties (countries and the EU) and vocabulary terms: reference data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from app.models.common import LStringOut, jsonb


class Party(SQLModel, table=True):
    __tablename__ = "parties"
    code: str = Field(primary_key=True, max_length=2)
    name: dict[str, str] = Field(sa_column=jsonb())
    is_party: bool = Field(default=True)


class PartyPublic(BaseModel):
    code: str
    name: LStringOut
    is_party: bool


class VocabularyTerm(SQLModel, table=True):
    __tablename__ = "vocabulary_terms"
    vocabulary: str = Field(primary_key=True, max_length=64)
    code: str = Field(primary_key=True, max_length=128)
    position: int = Field(default=0)
    title: dict[str, str] = Field(sa_column=jsonb())
    description: dict[str, str] | None = Field(default=None, sa_column=jsonb(nullable=True))
    extra: dict[str, Any] | None = Field(default=None, sa_column=jsonb(nullable=True))


class TermPublic(BaseModel):
    code: str
    title: LStringOut
    description: LStringOut | None = None
    broader: list[str] = Field(default_factory=list, description="Codes of the terms directly above this one")
    narrower: list[str] = Field(default_factory=list, description="Codes of the terms directly below this one")
    extra: dict[str, Any] | None = None


class VocabularyPublic(BaseModel):
    name: str
    terms: list[TermPublic]
