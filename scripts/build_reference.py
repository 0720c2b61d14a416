"""Build and validate the reference data shipped in ``app/reference/data``.

* ``parties.json`` is generated from pycountry (ISO 3166-1 names and their gettext
  translations) plus a table of United Nations short-name overrides.
* ``vocabularies.json`` and ``demo.json`` are curated by hand; this script checks them
  (counts, codes, cross references) and rewrites them in the canonical pretty format.

Run from the repository root::

    .venv/bin/python scripts/build_reference.py           # build + validate + write
    .venv/bin/python scripts/build_reference.py --check   # validate only, write nothing
"""

from __future__ import annotations

import argparse
import gettext
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pycountry

DATA_DIR = Path(__file__).resolve().parent.parent / "app" / "reference" / "data"
LANGS = ("ar", "en", "es", "fr", "ru", "zh")
GETTEXT_LANG = {"ar": "ar", "es": "es", "fr": "fr", "ru": "ru", "zh": "zh_CN"}

# The 193 Member States of the United Nations (ISO 3166-1 alpha-2).
UN_MEMBER_STATES = """
AF AL DZ AD AO AG AR AM AU AT AZ BS BH BD BB BY BE BZ BJ BT BO BA BW BR BN BG BF BI CV KH
CM CA CF TD CL CN CO KM CG CR CI HR CU CY CZ KP CD DK DJ DM DO EC EG SV GQ ER EE SZ ET FJ
FI FR GA GM GE DE GH GR GD GT GN GW GY HT HN HU IS IN ID IR IQ IE IL IT JM JP JO KZ KE KI
KW KG LA LV LB LS LR LY LI LT LU MG MW MY MV ML MT MH MR MU MX FM MC MN ME MA MZ MM NA NR
NP NL NZ NI NE NG MK NO OM PK PW PA PG PY PE PH PL PT QA KR MD RO RU RW KN LC VC WS SM ST
SA SN RS SC SL SG SK SI SB SO ZA SS ES LK SD SR SE CH SY TJ TH TL TG TO TT TN TR TM TV UG
UA AE GB TZ US UY UZ VU VE VN YE ZM ZW
""".split()  # noqa: SIM905

# The only UN Member State that is not a Party to the Convention.
NON_PARTY_MEMBERS = {"US"}
# Parties that are not UN Member States (the EU is a regional economic integration organization).
NON_MEMBER_PARTIES = ("CK", "NU", "PS")

