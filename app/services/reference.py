"""Reference data: Parties and controlled vocabularies (loading, caching, validating term references)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import BadRequest, Invalid, NotFound, field_error
from app.models import Party, VocabularyTerm
from app.reference import load_parties, load_vocabularies

PARTY = Party.__table__  # type: ignore[attr-defined]
TERM = VocabularyTerm.__table__  # type: ignore[attr-defined]

# Which vocabulary each term-reference field draws from.
FIELD_VOCABULARY = {
    "subjects": "cbd-subjects",
    "subject": "cbd-subjects",
    "gbf_targets": "gbf-targets",
    "gbf_target": "gbf-targets",
    "aichi_targets": "aichi-targets",
    "assistance_types": "assistance-types",
    "assistance_type": "assistance-types",
    "eligible_regions": "regions",
    "region": "regions",
}
COUNTRY_FIELDS = ("countries", "eligible_countries")

_party_codes: frozenset[str] | None = None
_terms: dict[str, frozenset[str]] | None = None
_tree: dict[str, Hierarchy] | None = None


class Hierarchy:
    """One vocabulary's broader/narrower relations, term titles, aliases and (regions) member countries."""

    def __init__(self, rows: list[tuple[str, dict[str, str], dict[str, Any] | None]]) -> None:
        self.titles: dict[str, dict[str, str]] = {}
        self.broader: dict[str, tuple[str, ...]] = {}
        self.narrower: dict[str, tuple[str, ...]] = {}
        self.aliases: dict[str, str] = {}
        self.members: dict[str, frozenset[str]] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        narrower: dict[str, list[str]] = {}
        for code, title, extra in rows:
            extra = extra or {}
            self.titles[code] = title
            self.extra[code] = extra
            self.broader[code] = tuple(extra.get("broader") or ())
            for parent in self.broader[code]:
                narrower.setdefault(parent, []).append(code)
            for alias in extra.get("aliases") or ():
                self.aliases[alias] = code
            if extra.get("countries"):
                self.members[code] = frozenset(extra["countries"])
        self.narrower = {k: tuple(v) for k, v in narrower.items()}
        self._up: dict[str, list[str]] = {}  # memoised: the hierarchy never changes once loaded
        self._down: dict[str, list[str]] = {}

    def descendants(self, code: str) -> list[str]:
        """`code` and every term below it, nearest first."""
        found = self._down.get(code)
        if found is None:
            found = self._down[code] = self._descendants(code)
        return list(found)

    def ancestors(self, code: str) -> list[str]:
        """Every term above `code`, nearest first."""
        found = self._up.get(code)
        if found is None:
            found = self._up[code] = self._ancestors(code)
        return list(found)

    def _descendants(self, code: str) -> list[str]:
        out, queue = [code], [code]
        while queue:
            for child in self.narrower.get(queue.pop(0), ()):
                if child not in out:
                    out.append(child)
                    queue.append(child)
        return out

    def _ancestors(self, code: str) -> list[str]:
        out: list[str] = []
        queue = list(self.broader.get(code, ()))
        while queue:
            parent = queue.pop(0)
            if parent not in out:
                out.append(parent)
                queue.extend(self.broader.get(parent, ()))
        return out

    def label(self, code: str) -> str | None:
        """The English (else any) title of a term."""
        title = self.titles.get(code) or {}
        return title.get("en") or next(iter(title.values()), None)


def upsert_statements() -> list[Any]:
    """INSERT ... ON CONFLICT statements for the shipped Parties and vocabularies (run by a migration)."""
    parties = load_parties()
    stmt = insert(PARTY).values([{"code": p["code"], "name": p["name"], "is_party": p["is_party"]} for p in parties])
    rows = []
    for vocab, terms in load_vocabularies().items():
        for pos, term in enumerate(terms):
            extra = {k: v for k, v in term.items() if k not in ("code", "title", "description")}
            rows.append({"vocabulary": vocab, "code": term["code"], "position": pos, "title": term["title"],
                         "description": term.get("description"), "extra": extra or None})  # fmt: skip
    ins = insert(TERM).values(rows)
    return [
        stmt.on_conflict_do_update(index_elements=["code"], set_={"name": stmt.excluded.name,
                                                                  "is_party": stmt.excluded.is_party}),
        ins.on_conflict_do_update(
            index_elements=["vocabulary", "code"],
            set_={c: ins.excluded[c] for c in ("position", "title", "description", "extra")},
        ),
    ]  # fmt: skip


