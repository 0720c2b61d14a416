"""The offline site inside a bundle: this package's index.html, app.js and style.css, plus data files built at
export time.

Browsers refuse `fetch()` on `file://`, so every data file is a script that hands its JSON to `CHM.put`
(`site/data/rec/3.js`, ...), loaded on demand. Records are numbered in export order (newest first) and
sharded, and so are opportunities; decisions (a few hundred) are listed in `meta`. The full-text index is an
inverted index split into `BUCKETS` files by an FNV-1a hash of each term, so a query loads one small file
per word. Facets (Party, type, subject, GBF target) are terms of the same index (`party:br`,
`gbf:gbf-target-03`). A posting is a record's number n (n >= 0) or, for the i-th entry of the k-th kind of
`OTHERS`, -1 - (i * len(OTHERS) + k).

Memory stays flat however large the export: postings collect for at most `_FLUSH_POSTINGS` entries, then
each bucket's share is appended to its temporary file as `[term, [first id, gap, gap, ...]]` segments; a
bucket file is those segments in order (app.js concatenates a term's segments), copied into the archive
as it stands, never read back into memory.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import IO, Any

import orjson

BUCKETS = 256
LIST_SHARD = 500  # list entries (title, Party, type, date) per file
RECORD_SHARD = 100  # whole records (or opportunities) per file
OTHERS = ("decision", "opportunity")  # kinds in the index besides records (see the posting numbers above)
ASSETS = ("index.html", "app.js", "style.css")
_WORD = re.compile(r"[^\W_]+")
_CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_CLASS}]")
_CJK_RUNS = re.compile(f"[{_CJK_CLASS}]|[^{_CJK_CLASS}]+")
_FLUSH_POSTINGS = 50_000
_CHUNK = 1 << 20


def tokens(text: str) -> set[str]:
    """Search terms of a text: lower case, accents folded, words of 2+ letters, CJK characters one by one.
    app.js tokenizes queries the same way."""
    words = set(_WORD.findall(text.lower()))
    for word in [w for w in words if not w.isascii()]:  # fold accents word by word (each distinct word once)
        words.discard(word)
        folded = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.category(c).startswith("M"))
        words.update(_WORD.findall(folded))
    folded = text
    out = {w for w in words if len(w) >= 2 or w.isdigit()}
    if _CJK.search(folded):
        for word in words:
            if _CJK.search(word):
                out.discard(word)
                out.update(p for p in _CJK_RUNS.findall(word) if _CJK.match(p) or len(p) >= 2)
    return out


@lru_cache(maxsize=1 << 16)
def bucket(term: str) -> int:
    """FNV-1a (32 bit) of the UTF-8 bytes, modulo BUCKETS (app.js computes the same)."""
    h = 0x811C9DC5
    for b in term.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h % BUCKETS


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def _script(key: str, value: Any) -> bytes:
    return b'CHM.put("' + key.encode() + b'",' + orjson.dumps(value, default=str) + b");\n"


def asset(name: str) -> bytes:
    """One of the site's own files (shipped as package data)."""
    return resources.files(__package__).joinpath(name).read_bytes()


class _Shards:
    """Entries of one kind numbered in export order: list entries and whole entries, written shard by shard."""

    def __init__(self, builder: SiteBuilder, list_key: str, full_key: str) -> None:
        self.builder, self.list_key, self.full_key = builder, list_key, full_key
        self.count = 0
        self._list: list[dict[str, Any]] = []
        self._full: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any], full: dict[str, Any]) -> int:
        n = self.count
        self.count += 1
        self._list.append(entry)
        self._full.append(full)
        if len(self._list) == LIST_SHARD:
            self.builder._write(f"{self.list_key}/{n // LIST_SHARD}", self._list)
            self._list = []
        if len(self._full) == RECORD_SHARD:
            self.builder._write(f"{self.full_key}/{n // RECORD_SHARD}", self._full)
            self._full = []
        return n

    def finish(self) -> None:
        if self._list:
            self.builder._write(f"{self.list_key}/{(self.count - 1) // LIST_SHARD}", self._list)
        if self._full:
            self.builder._write(f"{self.full_key}/{(self.count - 1) // RECORD_SHARD}", self._full)