# United Nations terminology short names, used where pycountry's ISO names are inverted
# ("Korea, Republic of"), outdated or badly translated.
NAME_OVERRIDES: dict[str, dict[str, str]] = {
    "BO": {
        "ar": "بوليفيا (دولة - المتعددة القوميات)",
        "en": "Bolivia (Plurinational State of)",
        "es": "Bolivia (Estado Plurinacional de)",
        "fr": "Bolivie (État plurinational de)",
        "ru": "Боливия (Многонациональное Государство)",
        "zh": "多民族玻利维亚国",
    },
    "CD": {
        "ar": "جمهورية الكونغو الديمقراطية",
        "en": "Democratic Republic of the Congo",
        "es": "República Democrática del Congo",
        "fr": "République démocratique du Congo",
        "ru": "Демократическая Республика Конго",
        "zh": "刚果民主共和国",
    },
    "CG": {"ar": "الكونغو", "en": "Congo", "es": "Congo", "fr": "Congo", "ru": "Конго", "zh": "刚果"},
    "CI": {
        "ar": "كوت ديفوار",
        "en": "Côte d'Ivoire",
        "es": "Côte d'Ivoire",
        "fr": "Côte d'Ivoire",
        "ru": "Кот-д'Ивуар",
        "zh": "科特迪瓦",
    },
    "CZ": {"ar": "تشيكيا", "en": "Czechia", "es": "Chequia", "fr": "Tchéquie", "ru": "Чехия", "zh": "捷克"},
    "FM": {
        "ar": "ميكرونيزيا (ولايات - الموحدة)",
        "en": "Micronesia (Federated States of)",
        "es": "Micronesia (Estados Federados de)",
        "fr": "Micronésie (États fédérés de)",
        "ru": "Микронезия (Федеративные Штаты)",
        "zh": "密克罗尼西亚联邦",
    },
    "GB": {
        "ar": "المملكة المتحدة لبريطانيا العظمى وأيرلندا الشمالية",
        "en": "United Kingdom of Great Britain and Northern Ireland",
        "es": "Reino Unido de Gran Bretaña e Irlanda del Norte",
        "fr": "Royaume-Uni de Grande-Bretagne et d'Irlande du Nord",
        "ru": "Соединенное Королевство Великобритании и Северной Ирландии",
        "zh": "大不列颠及北爱尔兰联合王国",
    },
    "IR": {
        "ar": "إيران (جمهورية - الإسلامية)",
        "en": "Iran (Islamic Republic of)",
        "es": "Irán (República Islámica del)",
        "fr": "Iran (République islamique d')",
        "ru": "Иран (Исламская Республика)",
        "zh": "伊朗伊斯兰共和国",
    },
    "KP": {
        "ar": "جمهورية كوريا الشعبية الديمقراطية",
        "en": "Democratic People's Republic of Korea",
        "es": "República Popular Democrática de Corea",
        "fr": "République populaire démocratique de Corée",
        "ru": "Корейская Народно-Демократическая Республика",
        "zh": "朝鲜民主主义人民共和国",
    },
    "KR": {
        "ar": "جمهورية كوريا",
        "en": "Republic of Korea",
        "es": "República de Corea",
        "fr": "République de Corée",
        "ru": "Республика Корея",
        "zh": "大韩民国",
    },
    "LA": {
        "ar": "جمهورية لاو الديمقراطية الشعبية",
        "en": "Lao People's Democratic Republic",
        "es": "República Democrática Popular Lao",
        "fr": "République démocratique populaire lao",
        "ru": "Лаосская Народно-Демократическая Республика",
        "zh": "老挝人民民主共和国",
    },
    "MD": {
        "ar": "جمهورية مولدوفا",
        "en": "Republic of Moldova",
        "es": "República de Moldova",
        "fr": "République de Moldova",
        "ru": "Республика Молдова",
        "zh": "摩尔多瓦共和国",
    },
    "NL": {
        "ar": "هولندا (مملكة -)",
        "en": "Netherlands (Kingdom of the)",
        "es": "Países Bajos (Reino de los)",
        "fr": "Pays-Bas (Royaume des)",
        "ru": "Нидерланды (Королевство)",
        "zh": "荷兰王国",
    },
    "PS": {
        "ar": "دولة فلسطين",
        "en": "State of Palestine",
        "es": "Estado de Palestina",
        "fr": "État de Palestine",
        "ru": "Государство Палестина",
        "zh": "巴勒斯坦国",
    },
    "RU": {
        "ar": "الاتحاد الروسي",
        "en": "Russian Federation",
        "es": "Federación de Rusia",
        "fr": "Fédération de Russie",
        "ru": "Российская Федерация",
        "zh": "俄罗斯联邦",
    },
    "SY": {
        "ar": "الجمهورية العربية السورية",
        "en": "Syrian Arab Republic",
        "es": "República Árabe Siria",
        "fr": "République arabe syrienne",
        "ru": "Сирийская Арабская Республика",
        "zh": "阿拉伯叙利亚共和国",
    },
    "TL": {
        "ar": "تيمور - ليشتي",
        "en": "Timor-Leste",
        "es": "Timor-Leste",
        "fr": "Timor-Leste",
        "ru": "Тимор-Лешти",
        "zh": "东帝汶",
    },
    "TR": {"ar": "تركيا", "en": "Türkiye", "es": "Türkiye", "fr": "Türkiye", "ru": "Турция", "zh": "土耳其"},
    "TZ": {
        "ar": "جمهورية تنزانيا المتحدة",
        "en": "United Republic of Tanzania",
        "es": "República Unida de Tanzanía",
        "fr": "République-Unie de Tanzanie",
        "ru": "Объединенная Республика Танзания",
        "zh": "坦桑尼亚联合共和国",
    },
    "VE": {
        "ar": "فنزويلا (جمهورية - البوليفارية)",
        "en": "Venezuela (Bolivarian Republic of)",
        "es": "Venezuela (República Bolivariana de)",
        "fr": "Venezuela (République bolivarienne du)",
        "ru": "Венесуэла (Боливарианская Республика)",
        "zh": "委内瑞拉玻利瓦尔共和国",
    },
    "VN": {
        "ar": "فييت نام",
        "en": "Viet Nam",
        "es": "Viet Nam",
        "fr": "Viet Nam",
        "ru": "Вьетнам",
        "zh": "越南",
    },
}

