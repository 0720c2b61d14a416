"""JWT encoding and decoding: the only module that imports python-jose (one algorithm, required claims)."""

from __future__ import annotations

import time
from typing import Any

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTError

from app.errors import Unauthenticated
from app.settings import Settings, get_settings

ALGORITHM = "HS256"
TOKEN_TYPE = "chm+jwt"  # noqa: S105 - the `typ` claim, not a secret
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 4096
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS: dict[str, type] = {"iss": str, "aud": str, "sub": str, "jti": str, "iat": int, "exp": int, "typ": str}

_secret_cache: tuple[Settings, str] | None = None


def _secret() -> str:
    """The signing secret, read once per Settings object (development keeps it in a file)."""
    global _secret_cache
    settings = get_settings()
    if _secret_cache is None or _secret_cache[0] is not settings:
        key = settings.secret_key()
        if len(key.encode()) < MIN_SECRET_BYTES:
            raise RuntimeError(f"CHM_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes")
        _secret_cache = (settings, key)
    return _secret_cache[1]


def _reject(reason: str) -> Unauthenticated:
    return Unauthenticated(f"invalid token: {reason}")


def encode_token(claims: dict[str, Any]) -> str:
    """Sign `claims` (which must hold every required claim) as an HS256 JWT."""
    settings = get_settings()
    full = {"iss": settings.token_issuer, "aud": settings.token_audience, "typ": TOKEN_TYPE, **claims}
    missing = [c for c in REQUIRED_CLAIMS if c not in full]
    if missing:
        raise ValueError(f"missing claim(s): {', '.join(missing)}")
    return str(jwt.encode(full, _secret(), algorithm=ALGORITHM, headers={"typ": "JWT"}))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode_token(token: str) -> dict[str, Any]:
    """Verify signature, algorithm, issuer, audience, type and times; return the claims or raise Unauthenticated."""
    if not isinstance(token, str) or not token:
        raise _reject("empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _reject(f"longer than {MAX_TOKEN_LENGTH} characters")
    if token.count(".") != 2:
        raise _reject("not a JWS compact serialization (header.payload.signature)")
    try:
        header = jwt.get_unverified_header(token)
    except (JWTError, ValueError, TypeError):
        raise _reject("malformed header") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        alg = header.get("alg") if isinstance(header, dict) else None
        raise _reject(f"algorithm {alg!r} is not accepted (only {ALGORITHM})")
    if "crit" in header:
        raise _reject("critical header parameters are not supported")
    settings = get_settings()
    options = {f"require_{c}": True for c in ("iss", "aud", "sub", "jti", "iat", "exp")} | {"leeway": LEEWAY_SECONDS}
    try:
        claims = jwt.decode(token, _secret(), algorithms=[ALGORITHM], options=options,
                            audience=settings.token_audience, issuer=settings.token_issuer)  # fmt: skip
    except ExpiredSignatureError:
        raise _reject("expired") from None
    except JWTError as exc:
        raise _reject(str(exc).rstrip(".") or "verification failed") from None
    except (ValueError, TypeError, OverflowError):
        raise _reject("malformed claims") from None
    return _check_claims(claims, settings)


def _check_claims(claims: Any, settings: Settings) -> dict[str, Any]:
    """python-jose does not enforce every claim or type: check them all here."""
    if not isinstance(claims, dict):
        raise _reject("payload is not a JSON object")
    for name, kind in REQUIRED_CLAIMS.items():
        if name not in claims:
            raise _reject(f"missing required claim '{name}'")
        value = claims[name]
        if not (_is_int(value) if kind is int else isinstance(value, kind)) or (kind is str and not value):
            raise _reject(f"claim '{name}' has the wrong type")
    if claims["iss"] != settings.token_issuer:
        raise _reject("wrong issuer")
    if claims["aud"] != settings.token_audience:
        raise _reject("wrong audience")
    if claims["typ"] != TOKEN_TYPE:
        raise _reject(f"wrong token type (expected {TOKEN_TYPE})")
    now = time.time()
    if claims["exp"] <= now - LEEWAY_SECONDS:
        raise _reject("expired")
    if claims["iat"] > now + LEEWAY_SECONDS:
        raise _reject("issued in the future")
    if "nbf" in claims:
        if not _is_int(claims["nbf"]):
            raise _reject("claim 'nbf' has the wrong type")
        if claims["nbf"] > now + LEEWAY_SECONDS:
            raise _reject("not valid yet (nbf)")
    return claims
