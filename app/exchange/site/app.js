/* The offline Clearing-House: a hash-routed reader over the bundle's data files (no network, works from file://).
 *
 * Data files are scripts calling CHM.put(key, value); they load on demand. Records are numbered in export order
 * and sharded (list/N: title, Party, type, date; rec/N: whole records), and so are opportunities (olist/N, opp/N).
 * The search index is split into buckets by FNV-1a of each term; a bucket is a list of [term, [first, gap, ...]]
 * segments (a term's segments concatenate). A posting is a record number n >= 0, or -1 - (i * K + k) for the
 * i-th entry of meta.others[k] (decisions, opportunities; K kinds). Tokenization matches the exporter's (lower
 * case, accents folded, 2+ letter words, CJK characters one by one). All text is set with textContent: nothing
 * from the data is ever parsed as HTML.
 */
"use strict";
(function () {
  var store = {}, waiting = {};
  var CHM = (window.CHM = {
    put: function (key, value) {
      store[key] = value;
      (waiting[key] || []).forEach(function (fn) { fn(value); });
      delete waiting[key];
    },
  });

  function load(key) {
    if (key in store) return Promise.resolve(store[key]);
    return new Promise(function (resolve, reject) {
      var first = !waiting[key];
      (waiting[key] = waiting[key] || []).push(resolve);
      if (!first) return;
      var s = document.createElement("script");
      s.src = "site/data/" + key + ".js";
      s.onerror = function () { reject(new Error("missing data file " + key)); };
      document.head.appendChild(s);
    });
  }

  var LANGS = { ar: "العربية", en: "English", es: "Español", fr: "Français", ru: "Русский", zh: "中文" };
  var TYPES = {};
  var meta = null;
  function pref(value) {  // localStorage can be off for file:// pages
    try { if (value) localStorage.setItem("chm.lang", value); return localStorage.getItem("chm.lang"); } catch (e) { return value; }
  }
  var lang = pref() || (navigator.language || "en").slice(0, 2);

  function pick(ls, want) {
    if (!ls) return "";
    want = want || lang;
    if (ls[want]) return ls[want];
    if (ls.en) return ls.en;
    for (var k in ls) return ls[k];
    return "";
  }

  // --- DOM helpers: el("a", {href: ...}, child, "text") ---
  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (attrs[k] == null) continue;
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null || c === false) continue;
      if (Array.isArray(c)) c.forEach(function (x) { if (x) node.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
      else node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  function show() {
    var main = document.getElementById("main");
    main.textContent = "";
    for (var i = 0; i < arguments.length; i++) if (arguments[i]) main.appendChild(arguments[i]);
    window.scrollTo(0, 0);
  }

  // --- search terms: the same rules as the exporter ---
  var CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]/;
  var CJK_RUNS = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+/g;
  function tokens(text) {
    var folded = text.toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
    var out = [];
    (folded.match(/[\p{L}\p{N}]+/gu) || []).forEach(function (w) {
      if (CJK.test(w)) {
        (w.match(CJK_RUNS) || []).forEach(function (p) { if (CJK.test(p) || p.length >= 2) out.push(p); });
      } else if (w.length >= 2 || /^\d+$/.test(w)) out.push(w);
    });
    return out;
  }
  function bucket(term) {
    var h = 0x811c9dc5, bytes = new TextEncoder().encode(term);
    for (var i = 0; i < bytes.length; i++) { h ^= bytes[i]; h = Math.imul(h, 0x01000193) >>> 0; }
    return h % meta.buckets;
  }
  var buckets = {};
  function index(b) {
    if (buckets[b]) return Promise.resolve(buckets[b]);
    return load("ix/" + b).then(function (segments) {
      if (buckets[b]) return buckets[b];
      var map = Object.create(null);  // a term may be "constructor" or "__proto__"
      segments.forEach(function (seg) {
        var list = map[seg[0]] || (map[seg[0]] = []), gaps = seg[1], x = 0;
        for (var i = 0; i < gaps.length; i++) { x += gaps[i]; list.push(x); }
      });
      delete store["ix/" + b];
      return (buckets[b] = map);
    });
  }
  function postings(term) {
    return index(bucket(term)).then(function (map) { return map[term] || []; });
  }
  // postings -> {record: [n...], decision: [i...], opportunity: [j...]}, each ascending
  function split(hits) {
    var out = { record: [] }, K = meta.others.length;
    meta.others.forEach(function (k) { out[k] = []; });
    hits.forEach(function (x) {
      if (x >= 0) out.record.push(x);
      else { var q = -1 - x; out[meta.others[q % K]].push(Math.floor(q / K)); }
    });
    for (var k in out) out[k].sort(function (a, b) { return a - b; });
    return out;
  }
  function intersect(lists) {
    if (!lists.length) return [];
    lists.sort(function (a, b) { return a.length - b.length; });
    var acc = lists[0];
    for (var i = 1; i < lists.length; i++) {
      var set = new Set(lists[i]);
      acc = acc.filter(function (x) { return set.has(x); });
    }
    return acc;
  }

  // --- lookups ---
  function entries(key, nums) {  // list entries of records ("list") or opportunities ("olist")
    var shards = {};
    nums.forEach(function (n) { shards[Math.floor(n / meta.list_shard)] = 1; });
    return Promise.all(Object.keys(shards).map(function (s) { return load(key + "/" + s); })).then(function () {
      return nums.map(function (n) { return store[key + "/" + Math.floor(n / meta.list_shard)][n % meta.list_shard]; });
    });
  }
  function listEntries(nums) { return entries("list", nums); }
  function whole(key, n) {  // a whole record ("rec") or opportunity ("opp")
    var s = Math.floor(n / meta.record_shard);
    return load(key + "/" + s).then(function (rows) { return rows[n % meta.record_shard]; });
  }
  function record(n) { return whole("rec", n); }
  function partyName(code) { return pick(meta.parties[code]) || code; }
  function label(facet, code) { return pick((meta.labels[facet] || {})[code]) || TYPES[code] || code; }

  // --- views ---
  var PAGE = 25;

  function recordItem(n, e) {
    return el("li", { class: "hit", "data-n": n },
      el("a", { class: "title", href: "#/r/" + n, text: pick(e.t) }),
      el("div", { class: "meta" },
        el("span", { text: partyName(e.p) }), el("span", { text: label("type", e.y) }),
        e.d ? el("span", { text: e.d }) : null, el("span", { class: "uid", text: e.u })));
  }
  function decisionItem(i) {
    var d = meta.decisions[i];
    return el("li", { class: "hit decision-hit" },
      el("a", { class: "title", href: "#/d/" + i, text: d.c + " — " + pick(d.t) }),
      el("div", { class: "meta" }, el("span", { text: d.sy }), d.a ? el("span", { text: d.a }) : null,
        el("span", { text: d.st })));
  }

  function opportunityItem(j, o) {
    return el("li", { class: "hit opportunity-hit" },
      el("a", { class: "title", href: "#/o/" + j, text: pick(o.t) }),
      el("div", { class: "meta" }, el("span", { text: o.p ? partyName(o.p) : o.po }),
        o.p && o.po ? el("span", { text: o.po }) : null,
        o.dl ? el("span", { text: "Deadline " + o.dl }) : null, el("span", { text: o.st })));
  }
  function opportunityList(nums) {
    return entries("olist", nums).then(function (es) {
      return el("ul", { class: "hits", id: "opportunities" }, es.map(function (o, k) { return opportunityItem(nums[k], o); }));
    });
  }

  function pager(base, page, total) {
    var last = Math.max(0, Math.ceil(total / PAGE) - 1);
    return el("div", { class: "pager" },
      page > 0 ? el("a", { href: base + "/" + (page - 1), text: "← Previous" }) : el("span"),
      el("span", { class: "muted", text: total ? (page * PAGE + 1) + "–" + Math.min(total, (page + 1) * PAGE) + " of " + total : "" }),
      page < last ? el("a", { href: base + "/" + (page + 1), class: "next", text: "Next →" }) : el("span"));
  }

  // hits: {record: [...], decision: [...], opportunity: [...]}; records are paged, the others shown on page 0
  function showRecords(title, hits, base, page) {
    var nums = hits.record, decs = hits.decision || [], opps = hits.opportunity || [];
    var slice = nums.slice(page * PAGE, (page + 1) * PAGE);
    return Promise.all([listEntries(slice), page === 0 && opps.length ? opportunityList(opps.slice(0, 50)) : null])
      .then(function (got) {
        var list = el("ol", { class: "hits", id: "records" }, got[0].map(function (e, i) { return recordItem(slice[i], e); }));
        var parts = [el("h1", { text: title })];
        if (page === 0 && decs.length) {
          parts.push(el("h2", { text: "Decisions (" + decs.length + ")" }),
            el("ul", { class: "hits", id: "decisions" }, decs.slice(0, 50).map(decisionItem)));
        }
        if (got[1]) parts.push(el("h2", { text: "Opportunities (" + opps.length + ")" }), got[1]);
        if (page === 0 && (decs.length || opps.length)) parts.push(el("h2", { text: "Records (" + nums.length + ")" }));
        if (!nums.length && !decs.length && !opps.length) parts.push(el("p", { class: "muted", text: "Nothing found." }));
        parts.push(list, pager(base, page, nums.length));
        show.apply(null, parts);
      });
  }

  function range(n) {
    var nums = [];
    for (var i = 0; i < n; i++) nums.push(i);
    return nums;
  }
  function home(page) {
    return showRecords("Records", { record: range(meta.records) }, "#/page", page);
  }

  function opportunities(page) {
    var nums = range(meta.opportunities), slice = nums.slice(page * PAGE, (page + 1) * PAGE);
    return opportunityList(slice).then(function (list) {
      show(el("h1", { text: "Opportunities" }),
        nums.length ? list : el("p", { class: "muted", text: "No opportunities in this bundle." }),
        pager("#/opportunities", page, nums.length));
    });
  }

  function search(q, page) {
    document.getElementById("q").value = q;
    var terms = Array.from(new Set(tokens(q)));
    if (!terms.length) return showRecords("Search", { record: [] }, "#/search/" + encodeURIComponent(q), 0);
    return Promise.all(terms.map(postings)).then(function (lists) {
      return showRecords("Search: " + q, split(intersect(lists)), "#/search/" + encodeURIComponent(q), page);
    });
  }

  function facet(term, page) {
    var parts = term.split(":"), kind = parts[0], code = parts.slice(1).join(":");
    return postings(term).then(function (hits) {
      var name = kind === "party" ? partyName(code.toUpperCase()) : label(kind, code.toUpperCase()) ;
      if (kind === "type") name = label("type", code);
      var what = { party: "Party", type: "Type", subject: "Subject", gbf: "GBF target" }[kind] || kind;
      return showRecords(what + ": " + name, split(hits), "#/f/" + encodeURIComponent(term), page);
    });
  }

  function facetList(kind, title) {
    var counts = meta.facets[kind] || {};
    var codes = Object.keys(counts);
    if (kind !== "party") codes.sort();
    return el("section", { "data-facet": kind }, el("h2", { text: title }),
      el("ul", null, codes.map(function (code) {
        var name = kind === "party" ? partyName(code) : label(kind, code);
        var shown = kind === "gbf" || kind === "subject" ? code.replace(/^(GBF-TARGET|CBD-SUBJECT)-/, "") + " · " + name : name;
        return el("li", null, el("a", { href: "#/f/" + encodeURIComponent(kind + ":" + code.toLowerCase()), text: shown }),
          el("span", { class: "muted", text: String(counts[code]) }));
      })));
  }

  function browse() {
    show(el("h1", { text: "Browse" }),
      el("div", { class: "facets" }, facetList("party", "By Party"), facetList("type", "By type"),
        facetList("gbf", "By GBF target"), facetList("subject", "By subject")));
  }

  function decisions() {
    var all = meta.decisions.map(function (_, i) { return i; });
    show(el("h1", { text: "Decisions" }), el("ul", { class: "hits", id: "decisions" }, all.map(decisionItem)));
  }

  function langButtons(available, current, onPick) {
    return el("div", { class: "langs", role: "group", "aria-label": "Read in" }, available.map(function (l) {
      return el("button", { type: "button", "data-lang": l, "aria-pressed": String(l === current), text: LANGS[l] || l,
        onclick: function () { onPick(l); } });
    }));
  }
  function available(values) {
    var seen = {};
    values.forEach(function (v) { for (var k in v || {}) seen[k] = 1; });
    return Object.keys(LANGS).filter(function (l) { return seen[l]; });
  }
  function textBlock(text) {
    return el("div", { class: "body" }, (text || "").split(/\n\s*\n/).map(function (p) {
      return el("p", { text: p.replace(/^#+\s*/, "").trim() });
    }));
  }
  function chips(items, kind) {
    return el("ul", { class: "chips" }, items.map(function (code) {
      return el("li", null, el("a", { href: "#/f/" + encodeURIComponent(kind + ":" + code.toLowerCase()), text: code }));
    }));
  }
  function relatedDecisions(targets, subjects) {
    var out = [];
    meta.decisions.forEach(function (d, i) {
      var shared = d.g.some(function (g) { return targets.indexOf(g) >= 0; }) ||
        d.sj.some(function (s) { return subjects.indexOf(s) >= 0; });
      if (shared) out.push(i);
    });
    return out;
  }

  function recordPage(n, want) {
    return record(n).then(function (r) {
      if (!r) return show(el("p", { class: "warn", text: "No such record in this bundle." }));
      var langs = available([r.t, r.s, r.b]);
      var l = want && langs.indexOf(want) >= 0 ? want : (langs.indexOf(lang) >= 0 ? lang : (langs.indexOf("en") >= 0 ? "en" : langs[0]));
      var related = relatedDecisions(r.g, r.sj);
      show(el("article", { class: "record", lang: l, dir: l === "ar" ? "rtl" : null },
        el("h1", { text: pick(r.t, l) }),
        langButtons(langs, l, function (x) { recordPage(n, x); }),
        el("div", { class: "meta" }, el("a", { href: "#/f/party:" + r.p.toLowerCase(), text: partyName(r.p) }),
          el("a", { href: "#/f/type:" + r.y, text: label("type", r.y) }), r.d ? el("span", { text: r.d }) : null,
          el("span", { class: "uid", text: r.u })),
        r.s ? el("p", { class: "summary" }, el("strong", { text: pick(r.s, l) })) : null,
        r.b ? textBlock(pick(r.b, l)) : null,
        r.k.length ? el("ul", { class: "chips" }, r.k.map(function (k) {
          return el("li", null, el("a", { href: "#/search/" + encodeURIComponent(k), text: k })); })) : null,
        r.g.length ? el("h2", { text: "GBF targets" }) : null, r.g.length ? chips(r.g, "gbf") : null,
        r.sj.length ? el("h2", { text: "Subjects" }) : null, r.sj.length ? chips(r.sj, "subject") : null,
        r.l.length ? el("h2", { text: "Links" }) : null,
        r.l.length ? el("ul", null, r.l.map(function (x) {
          return el("li", null, el("a", { href: x.url, rel: "noopener noreferrer", text: x.name || x.url })); })) : null,
        related.length ? el("h2", { text: "Related decisions" }) : null,
        related.length ? el("ul", { class: "hits", id: "related" }, related.slice(0, 20).map(decisionItem)) : null));
    });
  }

  function opportunityPage(j, want) {
    return whole("opp", j).then(function (o) {
      if (!o) return show(el("p", { class: "warn", text: "No such opportunity in this bundle." }));
      var langs = available([o.t, o.ds]);
      var l = want && langs.indexOf(want) >= 0 ? want : (langs.indexOf(lang) >= 0 ? lang : (langs.indexOf("en") >= 0 ? "en" : langs[0]));
      var related = relatedDecisions(o.g, o.sj);
      var names = function (facet, codes) { return codes.map(function (c) { return label(facet, c); }).join(", "); };
      show(el("article", { class: "opportunity", lang: l, dir: l === "ar" ? "rtl" : null },
        el("h1", { text: pick(o.t, l) }),
        langButtons(langs, l, function (x) { opportunityPage(j, x); }),
        el("dl", { class: "facts" },
          el("dt", { text: "Provider" }),
          el("dd", null, o.p ? el("a", { href: "#/f/party:" + o.p.toLowerCase(), text: partyName(o.p) }) : null,
            o.p && o.po ? " · " : null, o.po || null),
          el("dt", { text: "Status" }), el("dd", { text: o.st }),
          o.dl ? el("dt", { text: "Application deadline" }) : null, o.dl ? el("dd", { text: o.dl }) : null,
          o.at.length ? el("dt", { text: "Assistance" }) : null, o.at.length ? el("dd", { text: names("assistance", o.at) }) : null,
          o.ec.length || o.er.length ? el("dt", { text: "Eligible" }) : null,
          o.ec.length || o.er.length ? el("dd", { text: o.ec.map(partyName).concat(o.er.map(function (r) { return label("region", r); })).join(", ") }) : null,
          o.ct ? el("dt", { text: "Contact" }) : null,
          o.ct ? el("dd", { text: [o.ct.name, o.ct.organization, o.ct.email].filter(Boolean).join(", ") }) : null),
        o.ds ? textBlock(pick(o.ds, l)) : null,
        o.url ? el("p", null, el("a", { href: o.url, rel: "noopener noreferrer", text: o.url })) : null,
        o.g.length ? el("h2", { text: "GBF targets" }) : null, o.g.length ? chips(o.g, "gbf") : null,
        o.sj.length ? el("h2", { text: "Subjects" }) : null, o.sj.length ? chips(o.sj, "subject") : null,
        related.length ? el("h2", { text: "Related decisions" }) : null,
        related.length ? el("ul", { class: "hits", id: "related" }, related.slice(0, 20).map(decisionItem)) : null));
    });
  }

  function decisionPage(i, want) {
    return load("dec/" + i).then(function (d) {
      var langs = available([d.t].concat(d.ps.map(function (p) { return p.tx; })));
      var l = want && langs.indexOf(want) >= 0 ? want : (langs.indexOf(lang) >= 0 ? lang : (langs.indexOf("en") >= 0 ? "en" : langs[0]));
      var terms = d.g.map(function (g) { return "gbf:" + g.toLowerCase(); });
      var page = el("article", { class: "decision", lang: l, dir: l === "ar" ? "rtl" : null },
        el("h1", { text: d.c + " — " + pick(d.t, l) }),
        langButtons(langs, l, function (x) { decisionPage(i, x); }),
        el("dl", { class: "facts" }, el("dt", { text: "Symbol" }), el("dd", { text: d.sy }),
          el("dt", { text: "Status" }), el("dd", { text: d.st }),
          d.a ? el("dt", { text: "Adopted" }) : null, d.a ? el("dd", { text: d.a }) : null,
          d.m ? el("dt", { text: "Meeting" }) : null,
          d.m ? el("dd", { text: [d.m.code, d.m.place, d.m.start].filter(Boolean).join(", ") }) : null),
        d.g.length ? el("h2", { text: "GBF targets" }) : null, d.g.length ? chips(d.g, "gbf") : null,
        el("h2", { text: "Paragraphs" }),
        el("ol", { class: "paragraphs", id: "paragraphs" }, d.ps.map(function (p) {
          return el("li", { class: p.ty || "operative" }, el("span", { class: "n", text: p.n || "" }),
            p.se ? el("em", { text: p.se + " — " }) : null, pick(p.tx, l));
        })),
        el("h2", { text: "Records on the same targets" }), el("ul", { class: "hits", id: "linked" }));
      show(page);
      return Promise.all(terms.map(postings)).then(function (lists) {
        var seen = new Set(), nums = [];
        lists.forEach(function (ps) { ps.forEach(function (x) { if (x >= 0 && !seen.has(x)) { seen.add(x); nums.push(x); } }); });
        nums.sort(function (a, b) { return a - b; });
        nums = nums.slice(0, 20);
        return listEntries(nums).then(function (entries) {
          var ul = document.getElementById("linked");
          entries.forEach(function (e, k) { ul.appendChild(recordItem(nums[k], e)); });
          if (!entries.length) ul.appendChild(el("li", { class: "muted", text: "None in this bundle." }));
        });
      });
    });
  }

  function about() {
    var m = meta;
    show(el("h1", { text: "About this bundle" }), el("dl", { class: "facts" },
      el("dt", { text: "Source" }), el("dd", { text: m.source }),
      el("dt", { text: "Created" }), el("dd", { text: m.created_at }),
      el("dt", { text: "Change-log position" }), el("dd", { text: String(m.high_water_mark) }),
      el("dt", { text: "Delta since" }), el("dd", { text: m.since == null ? "— (full bundle)" : String(m.since) }),
      el("dt", { text: "Party" }), el("dd", { text: m.party || "all" }),
      el("dt", { text: "Records" }), el("dd", { text: String(m.records) }),
      el("dt", { text: "Decisions" }), el("dd", { text: String(m.decisions.length) }),
      el("dt", { text: "Opportunities" }), el("dd", { text: String(m.opportunities) })),
      el("p", { class: "muted", text: "Verify the bundle with: chm bundle verify FILE.zip --key PUBLIC_KEY" }));
  }

  function route() {
    var h = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
    var parts = h.split("/"), head = parts[0];
    document.querySelectorAll("#tabs a").forEach(function (a) {
      var k = a.getAttribute("data-k");
      a.classList.toggle("on", k === (head === "" || head === "page" || head === "r" ? "home" : head === "d" ? "decisions" :
        head === "o" ? "opportunities" : head === "f" ? "browse" : head));
    });
    var num = function (i) { return parseInt(parts[i] || "0", 10) || 0; };
    var done;
    if (head === "r") done = recordPage(num(1));
    else if (head === "d") done = decisionPage(num(1));
    else if (head === "o") done = opportunityPage(num(1));
    else if (head === "opportunities") done = opportunities(num(1));
    else if (head === "search") done = search(parts[1] || "", num(2));
    else if (head === "f") done = facet(parts[1] || "", num(2));
    else if (head === "decisions") done = decisions();
    else if (head === "browse") done = browse();
    else if (head === "about") done = about();
    else done = home(head === "page" ? num(1) : 0);
    Promise.resolve(done).then(function () { document.body.setAttribute("data-ready", "1"); }, function (err) {
      show(el("p", { class: "warn", text: String(err && err.message || err) }));
      document.body.setAttribute("data-ready", "error");
    });
  }

  load("meta").then(function (m) {
    meta = m;
    if (m.langs.indexOf(lang) < 0) lang = m.langs.indexOf("en") >= 0 ? "en" : m.langs[0];
    var select = document.getElementById("lang");
    m.langs.forEach(function (l) { select.appendChild(el("option", { value: l, text: LANGS[l] || l })); });
    select.value = lang;
    document.documentElement.lang = lang;
    select.addEventListener("change", function () {
      lang = select.value;
      pref(lang);
      document.documentElement.lang = lang;
      route();
    });
    document.getElementById("search").addEventListener("submit", function (ev) {
      ev.preventDefault();
      location.hash = "#/search/" + encodeURIComponent(document.getElementById("q").value.trim());
    });
    document.getElementById("foot").textContent = "Offline copy of " + m.source + " · " + m.created_at.slice(0, 10) +
      " · " + m.records + " records, " + m.decisions.length + " decisions, " + m.opportunities + " opportunities";
    window.addEventListener("hashchange", route);
    route();
  });
})();