# Single-language corrections of pycountry translations (typos, non-UN variants).
NAME_PATCHES: dict[str, dict[str, str]] = {
    "AE": {"zh": "阿拉伯联合酋长国"},
    "BD": {"zh": "孟加拉国"},
    "BY": {"ar": "بيلاروس"},
    "CF": {"ru": "Центральноафриканская Республика"},
    "DO": {"ru": "Доминиканская Республика"},
    "GQ": {"fr": "Guinée équatoriale"},
    "GT": {"zh": "危地马拉"},
    "HU": {"ar": "هنغاريا"},
    "KG": {"ru": "Кыргызстан", "zh": "吉尔吉斯斯坦"},
    "KH": {"zh": "柬埔寨"},
    "KM": {"es": "Comoras"},
    "ME": {"ar": "الجبل الأسود"},
    "MM": {"es": "Myanmar", "fr": "Myanmar"},
    "RS": {"ar": "صربيا"},
    "SB": {"fr": "Îles Salomon"},
    "SR": {"es": "Suriname"},
    "SV": {"fr": "El Salvador"},
    "TN": {"es": "Túnez"},
}

EUROPEAN_UNION: dict[str, Any] = {
    "code": "EU",
    "name": {
        "ar": "الاتحاد الأوروبي",
        "en": "European Union",
        "es": "Unión Europea",
        "fr": "Union européenne",
        "ru": "Европейский союз",
        "zh": "欧洲联盟",
    },
    "is_party": True,
}

EXPECTED_PARTIES = 196
SLUG_RE = re.compile(r"^CBD-SUBJECT-[A-Z0-9]+(?:-[A-Z0-9]+)*$")
PLACEHOLDER_RE = re.compile(r"(?i:lorem|ipsum)|\bTODO\b|\bTBD\b|\bFIXME\b|\bXXX\b")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


# --------------------------------------------------------------------------- parties


def _translators() -> dict[str, gettext.NullTranslations]:
    return {
        lang: gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[loc])
        for lang, loc in GETTEXT_LANG.items()
    }


def country_name(alpha_2: str, translators: dict[str, gettext.NullTranslations]) -> dict[str, str]:
    """Six-language name of a country: UN override if any, otherwise pycountry + gettext."""
    if alpha_2 in NAME_OVERRIDES:
        return dict(NAME_OVERRIDES[alpha_2])
    country = pycountry.countries.get(alpha_2=alpha_2)
    if country is None:
        raise SystemExit(f"pycountry does not know {alpha_2}")
    names = {"en": country.name}
    for lang, tr in translators.items():
        names[lang] = tr.gettext(country.name)
    names.update(NAME_PATCHES.get(alpha_2, {}))
    return {lang: names[lang] for lang in LANGS}


def build_parties() -> list[dict[str, Any]]:
    assert len(UN_MEMBER_STATES) == 193, len(UN_MEMBER_STATES)
    assert len(set(UN_MEMBER_STATES)) == 193, "duplicate UN member code"
    translators = _translators()
    codes = [c for c in UN_MEMBER_STATES if c not in NON_PARTY_MEMBERS] + list(NON_MEMBER_PARTIES)
    parties = [{"code": c, "name": country_name(c, translators), "is_party": True} for c in codes]
    parties.append(EUROPEAN_UNION)
    parties.sort(key=lambda p: str(p["code"]))
    return parties


def check_parties(parties: list[dict[str, Any]]) -> None:
    codes = [p["code"] for p in parties]
    assert len(parties) == EXPECTED_PARTIES, f"expected {EXPECTED_PARTIES} parties, got {len(parties)}"
    assert len(set(codes)) == len(codes), "duplicate party code"
    assert codes == sorted(codes), "parties not sorted by code"
    assert "US" not in codes, "the United States is not a Party to the CBD"
    for p in parties:
        assert re.fullmatch(r"[A-Z]{2}", p["code"]), p["code"]
        assert p["is_party"] is True, p
        assert set(p["name"]) == set(LANGS), (p["code"], sorted(p["name"]))
        for lang, value in p["name"].items():
            assert value and value.strip() == value, (p["code"], lang, value)
            assert "," not in value or lang == "ar", f"inverted ISO name left for {p['code']}/{lang}: {value}"
        # untranslated names in non-Latin scripts are a sign of a missing translation
        for lang in ("ar", "ru", "zh"):
            assert p["name"][lang] != p["name"]["en"], f"untranslated {lang} name for {p['code']}"
    en_names = [p["name"]["en"] for p in parties]
    assert len(set(en_names)) == len(en_names), "duplicate English party name"


# --------------------------------------------------------------------------- vocabularies