async def sync(conn: Any) -> None:
    """Upsert the shipped reference data (idempotent)."""
    for stmt in upsert_statements():
        await conn.execute(stmt)
    reset_cache()


def reset_cache() -> None:
    """Forget cached code sets (after reference data changed)."""
    global _party_codes, _terms, _tree
    _party_codes = None
    _terms = None
    _tree = None


async def _load_cache(conn: AsyncConnection) -> None:
    global _party_codes, _terms, _tree
    if _party_codes is None:
        _party_codes = frozenset((await conn.execute(select(PARTY.c.code))).scalars())
    if _terms is None or _tree is None:
        rows: dict[str, list[tuple[str, dict[str, str], dict[str, Any] | None]]] = {}
        stmt = select(TERM.c.vocabulary, TERM.c.code, TERM.c.title, TERM.c.extra).order_by(TERM.c.position)
        for vocab, code, title, extra in await conn.execute(stmt):
            rows.setdefault(vocab, []).append((code, title, extra))
        _tree = {k: Hierarchy(v) for k, v in rows.items()}
        _terms = {k: frozenset(code for code, _, _ in v) for k, v in rows.items()}


async def hierarchy(conn: AsyncConnection, vocabulary: str) -> Hierarchy:
    """The broader/narrower relations of one vocabulary (cached with the term codes)."""
    await _load_cache(conn)
    assert _tree is not None
    return _tree.get(vocabulary) or Hierarchy([])


def with_narrower(name: str, code: str) -> list[str]:
    """A validated filter term and every narrower term (`gbf_target=GBF-GOAL-A` includes its targets).

    Call after `check_term_filter`, which loaded the cache."""
    tree = (_tree or {}).get(FIELD_VOCABULARY[name])
    return tree.descendants(code) if tree else [code]


async def party_codes(conn: AsyncConnection) -> frozenset[str]:
    """Every known Party code."""
    await _load_cache(conn)
    assert _party_codes is not None
    return _party_codes


async def term_codes(conn: AsyncConnection, vocabulary: str) -> frozenset[str]:
    """Every code of one vocabulary."""
    await _load_cache(conn)
    assert _terms is not None
    return _terms.get(vocabulary, frozenset())


async def check_party_filter(conn: AsyncConnection, party: str | None) -> str | None:
    """Normalise and validate a `party` query filter."""
    if party is None:
        return None
    code = party.upper()
    if code not in await party_codes(conn):
        raise BadRequest.param("party", f"unknown Party code '{party}'", f"unknown party '{party}'")
    return code


async def check_term_filter(conn: AsyncConnection, name: str, value: str | None) -> str | None:
    """Validate a term filter (`subject`, `gbf_target`) against its vocabulary."""
    if value is None:
        return None
    vocab = FIELD_VOCABULARY[name]
    value = (await hierarchy(conn, vocab)).aliases.get(value, value)
    if value not in await term_codes(conn, vocab):
        raise BadRequest.param(
            name, f"unknown term '{value}' in {vocab}", f"unknown {name} '{value}' (see /api/v1/vocabularies/{vocab})"
        )
    return value


async def check_terms(conn: AsyncConnection, data: dict[str, Any], *, loc: tuple[str | int, ...] = ("body",)) -> None:
    """Raise Invalid naming every unknown term or Party code referenced by a write."""
    (await term_checker(conn))(data, loc=loc)