class SiteBuilder:
    """Collects public entries as they stream and writes the site's data files at the end."""

    def __init__(self, *, langs: list[str]) -> None:
        self.langs = langs
        self.tmp = Path(tempfile.mkdtemp(prefix="chm-site-"))
        (self.tmp / "files").mkdir()
        self.withdrawn = 0
        self.records = _Shards(self, "list", "rec")
        self.opportunities = _Shards(self, "olist", "opp")
        self._pending: dict[str, list[int]] = {}
        self._pending_count = 0
        self._spill: list[IO[bytes] | None] = [None] * BUCKETS  # bucket files, opened on their first segment
        self.facets: dict[str, Counter[str]] = {k: Counter() for k in ("party", "type", "subject", "gbf")}
        self.parties: dict[str, Any] = {}
        self.labels: dict[str, dict[str, Any]] = {"type": {}, "subject": {}, "gbf": {}, "assistance": {},
                                                  "region": {}}  # fmt: skip
        self.decisions: list[dict[str, Any]] = []
        self.files: list[str] = []

    # -- collecting --
    def add(self, kind: str, item: dict[str, Any]) -> None:
        if kind == "party":
            self.parties[item["code"]] = item["name"]
        elif kind == "vocabulary-term":
            facet = {"record-types": "type", "cbd-subjects": "subject", "gbf-targets": "gbf",
                     "assistance-types": "assistance", "regions": "region"}.get(item["vocabulary"])  # fmt: skip
            if facet:
                self.labels[facet][item["code"]] = item["title"]
        elif kind == "record":
            self._add_record(item)
        elif kind == "decision":
            self._add_decision(item)
        elif kind == "opportunity":
            self._add_opportunity(item)

    def _index(self, ident: int, terms: Iterable[str]) -> None:
        pending = self._pending
        unique = set(terms)
        for term in unique:
            ids = pending.get(term)
            if ids is None:
                pending[term] = [ident]
            else:
                ids.append(ident)
        self._pending_count += len(unique)
        if self._pending_count >= _FLUSH_POSTINGS:
            self._flush_postings()

    def _flush_postings(self) -> None:
        """Append each bucket's share of the pending postings to its file as gap-coded segments."""
        by_bucket: dict[int, list[bytes]] = {}
        for term, ids in self._pending.items():
            gaps = [ids[0], *(b - a for a, b in itertools.pairwise(ids))]
            by_bucket.setdefault(bucket(term), []).append(orjson.dumps([term, gaps]))
        for b, segments in by_bucket.items():
            fh = self._spill[b]
            if fh is None:
                fh = self._spill[b] = (self.tmp / f"p{b}.js").open("wb")
            else:
                fh.write(b",")
            fh.write(b",".join(segments))
        self._pending = {}
        self._pending_count = 0

    def _write(self, key: str, value: Any) -> None:
        path = self.tmp / "files" / key.replace("/", "_")
        path.write_bytes(_script(key, value))
        self.files.append(key)

    @staticmethod
    def _posting(kind: str, i: int) -> int:
        return -1 - (i * len(OTHERS) + OTHERS.index(kind))

    def _add_record(self, r: dict[str, Any]) -> None:
        if r.get("status") != "published":
            self.withdrawn += 1
            return
        date = r.get("publication_date") or (str(r.get("published_at") or "")[:10] or None)
        n = self.records.add(
            {"u": r["uid"], "p": r["party"], "y": r["type"], "t": r["title"], "d": date},
            {"id": str(r["id"]), "u": r["uid"], "p": r["party"], "y": r["type"], "t": r["title"],
             "s": r.get("summary"), "b": r.get("body"), "k": r.get("keywords") or [],
             "sj": r.get("subjects") or [], "g": r.get("gbf_targets") or [],
             "a": r.get("aichi_targets") or [], "c": r.get("countries") or [],
             "l": r.get("links") or [], "d": date, "r": r.get("revision"),
             "lg": r.get("languages") or []},
        )  # fmt: skip
        self.facets["party"][r["party"]] += 1
        self.facets["type"][r["type"]] += 1
        for s in r.get("subjects") or []:
            self.facets["subject"][s] += 1
        for g in r.get("gbf_targets") or []:
            self.facets["gbf"][g] += 1
        words = tokens(" ".join(_texts([r["title"], r.get("summary"), r.get("body"), r.get("keywords"), r["uid"]])))
        facets = [f"party:{r['party'].lower()}", f"type:{r['type']}"]
        facets += [f"subject:{s.lower()}" for s in r.get("subjects") or []]
        facets += [f"gbf:{g.lower()}" for g in r.get("gbf_targets") or []]
        self._index(n, [*words, *facets])

    def _add_decision(self, d: dict[str, Any]) -> None:
        i = len(self.decisions)
        self.decisions.append({"c": d["code"], "sy": d["symbol"], "t": d["title"], "a": d.get("adopted_on"),
                               "st": d["status"], "g": d.get("gbf_targets") or [],
                               "sj": d.get("subjects") or []})  # fmt: skip
        self._write(f"dec/{i}", {**self.decisions[-1], "m": d.get("meeting"), "url": d.get("url"),
                                 "ai": d.get("aichi_targets") or [],
                                 "ps": [{"n": p.get("number"), "se": p.get("section"), "ty": p.get("type"),
                                         "tx": p.get("text")} for p in d.get("paragraphs") or []]})  # fmt: skip
        words = tokens(
            " ".join(_texts([d["title"], d["code"], d["symbol"], [p.get("text") for p in d.get("paragraphs") or []]]))
        )
        facets = [f"gbf:{g.lower()}" for g in d.get("gbf_targets") or []]
        facets += [f"subject:{s.lower()}" for s in d.get("subjects") or []]
        self._index(self._posting("decision", i), [*words, *facets])

    def _add_opportunity(self, o: dict[str, Any]) -> None:
        party = o.get("provider_party")
        j = self.opportunities.add(
            {"t": o["title"], "p": party, "po": o.get("provider_organization"), "dl": o.get("application_deadline"),
             "st": o["status"]},
            {"id": str(o["id"]), "t": o["title"], "ds": o.get("description"), "p": party,
             "po": o.get("provider_organization"), "at": o.get("assistance_types") or [],
             "sj": o.get("subjects") or [], "g": o.get("gbf_targets") or [],
             "ec": o.get("eligible_countries") or [], "er": o.get("eligible_regions") or [],
             "dl": o.get("application_deadline"), "url": o.get("url"), "ct": o.get("contact"), "st": o["status"]},
        )  # fmt: skip
        if party:
            self.facets["party"][party] += 1
        for s in o.get("subjects") or []:
            self.facets["subject"][s] += 1
        for g in o.get("gbf_targets") or []:
            self.facets["gbf"][g] += 1
        words = tokens(" ".join(_texts([o["title"], o.get("description"), o.get("provider_organization")])))
        facets = [f"party:{party.lower()}"] if party else []
        facets += [f"subject:{s.lower()}" for s in o.get("subjects") or []]
        facets += [f"gbf:{g.lower()}" for g in o.get("gbf_targets") or []]
        self._index(self._posting("opportunity", j), [*words, *facets])

    # -- writing --
    def finish(self, manifest: dict[str, Any]) -> Iterator[tuple[str, Iterable[bytes]]]:
        """(archive name, chunks) of every site file."""
        self.records.finish()
        self.opportunities.finish()
        self._flush_postings()
        self._close_spill()
        for name in ASSETS:
            yield ("index.html" if name == "index.html" else f"site/{name}"), [asset(name)]
        meta = {
            "source": manifest["source"], "created_at": manifest["created_at"],
            "high_water_mark": manifest["high_water_mark"], "since": manifest["since"], "party": manifest["party"],
            "langs": self.langs, "records": self.records.count, "withdrawn": self.withdrawn,
            "decisions": self.decisions, "opportunities": self.opportunities.count, "others": list(OTHERS),
            "list_shard": LIST_SHARD, "record_shard": RECORD_SHARD, "buckets": BUCKETS, "parties": self.parties,
            "labels": self.labels, "facets": {k: dict(v.most_common()) for k, v in self.facets.items()},
        }  # fmt: skip
        yield "site/data/meta.js", [_script("meta", meta)]
        for key in self.files:
            yield f"site/data/{key}.js", [(self.tmp / "files" / key.replace("/", "_")).read_bytes()]
        for b in range(BUCKETS):
            yield f"site/data/ix/{b}.js", self._bucket(b)

    def _bucket(self, b: int) -> Iterator[bytes]:
        """A bucket's file: its segments as they were appended, streamed in chunks."""
        yield b'CHM.put("ix/' + str(b).encode() + b'",['
        path = self.tmp / f"p{b}.js"
        if path.exists():
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk
        yield b"]);\n"

    def _close_spill(self) -> None:
        for fh in self._spill:
            if fh is not None:
                fh.close()

    def cleanup(self) -> None:
        self._close_spill()
        shutil.rmtree(self.tmp, ignore_errors=True)
