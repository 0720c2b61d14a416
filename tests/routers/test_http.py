"""HTTP done right and an OpenAPI document that tells the truth, checked against the running app."""

from __future__ import annotations

import gzip
import re

import brotli
import httpx
import pytest

from app import db
from app.problems import catalog
from app.settings import get_settings
from tests.auth import token_for
from tests.factories import create_record as _create_record

pytestmark = pytest.mark.asyncio

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
ZERO = "00000000-0000-4000-8000-00000000000"
PARAM_VALUES = {"record_id": ZERO + "0", "request_id": ZERO + "1", "offer_id": ZERO + "2", "node_id": ZERO + "3",
                "token_id": ZERO + "4", "revision": "1", "code": "COP-15-4", "uid": "CHM-RES-BR-000001-1",
                "name": "record-types"}  # fmt: skip


async def create_record(**overrides: object) -> dict:
    async with db.transaction() as s:
        return await _create_record(s, **overrides)


async def _doc(client: httpx.AsyncClient) -> dict:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAM_VALUES.get(m.group(1), ZERO + "9"), path)


async def test_every_error_status_is_a_problem_and_validation_errors_are_not_fastapis(client):
    doc = await _doc(client)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ValidationError" not in doc["components"]["schemas"]
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "errors" in problem["properties"]
    for path, method, op in _operations(doc):
        errors = {s: r for s, r in op["responses"].items() if s[0] == "4"}
        assert {"400", "429"} <= set(errors), (path, method)
        for status, response in errors.items():
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}, (path, status)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in errors, (path, method)
        if "{" in path:
            assert "404" in errors, (path, method)
        if op.get("requestBody"):
            assert {"413", "415"} <= set(errors), (path, method)
        if any(p["name"] == "If-Match" for p in op.get("parameters", [])):
            assert "412" in errors, (path, method)


async def test_operation_ids_are_short_unique_camel_case(client):
    doc = await _doc(client)
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z]{2,31}", i) for i in ids), ids
    assert {"listRecords", "publishRecord", "bulkUpsertRecords", "getRecordRevision", "createToken"} <= set(ids)


async def test_bearer_security_optional_on_reads_required_on_writes_with_scopes(client):
    doc = await _doc(client)
    ops = {op["operationId"]: (method, op) for _, method, op in _operations(doc)}
    assert ops["listRecords"][1]["security"] == [{"bearerAuth": []}, {}]
    assert ops["publishRecord"][1]["security"] == [{"bearerAuth": ["records:publish"]}]
    assert "`records:publish`" in ops["publishRecord"][1]["description"]
    assert ops["createNode"][1]["security"] == [{"bearerAuth": ["nodes:write"]}]
    assert ops["listTokens"][1]["security"] == [{"bearerAuth": ["tokens:write"]}]
    assert ops["getHealth"][1]["security"] == []
    for op_id, (method, op) in ops.items():
        if method != "get" and op_id != "oaiPost":  # OAI-PMH also takes its (anonymous) reads by POST
            assert op["security"] and {} not in op["security"], op_id
            assert {"401", "403"} <= set(op["responses"]), op_id


async def test_one_lstring_enums_date_times_typed_bulk_and_no_graphql(client):
    doc = await _doc(client)
    schemas = doc["components"]["schemas"]
    assert not any(p.startswith("/graphql") for p in doc["paths"])
    assert set(schemas["LString"]["properties"]) == {"ar", "en", "es", "fr", "ru", "zh"}
    assert schemas["RecordPublic"]["properties"]["title"] == {"$ref": "#/components/schemas/LString"}
    assert schemas["RecordCreate"]["properties"]["title"] == {"$ref": "#/components/schemas/LString"}
    assert "x-chm-lstring" not in str(doc)
    params = {p["name"]: p for p in doc["paths"]["/api/v1/records"]["get"]["parameters"]}
    assert "news" in params["type"]["schema"]["enum"] and "published" in params["status"]["schema"]["enum"]
    assert "-updated_at" in params["sort"]["schema"]["enum"]
    assert params["updated_since"]["schema"]["format"] == "date-time"
    assert schemas["RecordPublic"]["properties"]["created_at"]["format"] == "date-time"
    bulk = schemas["BulkRequest"]["properties"]["items"]
    assert bulk["items"] == {"$ref": "#/components/schemas/BulkRecordItem"} and bulk["maxItems"] == 1000
    error = schemas["BulkResult"]["properties"]["error"]
    assert {"$ref": "#/components/schemas/ItemError"} in error["anyOf"]
    assert "records:publish" in schemas["TokenCreate"]["properties"]["scopes"]["items"]["enum"]
    assert "party" in schemas["TokenPublic"]["properties"] and "principal" not in schemas["TokenPublic"]["properties"]


