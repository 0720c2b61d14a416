"""OAI-PMH 2.0 at /oai (GET and POST) and the native format's XML Schema."""

from __future__ import annotations

from importlib.resources import files
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from app.auth.dependencies import ReadConnDep
from app.exchange import oai
from app.settings import get_settings

router = APIRouter(tags=["harvesting"])
XML = "text/xml; charset=utf-8"


def repository(request: Request) -> oai.Repository:
    """The repository as this request reaches it."""
    settings = get_settings()
    site = str(request.base_url).rstrip("/")
    return oai.Repository(base_url=site + "/oai", site_url=site, identifier=settings.oai_repository_id,
                          name=settings.oai_repository_name, admin_email=settings.oai_admin_email,
                          rights=settings.content_rights, page_size=settings.oai_page_size)  # fmt: skip


_DOC = {
    "summary": "OAI-PMH 2.0",
    "description": "The six verbs (`Identify`, `ListMetadataFormats`, `ListSets`, `ListIdentifiers`, `ListRecords`, "
    "`GetRecord`) with `oai_dc` and the native `chm` format; sets `party:BR`, `type:news`, `kind:decision`, "
    "`gbf-target:GBF-TARGET-02`; protocol errors are HTTP 200 with `<error code=...>`.",
    "response_class": Response,
    "responses": {200: {"content": {"text/xml": {}}, "description": "An OAI-PMH response document"}},
}


@router.get("/oai", operation_id="oaiGet", **_DOC)  # type: ignore[arg-type]
async def oai_get(request: Request, conn: ReadConnDep) -> Response:
    return Response(await oai.respond(conn, repository(request), list(request.query_params.multi_items())),
                    media_type=XML)  # fmt: skip


@router.post("/oai", operation_id="oaiPost", **_DOC)  # type: ignore[arg-type]
async def oai_post(request: Request, conn: ReadConnDep) -> Response:
    """The spec's POST form: application/x-www-form-urlencoded arguments in the body."""
    body = await request.body()
    try:
        params = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body), max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        params = [("verb", "")] * 2  # unparseable: answered as badVerb, like any request without one good verb
    return Response(await oai.respond(conn, repository(request), params), media_type=XML)


@router.get(oai.SCHEMA_PATH, summary="XML Schema of the native `chm` metadata format", response_class=Response,
            responses={200: {"content": {"application/xml": {}}, "description": "XML Schema"}})  # fmt: skip
async def native_schema() -> Response:
    return Response((files("app.exchange") / "chm.xsd").read_bytes(), media_type="application/xml")
