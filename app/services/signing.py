"""Tamper-evident tokens: a JSON payload with an HMAC-SHA256 tag, URL-safe base64, keyed per purpose."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from app.settings import get_settings

_TAG = 16  # bytes of the HMAC-SHA256 kept: 128 bits is plenty against forgery and keeps tokens short


def _key(purpose: str) -> bytes:
    # One derived key per purpose, so a token minted for one use never verifies for another.
    return hmac.new(get_settings().secret_key().encode(), b"chm-signing:" + purpose.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def dumps(obj: Any, *, purpose: str) -> str:
    """`obj` (JSON-serialisable) as a signed, URL-safe token."""
    payload = orjson.dumps(obj)
    tag = hmac.new(_key(purpose), payload, hashlib.sha256).digest()[:_TAG]
    return _b64(tag + payload)


def loads(token: str, *, purpose: str) -> Any:
    """The object inside a token made by `dumps` for the same purpose; ValueError when it was tampered with."""
    try:
        # validate=True: a character outside the alphabet is tampering, not noise to skip
        raw = base64.b64decode(token.replace("-", "+").replace("_", "/") + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a token issued by this server") from None
    tag, payload = raw[:_TAG], raw[_TAG:]
    if len(tag) < _TAG or not hmac.compare_digest(
        tag, hmac.new(_key(purpose), payload, hashlib.sha256).digest()[:_TAG]
    ):
        raise ValueError("not a token issued by this server")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ValueError("not a token issued by this server") from None