async def test_servers_is_the_requests_own_origin_unless_configured(client, app, monkeypatch):
    assert (await _doc(client))["servers"][0]["url"] == "http://test"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8113") as c:
        assert (await _doc(c))["servers"][0]["url"] == "http://127.0.0.1:8113"
    monkeypatch.setenv("CHM_PUBLIC_URL", "https://chm.example.org/")
    get_settings.cache_clear()
    try:
        assert (await _doc(client))["servers"][0]["url"] == "https://chm.example.org"
    finally:
        monkeypatch.delenv("CHM_PUBLIC_URL")
        get_settings.cache_clear()


async def test_unknown_query_parameters_are_a_400_naming_them_on_every_operation(client):
    doc = await _doc(client)
    sec = await token_for(None)
    for path, method, op in _operations(doc):
        if op.get("x-own-arguments"):  # OAI-PMH answers unknown arguments itself: badArgument, in XML (tests/exchange)
            continue
        r = await client.request(method.upper(), _fill(path) + "?typ=news&limit=5&zzz=1",
                                 headers={"Authorization": f"Bearer {sec}"})  # fmt: skip
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        body = r.json()
        assert body["code"] == "UNKNOWN_PARAMETER" and body["type"] == "/problems/unknown_parameter"
        locs = [e["loc"] for e in body["errors"]]
        assert ["query", "typ"] in locs and ["query", "zzz"] in locs, (path, locs)
    # known parameters still work, and the token hint survives
    assert (await client.get("/api/v1/records?limit=5")).status_code == 200
    r = await client.get("/api/v1/records?access_token=abc")
    assert r.status_code == 400 and "Authorization" in r.json()["detail"]


async def test_a_body_that_is_not_json_is_a_415(client):
    br = await token_for("BR")
    r = await client.post("/api/v1/records", content=b"type=news", headers={
        "Authorization": f"Bearer {br}", "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    r = await client.post("/api/v1/records", content=b"{}", headers={
        "Authorization": f"Bearer {br}", "Content-Type": "application/merge-patch+json"})  # fmt: skip
    assert r.status_code == 422  # +json is JSON


async def test_head_answers_every_get_with_its_headers_and_no_body(client):
    await create_record(status="published")
    doc = await _doc(client)
    for path, method, _ in _operations(doc):
        if method != "get" or "{" in path:
            continue
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
        if path not in ("/metrics", "/api/v1/search", "/api/v1/search/status"):  # these vary from call to call
            assert head.headers.get("content-length") == get.headers.get("content-length"), path
    for page in ("/", "/docs", "/redoc", "/openapi.json"):
        assert (await client.head(page)).status_code == 200, page


async def test_405_allow_lists_every_method_of_the_path(client):
    r = await client.delete("/api/v1/records")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["allow"] == "GET, HEAD, POST"
    assert r.json()["type"] == "/problems/method_not_allowed"
    r = await client.post("/api/v1/records/00000000-0000-4000-8000-000000000000")
    assert r.headers["allow"] == "GET, HEAD, PUT, PATCH"


