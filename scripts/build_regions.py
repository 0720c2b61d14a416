"""Build ``app/reference/data/regions.json``: the UN M49 geographic regions and the country groupings matchmaking
uses for eligibility ("open to Small Island Developing States", "Africa").

Sources:

* The M49 hierarchy (World > region > sub-region > intermediate region, with the area of every country) comes
  from the UN Statistics Division's M49 columns ("Region Code", "Sub-region Code", "Intermediate Region Code"
  and their names) of the Countries & Territories Taxonomy CSV that ships in the ``hdx-python-country``
  package (UN OCHA). Install it in any virtual environment and point ``--source`` at the CSV, or let the script
  find it::

      pip install hdx-python-country
      .venv/bin/python scripts/build_regions.py [--source PATH] [--check]

* The groupings are the lists kept by UN-OHRLLS (Office of the High Representative for the Least Developed
  Countries, Landlocked Developing Countries and Small Island Developing States), which are also the LDC / LLDC /
  SIDS columns of M49; they are transcribed below with their date, because the taxonomy CSV does not carry them.
  Membership changes on graduation (a UN General Assembly decision): update the lists and the `AS_OF` date.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "app" / "reference" / "data" / "regions.json"
AS_OF = "2025-01-01"

# Least Developed Countries after the graduation of Sao Tome and Principe (December 2024): 44.
LDC = """
AO BJ BF BI CF TD KM CD DJ ER ET GM GN GW LS LR MG MW ML MR MZ NE RW SN SL SO SS SD TG UG TZ ZM
AF BD KH LA MM NP TL YE HT KI SB TV
""".split()  # noqa: SIM905
# Landlocked Developing Countries: 32.
LLDC = """
AF AM AZ BT BO BW BF BI CF TD SZ ET KZ KG LA LS MW ML MN NP NE MK PY MD RW SS TJ TM UG UZ ZM ZW
""".split()  # noqa: SIM905
# Small Island Developing States: the UN Member States, then the non-UN members / associate members of the UN
# regional commissions (Cook Islands and Niue are Parties to the Convention).
SIDS_MEMBERS = """
AG BS BH BB BZ CV KM CU DM DO FJ GD GW GY HT JM KI MV MH MU FM NR PW PG WS ST SC SG KN LC VC SB SR TL TO TT
TV VU
""".split()  # noqa: SIM905
SIDS_OTHERS = "CK NU AI AW BM VG KY CW GP MQ MS PR SX TC VI AS PF GU NC MP".split()  # noqa: SIM905
GROUPS = [
    ("LDC", "Least Developed Countries", "199", LDC, 44),
    ("LLDC", "Land Locked Developing Countries", "432", LLDC, 32),
    ("SIDS", "Small Island Developing States", "722", SIDS_MEMBERS + SIDS_OTHERS, 58),
]
TAXONOMY = "Countries & Territories Taxonomy MVP - C&T Taxonomy.csv"


def find_source() -> Path:
    """The taxonomy CSV of an installed hdx-python-country."""
    try:
        import hdx.location  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit("hdx-python-country is not installed here: pip install it, or pass --source PATH") from None
    return Path(hdx.location.__file__).parent / TAXONOMY


def _m49(code: str) -> str:
    return f"{int(code):03d}"


def build(source: Path) -> list[dict[str, Any]]:
    """World, regions, sub-regions and intermediate regions with their member countries, then the groupings."""
    with source.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["Deprecated"] != "Y" and r["ISO 3166-1 Alpha 2-Codes"]]
    areas: dict[str, dict[str, Any]] = {
        "001": {"code": "001", "title": {"en": "World"}, "level": "world", "m49": "001", "broader": [], "countries": []}
    }
    known: set[str] = set()
    for r in rows:
        iso = r["ISO 3166-1 Alpha 2-Codes"].strip()
        known.add(iso)
        chain = ["001"]
        for level, code_col, name_col in (("region", "Region Code", "Region Name"),
                                          ("sub-region", "Sub-region Code", "Sub-region Name"),
                                          ("intermediate-region", "Intermediate Region Code",
                                           "Intermediate Region Name")):  # fmt: skip
            if not r[code_col]:
                continue
            code = _m49(r[code_col])
            area = areas.setdefault(code, {"code": code, "title": {"en": r[name_col].strip()}, "level": level,
                                           "m49": code, "broader": [chain[-1]], "countries": []})  # fmt: skip
            assert area["broader"] == [chain[-1]], f"{code} has two parents"
            chain.append(code)
        for code in chain:
            areas[code]["countries"].append(iso)
    order = {"world": 0, "region": 1, "sub-region": 2, "intermediate-region": 3}
    terms = sorted(areas.values(), key=lambda a: (order[a["level"]], a["title"]["en"]))
    for term in terms:
        term["countries"] = sorted(set(term["countries"]))
    for code, name, m49, members, expected in GROUPS:
        assert len(members) == len(set(members)) == expected, f"{code}: {len(members)} members, expected {expected}"
        unknown = sorted(set(members) - known)
        assert not unknown, f"{code}: not in M49: {unknown}"
        terms.append({"code": code, "title": {"en": name}, "level": "grouping", "m49": m49, "broader": [],
                      "countries": sorted(members), "as_of": AS_OF})  # fmt: skip
    return terms


def check(terms: list[dict[str, Any]]) -> None:
    """Every country sits in exactly one intermediate-or-sub-region chain; every broader term exists."""
    codes = {t["code"] for t in terms}
    assert len(codes) == len(terms), "duplicate code"
    for t in terms:
        assert all(b in codes for b in t["broader"]), t["code"]
    regions = [t for t in terms if t["level"] == "region"]
    assert sorted(t["title"]["en"] for t in regions) == ["Africa", "Americas", "Asia", "Europe", "Oceania"]
    world = next(t for t in terms if t["code"] == "001")
    in_regions = [c for t in regions for c in t["countries"]]
    assert len(in_regions) == len(set(in_regions)), "a country in two regions"
    assert set(world["countries"]) - set(in_regions) <= {"AQ"}, "a country outside every region"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="the taxonomy CSV (default: the installed hdx-python-country)")
    parser.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    args = parser.parse_args(argv)
    terms = build(args.source or find_source())
    check(terms)
    text = "[\n" + ",\n".join("  " + json.dumps(t, ensure_ascii=False) for t in terms) + "\n]\n"  # a term a line
    if args.check:
        assert OUT.read_text(encoding="utf-8") == text, f"{OUT.name} is out of date; run without --check"
    else:
        OUT.write_text(text, encoding="utf-8")
    levels: dict[str, int] = {}
    for t in terms:
        levels[t["level"]] = levels.get(t["level"], 0) + 1
    print(f"regions={len(terms)} " + " ".join(f"{k}={v}" for k, v in levels.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
