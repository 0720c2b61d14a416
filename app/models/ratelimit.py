"""Rate-limit state shared by every API process: one GCRA row per caller (UNLOGGED: losing it in a crash
only forgets who was throttled)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, Text
from sqlmodel import Field, SQLModel


class RateLimitBucket(SQLModel, table=True):
    __tablename__ = "rate_limits"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: str = Field(sa_column=Column(Text, primary_key=True))
    tat: float = Field(sa_column=Column(Float, nullable=False), description="theoretical arrival time, epoch s")
    granted: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