async def test_lists_have_weak_etags_and_answer_304(client):
    await create_record(status="published")
    r = await client.get("/api/v1/records")
    etag = r.headers["etag"]
    assert etag.startswith('W/"')
    again = await client.get("/api/v1/records", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    await create_record(status="published")
    assert (await client.get("/api/v1/records", headers={"If-None-Match": etag})).status_code == 200


async def test_cache_control_public_for_anonymous_private_with_a_token(client):
    await create_record(status="published")
    anon = await client.get("/api/v1/records")
    assert anon.headers["cache-control"] == f"public, max-age={get_settings().cache_max_age}"
    assert "Authorization" in anon.headers["vary"]
    br = await token_for("BR")
    mine = await client.get("/api/v1/records", headers={"Authorization": f"Bearer {br}"})
    assert mine.headers["cache-control"] == "private, no-store"
    assert (await client.get("/healthz")).headers["cache-control"] == "no-store"
    assert "public" not in (await client.get("/api/v1/records/not-a-uuid")).headers.get("cache-control", "")


async def test_gzip_and_brotli_above_a_small_size_only(client):
    for _ in range(20):
        await create_record(status="published")
    plain = await client.get("/api/v1/records?limit=20", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    for coding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        r = await client.get("/api/v1/records?limit=20", headers={"Accept-Encoding": coding})
        assert r.headers["content-encoding"] == coding and "Accept-Encoding" in r.headers["vary"]
        assert int(r.headers["content-length"]) < len(plain.content) / 3
        assert r.json() == plain.json()  # httpx decodes
        raw = b"".join([chunk async for chunk in r.aiter_raw()]) if not r.is_closed else None
        assert raw is None or decode(raw) == plain.content
    small = await client.get("/healthz", headers={"Accept-Encoding": "gzip, br"})
    assert "content-encoding" not in small.headers
    etag = plain.headers["etag"]
    r = await client.get("/api/v1/records?limit=20", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert r.status_code == 304 and "content-encoding" not in r.headers


async def test_landing_page_index_and_problem_pages_resolve(client):
    home = await client.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    for link in ("/docs", "/redoc", "/graphql", "/api/v1/changes", "/healthz", "/openapi.json"):
        assert f'href="{link}' in home.text, link
    index = (await client.get("/api/v1")).json()
    assert index["resources"]["records"] == "http://test/api/v1/records"
    assert index["docs"]["swagger_ui"] == "http://test/docs"
    codes = catalog()
    assert {"INVALID", "NOT_FOUND", "UNKNOWN_PARAMETER", "RATE_LIMITED", "GONE", "PRECONDITION_FAILED"} <= set(codes)
    for code in codes:
        page = await client.get(f"/problems/{code.lower()}")
        assert page.status_code == 200 and code in page.text, code
    # the type of a real problem resolves
    r = await client.get("/api/v1/records/00000000-0000-4000-8000-000000000000")
    assert (await client.get(r.json()["type"])).status_code == 200
    assert (await client.get("/problems/nope")).status_code == 404


async def test_docs_are_served_from_local_assets(client):
    for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        html = (await client.get(page)).text
        assert "cdn." not in html and "unpkg" not in html and "fonts.googleapis" not in html, page
        for asset in assets:
            assert f"/static/docs/{asset}" in html
            r = await client.get(f"/static/docs/{asset}")
            assert r.status_code == 200 and len(r.content) > 100_000, asset


async def test_graphql_page_says_the_ide_needs_internet_and_shows_curl(client):
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "needs internet" in page.text and "curl -s -X POST http://test/graphql" in page.text
    # the curl example works
    import html as html_lib

    match = re.search(r"-d '(\{.*?\})'", html_lib.unescape(page.text))
    assert match
    await create_record(status="published")
    r = await client.post("/graphql", content=match.group(1), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    assert r.json()["data"]["records"]["edges"]


async def test_tombstone_timestamp_uses_z(client):
    rec = await create_record(status="withdrawn")
    r = await client.get(f"/api/v1/records/{rec['id']}")
    assert r.status_code == 410
    assert r.json()["tombstone"]["withdrawn_at"].endswith("Z")