def _check_lstring(value: Any, where: str, required: bool = True) -> None:
    if value is None and not required:
        return
    assert isinstance(value, dict), f"{where}: lstring expected, got {type(value).__name__}"
    assert "en" in value, f"{where}: lstring without 'en'"
    extra = set(value) - set(LANGS)
    assert not extra, f"{where}: unknown language keys {sorted(extra)}"
    for lang, text in value.items():
        assert isinstance(text, str) and text.strip(), f"{where}.{lang}: empty text"
        assert not PLACEHOLDER_RE.search(text), f"{where}: placeholder text {text!r}"


EXPECTED_VOCABS: dict[str, list[str] | None] = {
    # The four goals of the Kunming-Montreal framework above its 23 targets (each target names its `broader` goal).
    "gbf-targets": [f"GBF-GOAL-{g}" for g in "ABCD"] + [f"GBF-TARGET-{i:02d}" for i in range(1, 24)],
    "aichi-targets": [f"AICHI-TARGET-{i:02d}" for i in range(1, 21)],
    "cbd-subjects": None,
    "record-types": [
        "resource",
        "news",
        "event",
        "case-study",
        "project",
        "national-report",
        "nbsap",
        "national-target",
        "organization",
        "expert",
    ],
    "assistance-types": [
        "technical",
        "scientific",
        "capacity-building",
        "technology-transfer",
        "financial",
        "training",
        "equipment",
        "policy-advice",
    ],
    "record-statuses": ["draft", "pending", "published", "withdrawn"],
    "node-statuses": ["active", "in-development", "inactive"],
    "decision-statuses": ["active", "elapsed", "superseded", "retired"],
    "decision-bodies": ["COP", "CP-MOP", "NP-MOP"],
    "request-statuses": ["open", "in-discussion", "matched", "closed"],
    "offer-statuses": ["proposed", "accepted", "declined"],
    "node-platforms": ["bioland", "custom", "drupal", "wordpress", "other"],
    "languages": list(LANGS),
}
RECORD_TYPE_ABBR = {
    "resource": "RES",
    "news": "NEWS",
    "event": "EVT",
    "case-study": "CS",
    "project": "PRJ",
    "national-report": "NR",
    "nbsap": "NBSAP",
    "national-target": "NT",
    "organization": "ORG",
    "expert": "EXP",
}


HIERARCHIES = ("gbf-targets", "cbd-subjects")


def _check_hierarchy(name: str, items: list[dict[str, Any]]) -> None:
    """`broader` names terms of the same vocabulary, never in a cycle; aliases are unique."""
    broader = {item["code"]: item.get("broader", []) for item in items}
    aliases = [a for item in items for a in item.get("aliases", [])]
    assert len(aliases) == len(set(aliases)) and not set(aliases) & set(broader), f"{name}: bad aliases"
    for code, parents in broader.items():
        assert all(p in broader for p in parents), f"{name}/{code}: unknown broader {parents}"
        seen, queue = {code}, list(parents)
        while queue:
            parent = queue.pop()
            assert parent not in seen, f"{name}/{code}: broader cycle"
            seen.add(parent)
            queue.extend(broader[parent])
    for item in items:
        if item["code"].startswith("GBF-TARGET-"):
            assert len(item.get("broader", [])) == 1 and item["broader"][0].startswith("GBF-GOAL-"), item["code"]


