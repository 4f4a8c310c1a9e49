"""Webhook signatures: a receiver accepts exactly what was signed, recently, with its secret."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.alerts.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    idempotency_key,
    sign,
    signed_headers,
    verify,
)

SECRET = "a-secret-of-sixteen-bytes-or-more"
NOW = 1_790_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"alert_id":"promise_broken:j1:s1"}'
    expected = hmac.new(SECRET.encode(), b"1790000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, body) == f"v1={expected}"


@given(body=st.binary(max_size=2000), skew=st.integers(-300, 300))
def test_a_signed_delivery_verifies_within_the_window(body: bytes, skew: int) -> None:
    headers = signed_headers(SECRET, NOW, body, alert_id="a", kind="test", attempt=1)
    verify(SECRET, headers, body, now=NOW + skew)


@given(body=st.binary(min_size=1, max_size=500), flip=st.integers(0, 499))
def test_any_changed_byte_fails(body: bytes, flip: int) -> None:
    headers = signed_headers(SECRET, NOW, body, alert_id="a", kind="test", attempt=1)
    at = flip % len(body)
    tampered = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
    with pytest.raises(SignatureError, match=SIGNATURE_HEADER):
        verify(SECRET, headers, tampered, now=NOW)


def test_another_secret_a_new_timestamp_or_an_old_delivery_fail() -> None:
    body = b"{}"
    headers = signed_headers(SECRET, NOW, body, alert_id="a", kind="test", attempt=1)
    with pytest.raises(SignatureError, match="does not match"):
        verify("another-secret-of-16-bytes", headers, body, now=NOW)
    # A replay with a fresh timestamp: the signature covers the old one.
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, headers | {TIMESTAMP_HEADER: str(NOW + 10)}, body, now=NOW + 10)
    with pytest.raises(SignatureError, match="replayed or delayed"):
        verify(SECRET, headers, body, now=NOW + 301)
    with pytest.raises(SignatureError, match="Unix seconds"):
        verify(SECRET, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, body, now=NOW)


@given(alert_id=st.text(min_size=1, max_size=300))
def test_the_idempotency_key_is_stable_and_header_safe(alert_id: str) -> None:
    key = idempotency_key(alert_id)
    assert key == idempotency_key(alert_id)
    assert len(key) == 32 and key.isascii() and key.isalnum()
    headers = signed_headers(SECRET, NOW, b"", alert_id=alert_id, kind="k", attempt=2)
    assert headers[IDEMPOTENCY_HEADER] == key
