"""Reference and demo data shipped with the package (built by ``scripts/build_reference.py``)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

__all__ = ["load_demo", "load_parties", "load_vocabularies"]


def _read(name: str) -> Any:
    """Parse one JSON file from the package's ``data`` directory."""
    return json.loads((files("app.reference") / "data" / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def load_parties() -> list[dict[str, Any]]:
    """Return the 196 Parties to the CBD, sorted by ISO code (cached; do not mutate)."""
    return _read("parties.json")


@lru_cache(maxsize=1)
def load_vocabularies() -> dict[str, list[dict[str, Any]]]:
    """Return all controlled vocabularies keyed by vocabulary name (cached; do not mutate).

    `regions` (UN M49 areas and the LDC / LLDC / SIDS groupings) is generated into its own file by
    ``scripts/build_regions.py``; the others are curated in ``vocabularies.json``."""
    return {**_read("vocabularies.json"), "regions": _read("regions.json")}


@lru_cache(maxsize=1)
def load_demo() -> dict[str, Any]:
    """Return the demo data set: decisions, nodes, cooperation requests, record templates (cached)."""
    return _read("demo.json")