def check_vocabularies(vocabs: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    assert set(vocabs) == set(EXPECTED_VOCABS), sorted(set(vocabs) ^ set(EXPECTED_VOCABS))
    codes: dict[str, set[str]] = {}
    for name, items in vocabs.items():
        seen = [item["code"] for item in items]
        assert len(seen) == len(set(seen)), f"{name}: duplicate code"
        expected = EXPECTED_VOCABS[name]
        if expected is not None:
            assert seen == expected, f"{name}: codes {seen} != {expected}"
        for item in items:
            where = f"{name}/{item['code']}"
            _check_lstring(item.get("title"), f"{where}.title")
            _check_lstring(item.get("description"), f"{where}.description", required=False)
            allowed = {"code", "title", "description"} | ({"abbr"} if name == "record-types" else set())
            allowed |= {"broader", "aliases"} if name in HIERARCHIES else set()
            assert set(item) <= allowed, f"{where}: unexpected keys {sorted(set(item) - allowed)}"
        codes[name] = set(seen)
    assert len(vocabs["gbf-targets"]) == 4 + 23
    assert len(vocabs["aichi-targets"]) == 20
    subjects = vocabs["cbd-subjects"]
    assert 25 <= len(subjects) <= 40, f"{len(subjects)} subjects"
    for name in HIERARCHIES:
        _check_hierarchy(name, vocabs[name])
    for item in subjects:
        assert SLUG_RE.match(item["code"]), item["code"]
    for item in vocabs["record-types"]:
        assert item.get("abbr") == RECORD_TYPE_ABBR[item["code"]], item
    for item in vocabs["languages"]:
        assert set(item["title"]) == set(LANGS), item
    return codes


# --------------------------------------------------------------------------- demo


def _check_contact(contact: Any, where: str) -> None:
    assert isinstance(contact, dict), where
    assert set(contact) == {"name", "email", "organization"}, f"{where}: {sorted(contact)}"
    assert EMAIL_RE.match(contact["email"]), f"{where}: bad email {contact['email']}"


def _check_codes(values: list[str], valid: set[str], where: str) -> None:
    assert isinstance(values, list), where
    missing = [v for v in values if v not in valid]
    assert not missing, f"{where}: unknown codes {missing}"
    assert len(values) == len(set(values)), f"{where}: duplicates"


def check_demo(demo: dict[str, Any], vocab_codes: dict[str, set[str]], party_codes: set[str]) -> None:
    assert set(demo) == {"decisions", "nodes", "cooperation_requests", "record_templates"}, sorted(demo)
    subjects, gbf, aichi = vocab_codes["cbd-subjects"], vocab_codes["gbf-targets"], vocab_codes["aichi-targets"]

    # decisions
    decisions = demo["decisions"]
    codes = [d["code"] for d in decisions]
    assert len(codes) == len(set(codes)), "duplicate decision code"
    per_session: dict[int, int] = {}
    roman = {9: "IX"}
    for d in decisions:
        where = f"decision {d['code']}"
        session, number = d["session"], d["number"]
        per_session[session] = per_session.get(session, 0) + 1
        assert d["body"] in vocab_codes["decision-bodies"], where
        assert d["code"] == f"COP-{session}-{number}", where
        if session in roman:
            assert d["symbol"] == f"UNEP/CBD/COP/DEC/{roman[session]}/{number}", where
        else:
            assert d["symbol"] == f"CBD/COP/DEC/{session}/{number}", where
        assert d["url"] == (
            f"https://www.cbd.int/doc/decisions/cop-{session:02d}/cop-{session:02d}-dec-{number:02d}-en.pdf"
        ), where
        _check_lstring(d["title"], f"{where}.title")
        assert d["status"] in vocab_codes["decision-statuses"], where
        meeting = d["meeting"]
        assert meeting["code"] == f"COP-{session:02d}", where
        start, end = date.fromisoformat(meeting["start"]), date.fromisoformat(meeting["end"])
        adopted = date.fromisoformat(d["adopted_on"])
        assert start <= adopted <= end, where
        _check_codes(d["subjects"], subjects, f"{where}.subjects")
        _check_codes(d["gbf_targets"], gbf, f"{where}.gbf_targets")
        _check_codes(d["aichi_targets"], aichi, f"{where}.aichi_targets")
        if adopted.year < 2010:
            assert not d["aichi_targets"] and not d["gbf_targets"], f"{where}: targets before they existed"
        numbers = [p["number"] for p in d["paragraphs"]]
        assert len(numbers) == len(set(numbers)), f"{where}: duplicate paragraph number"
        for p in d["paragraphs"]:
            assert p["type"] in {"preambular", "operative"}, where
            assert p["status"] in vocab_codes["decision-statuses"], where
            assert isinstance(p["actors"], list), where
            _check_lstring(p["text"], f"{where}.paragraph {p['number']}")
    assert per_session.get(9, 0) >= 12 and per_session.get(15, 0) >= 12, per_session

    # nodes
    node_parties = [n["party"] for n in demo["nodes"]]
    assert len(node_parties) == len(set(node_parties)), "two nodes for one party"
    for n in demo["nodes"]:
        where = f"node {n['party']}"
        assert n["party"] in party_codes, where
        _check_lstring(n["name"], f"{where}.name")
        _check_lstring(n["description"], f"{where}.description")
        assert n["url"].startswith("https://") or n["url"].startswith("http://"), where
        assert n["feed_url"].startswith(n["url"].rstrip("/")), where
        _check_codes(n["languages"], vocab_codes["languages"], f"{where}.languages")
        assert n["status"] in vocab_codes["node-statuses"], where
        assert n["platform"] in vocab_codes["node-platforms"], where
        _check_contact(n["focal_point"], f"{where}.focal_point")

    # cooperation requests
    for i, r in enumerate(demo["cooperation_requests"]):
        where = f"request #{i} ({r.get('party')})"
        assert r["party"] in party_codes, where
        for key in ("title", "problem", "objectives"):
            _check_lstring(r[key], f"{where}.{key}")
        _check_codes(r["assistance_types"], vocab_codes["assistance-types"], f"{where}.assistance_types")
        _check_codes(r["subjects"], subjects, f"{where}.subjects")
        _check_codes(r["gbf_targets"], gbf, f"{where}.gbf_targets")
        _check_codes(r["countries"], party_codes, f"{where}.countries")
        assert date.fromisoformat(r["start_date"]) < date.fromisoformat(r["end_date"]), where
        _check_contact(r["contact"], f"{where}.contact")
        assert r["status"] in vocab_codes["request-statuses"], where
        for j, o in enumerate(r["offers"]):
            ow = f"{where}.offers[{j}]"
            assert ("provider_party" in o) != ("provider_organization" in o), ow
            if "provider_party" in o:
                assert o["provider_party"] in party_codes, ow
            _check_lstring(o["description"], f"{ow}.description")
            _check_contact(o["contact"], f"{ow}.contact")
            assert o["status"] in vocab_codes["offer-statuses"], ow

    # record templates
    tpl = demo["record_templates"]
    assert set(tpl["types"]) == vocab_codes["record-types"], sorted(set(tpl["types"]) ^ vocab_codes["record-types"])
    allowed_placeholders = {"country", "year", "topic"}
    for rtype, spec in tpl["types"].items():
        assert 8 <= len(spec["titles"]) <= 15, f"{rtype}: {len(spec['titles'])} titles"
        assert 8 <= len(spec["summaries"]) <= 15, f"{rtype}: {len(spec['summaries'])} summaries"
        for kind in ("titles", "summaries"):
            for k, text in enumerate(spec[kind]):
                _check_lstring(text, f"templates.{rtype}.{kind}[{k}]")
                for lang, s in text.items():
                    used = set(re.findall(r"{(\w+)}", s))
                    assert used <= allowed_placeholders, f"{rtype}.{kind}[{k}].{lang}: {used}"
                    s.format(country="X", year=2024, topic="Y")  # must be a valid format string
                    if lang != "en":
                        en_used = set(re.findall(r"{(\w+)}", text["en"]))
                        assert used == en_used, f"{rtype}.{kind}[{k}].{lang}: placeholders differ from en"
    topics, tags = tpl["topics"], tpl["topic_tags"]
    assert len(topics) >= 20, "too few topics"
    assert len(tags) == len(topics), "topic_tags must align with topics"
    for k, topic in enumerate(topics):
        _check_lstring(topic, f"topics[{k}]")
        _check_codes(tags[k]["subjects"], subjects, f"topic_tags[{k}].subjects")
        _check_codes(tags[k]["gbf_targets"], gbf, f"topic_tags[{k}].gbf_targets")
    keywords = tpl["keywords"]
    assert len(keywords) >= 30, "too few keywords"
    assert all(isinstance(k, str) and k.strip() for k in keywords), "keywords must be strings"
    assert len(set(keywords)) == len(keywords), "duplicate keyword"


# --------------------------------------------------------------------------- io


def dump(path: Path, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="validate only; do not write files")
    args = parser.parse_args(argv)

    parties = build_parties()
    check_parties(parties)
    vocabs = load(DATA_DIR / "vocabularies.json")
    vocab_codes = check_vocabularies(vocabs)
    demo = load(DATA_DIR / "demo.json")
    check_demo(demo, vocab_codes, {p["code"] for p in parties})

    if args.check:
        existing = load(DATA_DIR / "parties.json")
        assert existing == parties, "parties.json is out of date; run without --check"
    else:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        dump(DATA_DIR / "parties.json", parties)
        dump(DATA_DIR / "vocabularies.json", vocabs)
        dump(DATA_DIR / "demo.json", demo)

    n_dec = len(demo["decisions"])
    print(
        f"parties={len(parties)} vocabularies={len(vocabs)} "
        f"(gbf={len(vocabs['gbf-targets'])} aichi={len(vocabs['aichi-targets'])} "
        f"subjects={len(vocabs['cbd-subjects'])}) decisions={n_dec} nodes={len(demo['nodes'])} "
        f"requests={len(demo['cooperation_requests'])} topics={len(demo['record_templates']['topics'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
