"""Tamper-evident tokens for state the API hands to clients and takes back (keyset cursors, OAI-PMH
resumption tokens): `dumps(obj, purpose=...)` and `loads(token, purpose=...)`.

A token is `base64url(orjson(obj)) "." base64url(HMAC-SHA256(key, purpose NUL payload)[:16])`, the key derived
from the settings secret. The purpose is part of the MAC, so a token made for one use is refused by another.
Signing proves the token is ours; callers still re-validate the values they decode.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache
from typing import Any

import orjson

from app.settings import get_settings

MAC_BYTES = 16  # 128 bits: forgery stays out of reach, cursors stay short
MAX_TOKEN_CHARS = 16_384


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"chm-api signing v1", hashlib.sha256).digest()


def _mac(purpose: str, payload: bytes) -> bytes:
    key = _key(get_settings().secret_key())
    return hmac.new(key, purpose.encode() + b"\x00" + payload, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dumps(obj: Any, *, purpose: str) -> str:
    """A URL-safe token carrying `obj` (anything orjson serializes), signed for `purpose`."""
    payload = orjson.dumps(obj)
    return f"{_b64(payload)}.{_b64(_mac(purpose, payload))}"


def loads(token: str, *, purpose: str) -> Any:
    """The object inside a token made by `dumps` for the same purpose; ValueError if it was altered,
    truncated, made for another purpose or with another secret."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise ValueError("not a token issued by this API")
    body, sep, mac = token.partition(".")
    if not sep:
        raise ValueError("not a token issued by this API")
    try:
        payload = _unb64(body)
    except (binascii.Error, ValueError):
        raise ValueError("not a token issued by this API") from None
    # Compare the encoded MAC: base64 decoding ignores trailing bits, so only the exact text is ours.
    if _b64(payload) != body or not hmac.compare_digest(mac.encode(), _b64(_mac(purpose, payload)).encode()):
        raise ValueError("not a token issued by this API (signature mismatch)")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:  # only if the secret leaked; still never a 500
        raise ValueError("not a token issued by this API") from None
