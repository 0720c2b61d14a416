"""REST: /api/v1/parties and /api/v1/vocabularies."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.auth.dependencies import ReadConnDep
from app.models.party import PartyPublic, VocabularyPublic
from app.routers import http
from app.routers.params import DEFAULT, Cursor, Limit
from app.services import reference as reference_service

router = APIRouter(prefix="/api/v1", tags=["reference"])


class PartyList(BaseModel):
    items: list[PartyPublic]
    next_cursor: str | None = None


class VocabularyNames(BaseModel):
    items: list[str]


@router.get("/parties", response_model=PartyList, summary="List Parties")
async def list_parties(request: Request, conn: ReadConnDep, limit: Limit = DEFAULT, cursor: Cursor = None) -> Response:
    """The 196 Parties to the Convention, by code."""
    items, next_cursor = await reference_service.list_parties(conn, cursor=cursor, limit=limit)
    return http.listing(request, PartyList, items, next_cursor)


@router.get("/parties/{code}", response_model=PartyPublic, summary="Get a Party")
async def get_party(request: Request, code: str, conn: ReadConnDep) -> Response:
    """One Party by ISO 3166-1 alpha-2 code (`EU` for the European Union)."""
    return http.single(request, PartyPublic, await reference_service.get_party(conn, code))


@router.get("/vocabularies", response_model=VocabularyNames, summary="List vocabularies")
async def list_vocabularies(request: Request, conn: ReadConnDep) -> Response:
    """Names of the controlled vocabularies."""
    return http.single(request, VocabularyNames, {"items": await reference_service.list_vocabulary_names(conn)})


@router.get("/vocabularies/{name}", response_model=VocabularyPublic, summary="Get a vocabulary")
async def get_vocabulary(request: Request, name: str, conn: ReadConnDep) -> Response:
    """All terms of a vocabulary (e.g. gbf-targets, aichi-targets, cbd-subjects, record-types)."""
    return http.single(request, VocabularyPublic, await reference_service.get_vocabulary(conn, name))