async def term_checker(conn: AsyncConnection) -> Callable[..., None]:
    """check_terms for a batch: the reference data loaded once, then a plain function `(data, *, loc)` that checks
    one item against that snapshot (no await per item)."""
    await _load_cache(conn)
    assert _terms is not None and _party_codes is not None
    return partial(_check_terms, terms=_terms, parties=_party_codes)


def _check_terms(data: dict[str, Any], *, loc: tuple[str | int, ...] = ("body",), terms: dict[str, frozenset[str]],
                 parties: frozenset[str]) -> None:  # fmt: skip
    errors = []
    for fld, vocab in FIELD_VOCABULARY.items():
        values = data.get(fld)
        if not values or not isinstance(values, list):
            continue
        known = terms.get(vocab, frozenset())
        unknown = [v for v in values if v not in known]
        if unknown:
            msg = f"unknown {vocab} term(s): {', '.join(unknown)}"
            errors.append(field_error((*loc, fld), msg, "unknown_term", unknown=unknown))
    for fld in COUNTRY_FIELDS:
        countries = data.get(fld)
        if not countries or not isinstance(countries, list):
            continue
        unknown = [c for c in countries if c not in parties]
        if unknown:
            import pycountry

            unknown = [c for c in unknown if pycountry.countries.get(alpha_2=c) is None]
        if unknown:
            msg = f"unknown country code(s): {', '.join(unknown)}"
            errors.append(field_error((*loc, fld), msg, "unknown_term", unknown=unknown))
    if errors:
        raise Invalid("; ".join(str(e["msg"]) for e in errors), errors=errors)


async def list_parties(
    conn: AsyncConnection, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Parties in code order, keyset paged."""
    from app.services import paging

    sort = paging.SortKey("code", (PARTY.c.code,), (str,))
    stmt = paging.apply(select(PARTY.c.code, PARTY.c.name, PARTY.c.is_party), sort, cursor, limit)
    rows = [dict(r._mapping) for r in await conn.execute(stmt)]
    return paging.page(rows, sort, limit, lambda r: (r["code"],))


async def get_party(conn: AsyncConnection, code: str) -> dict[str, Any]:
    """One Party by code."""
    row = (await conn.execute(select(PARTY.c.code, PARTY.c.name, PARTY.c.is_party)
                              .where(PARTY.c.code == code.upper()))).first()  # fmt: skip
    if row is None:
        raise NotFound(f"no Party with code '{code}'")
    return dict(row._mapping)


async def get_parties(conn: AsyncConnection, codes: list[str]) -> list[dict[str, Any] | None]:
    """Parties by code in the given order (None where unknown); for DataLoaders."""
    if not codes:
        return []
    rows = await conn.execute(select(PARTY.c.code, PARTY.c.name, PARTY.c.is_party).where(PARTY.c.code.in_(set(codes))))
    found = {r.code: dict(r._mapping) for r in rows}
    return [found.get(c) for c in codes]


async def list_vocabulary_names(conn: AsyncConnection) -> list[str]:
    """Names of all vocabularies."""
    return list((await conn.execute(select(TERM.c.vocabulary).distinct().order_by(TERM.c.vocabulary))).scalars())


async def get_vocabulary(conn: AsyncConnection, name: str) -> dict[str, Any]:
    """One vocabulary with its terms in their defined order."""
    rows = await conn.execute(
        select(TERM.c.code, TERM.c.title, TERM.c.description, TERM.c.extra)
        .where(TERM.c.vocabulary == name).order_by(TERM.c.position, TERM.c.code)
    )  # fmt: skip
    terms = [dict(r._mapping) for r in rows]
    if not terms:
        raise NotFound(f"no vocabulary named '{name}'")
    tree = await hierarchy(conn, name)
    for term in terms:
        term["broader"] = list(tree.broader.get(term["code"], ()))
        term["narrower"] = list(tree.narrower.get(term["code"], ()))
    return {"name": name, "terms": terms}
