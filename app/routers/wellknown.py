"""Well-known paths: the public key that verifies this server's offline bundles."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from app.errors import NotFound
from app.exchange import bundle
from app.settings import get_settings

router = APIRouter(tags=["exchange"])


@router.get("/.well-known/chm-bundle-key", summary="Bundle signing key",
            responses={404: {"description": "This server signs no bundles", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}})  # fmt: skip
async def bundle_key() -> Response:
    """The Ed25519 public key (JWK, RFC 8037) that verifies `manifest.sig` in this server's offline bundles."""
    jwk = bundle.published_jwk(get_settings().bundle_key_path())
    if jwk is None:
        raise NotFound("this server has no bundle signing key (chm bundle keygen makes one)")
    return Response(orjson.dumps(jwk), media_type="application/jwk+json",
                    headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip
