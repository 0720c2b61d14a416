"""Signed tokens: round trip, and every kind of tampering refused."""

from __future__ import annotations

import base64

import pytest

from app.services import signing


def test_round_trip_and_purpose_binding() -> None:
    token = signing.dumps({"a": [1, "x", None]}, purpose="test")
    assert signing.loads(token, purpose="test") == {"a": [1, "x", None]}
    assert "=" not in token and "+" not in token and "/" not in token
    with pytest.raises(ValueError):
        signing.loads(token, purpose="other")


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # MAC changed
    lambda t: ("A" if t[0] != "A" else "B") + t[1:],  # payload changed
    lambda t: t.split(".")[0],  # MAC dropped
    lambda t: t + "x",  # bad base64 length
    lambda t: "",
    lambda t: "é." + t,
    lambda t: base64.urlsafe_b64encode(b'{"a":2}').decode().rstrip("=") + "." + t.split(".")[1],
])  # fmt: skip
def test_tampering_is_a_value_error(mutate) -> None:  # type: ignore[no-untyped-def]
    token = signing.dumps({"a": 1}, purpose="test")
    with pytest.raises(ValueError):
        signing.loads(mutate(token), purpose="test")
