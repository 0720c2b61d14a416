"""The offline site inside a bundle: this package's index.html, app.js and style.css, plus data files built at
export time.

Browsers refuse `fetch()` on `file://`, so every data file is a script that hands its JSON to `CHM.put`
(`site/data/rec/3.js`, ...), loaded on demand. Records are numbered in export order (newest first) and
sharded; the full-text index is an inverted index split into `BUCKETS` files by an FNV-1a hash of each
term, so a query loads one small file per word. Facets (Party, type, subject, GBF target) are terms of the
same index (`party:br`, `gbf:gbf-target-03`). Postings spill to per-bucket temporary files while records
stream, so memory stays flat however large the export.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

BUCKETS = 256
LIST_SHARD = 500  # list entries (title, Party, type, date) per file
RECORD_SHARD = 100  # whole records per file
ASSETS = ("index.html", "app.js", "style.css")
_WORD = re.compile(r"[^\W_]+")
_CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_CLASS}]")
_CJK_RUNS = re.compile(f"[{_CJK_CLASS}]|[^{_CJK_CLASS}]+")
_FLUSH_LINES = 200_000


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


class SiteBuilder:
    """Collects public entries as they stream and writes the site's data files at the end."""

    def __init__(self, *, langs: list[str]) -> None:
        self.langs = langs
        self.tmp = Path(tempfile.mkdtemp(prefix="chm-site-"))
        (self.tmp / "files").mkdir()
        self.records = 0
        self.withdrawn = 0
        self._list: list[dict[str, Any]] = []
        self._full: list[dict[str, Any]] = []
        self._pending: list[list[str]] = [[] for _ in range(BUCKETS)]
        self._pending_lines = 0
        self.facets: dict[str, Counter[str]] = {k: Counter() for k in ("party", "type", "subject", "gbf")}
        self.parties: dict[str, Any] = {}
        self.labels: dict[str, dict[str, Any]] = {"type": {}, "subject": {}, "gbf": {}}
        self.decisions: list[dict[str, Any]] = []
        self.files: list[str] = []

    # -- collecting --
    def add(self, kind: str, item: dict[str, Any]) -> None:
        if kind == "party":
            self.parties[item["code"]] = item["name"]
        elif kind == "vocabulary-term":
            facet = {"record-types": "type", "cbd-subjects": "subject", "gbf-targets": "gbf"}.get(item["vocabulary"])
            if facet:
                self.labels[facet][item["code"]] = item["title"]
        elif kind == "record":
            self._add_record(item)
        elif kind == "decision":
            self._add_decision(item)

    def _index(self, ident: int, terms: Iterable[str]) -> None:
        line = f"\t{ident}\n"
        unique = set(terms)
        for term in unique:
            self._pending[bucket(term)].append(term + line)
        self._pending_lines += len(unique)
        if self._pending_lines >= _FLUSH_LINES:
            self._flush_postings()

    def _flush_postings(self) -> None:
        for b, lines in enumerate(self._pending):
            if lines:
                with (self.tmp / f"p{b}.tsv").open("a", encoding="utf-8") as fh:
                    fh.writelines(lines)
                lines.clear()
        self._pending_lines = 0

    def _write(self, key: str, value: Any) -> None:
        path = self.tmp / "files" / key.replace("/", "_")
        path.write_bytes(_script(key, value))
        self.files.append(key)

    def _add_record(self, r: dict[str, Any]) -> None:
        if r.get("status") != "published":
            self.withdrawn += 1
            return
        n = self.records
        self.records += 1
        date = r.get("publication_date") or (str(r.get("published_at") or "")[:10] or None)
        self._list.append({"u": r["uid"], "p": r["party"], "y": r["type"], "t": r["title"], "d": date})
        self._full.append({"id": str(r["id"]), "u": r["uid"], "p": r["party"], "y": r["type"], "t": r["title"],
                           "s": r.get("summary"), "b": r.get("body"), "k": r.get("keywords") or [],
                           "sj": r.get("subjects") or [], "g": r.get("gbf_targets") or [],
                           "a": r.get("aichi_targets") or [], "c": r.get("countries") or [],
                           "l": r.get("links") or [], "d": date, "r": r.get("revision"),
                           "lg": r.get("languages") or []})  # fmt: skip
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
        if len(self._list) == LIST_SHARD:
            self._write(f"list/{n // LIST_SHARD}", self._list)
            self._list = []
        if len(self._full) == RECORD_SHARD:
            self._write(f"rec/{n // RECORD_SHARD}", self._full)
            self._full = []

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
        self._index(-1 - i, [*words, *facets])

    # -- writing --
    def finish(self, manifest: dict[str, Any]) -> Iterator[tuple[str, Iterable[bytes]]]:
        """(archive name, chunks) of every site file."""
        if self._list:
            self._write(f"list/{(self.records - 1) // LIST_SHARD}", self._list)
        if self._full:
            self._write(f"rec/{(self.records - 1) // RECORD_SHARD}", self._full)
        self._flush_postings()
        for name in ASSETS:
            yield ("index.html" if name == "index.html" else f"site/{name}"), [asset(name)]
        meta = {
            "source": manifest["source"], "created_at": manifest["created_at"],
            "high_water_mark": manifest["high_water_mark"], "since": manifest["since"], "party": manifest["party"],
            "langs": self.langs, "records": self.records, "withdrawn": self.withdrawn, "decisions": self.decisions,
            "list_shard": LIST_SHARD, "record_shard": RECORD_SHARD, "buckets": BUCKETS, "parties": self.parties,
            "labels": self.labels, "facets": {k: dict(v.most_common()) for k, v in self.facets.items()},
        }  # fmt: skip
        yield "site/data/meta.js", [_script("meta", meta)]
        for key in self.files:
            yield f"site/data/{key}.js", [(self.tmp / "files" / key.replace("/", "_")).read_bytes()]
        for b in range(BUCKETS):
            yield f"site/data/ix/{b}.js", [_script(f"ix/{b}", self._bucket(b))]

    def _bucket(self, b: int) -> dict[str, list[int]]:
        path = self.tmp / f"p{b}.tsv"
        postings: dict[str, list[int]] = {}
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    term, _, ident = line.rstrip("\n").rpartition("\t")
                    postings.setdefault(term, []).append(int(ident))
        return postings

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
