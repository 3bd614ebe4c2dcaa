"""Webhook signatures: Sinch's test vector, tolerance, rotation, constant time."""

import hmac
from unittest import mock

from sinch import signatures
from sinch.signatures import Verdict, compute_signature, sign, verify

# The official test vector (spec §6, from Sinch's Python SDK tests).
VECTOR_SECRET = "foo_secret1234"
VECTOR_NONCE = "01FJA8B4A7BM43YGWSG9GBV067"
VECTOR_TIMESTAMP = "1634579353"
VECTOR_BODY = (
    b'{"app_id":"01EB37HMH1M6SV18BSNS3G135H","accepted_time":"2020-11-17T15:09:11.659Z",'
    b'"project_id":"c36f3d3d-1513-2edd-ae42-11995557ff61","message_delivery_report":'
    b'{"message_id":"01EQBC1A3BEK731GY4YXEN0C2R","conversation_id":'
    b'"01EPYATA64TMNZ1FV02JKF12JF","status":"QUEUED_ON_CHANNEL","contact_id":'
    b'"01EXA07N79THJ20WSN6AS30TMW"}}'
)
VECTOR_SIGNATURE = "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk="
VECTOR_HEADERS = {
    "X-Sinch-Webhook-Signature": VECTOR_SIGNATURE,
    "X-Sinch-Webhook-Signature-Nonce": VECTOR_NONCE,
    "X-Sinch-Webhook-Signature-Timestamp": VECTOR_TIMESTAMP,
    "X-Sinch-Webhook-Signature-Algorithm": "HmacSHA256",
}


def test_signature_matches_sinchs_official_test_vector():
    assert len(VECTOR_BODY) == 322
    signature = compute_signature(
        VECTOR_SECRET, VECTOR_BODY, VECTOR_NONCE, VECTOR_TIMESTAMP
    )
    assert signature == VECTOR_SIGNATURE


def test_official_vector_verifies_at_its_own_time_whatever_the_header_case():
    verdict = verify(VECTOR_HEADERS, VECTOR_BODY, [VECTOR_SECRET], now=1634579353)
    assert verdict is Verdict.VALID
    lowered = {k.lower(): v for k, v in VECTOR_HEADERS.items()}
    assert verify(lowered, VECTOR_BODY, [VECTOR_SECRET], now=1634579353).ok


def test_spec_second_vector_for_the_simulator():
    body = (
        b'{"app_id":"01HAPPID0000000000000000AA","project_id":"proj-123",'
        b'"message":{"contact_message":{"text_message":{"text":"STOP"}}}}'
    )
    assert len(body) == 126
    signature = compute_signature(
        "my-webhook-secret", body, "01JNONCE000000000000000000", "1735689600"
    )
    assert signature == "r/sJzNFfJf4kgfbKg87vhrrhGLMhLSNCC5B3XXcZTsY="


def test_signed_headers_verify_and_carry_every_sinch_header():
    headers = sign(b'{"a":1}', "s3cret")
    assert set(headers) == {
        "x-sinch-webhook-signature",
        "x-sinch-webhook-signature-nonce",
        "x-sinch-webhook-signature-timestamp",
        "x-sinch-webhook-signature-algorithm",
    }
    assert headers["x-sinch-webhook-signature-algorithm"] == "HmacSHA256"
    assert verify(headers, b'{"a":1}', ["s3cret"]) is Verdict.VALID


def test_a_changed_body_or_wrong_secret_is_a_mismatch():
    headers = sign(b'{"a":1}', "s3cret")
    assert verify(headers, b'{"a":2}', ["s3cret"]) is Verdict.MISMATCH
    assert verify(headers, b'{"a":1}', ["other"]) is Verdict.MISMATCH


def test_timestamps_outside_the_tolerance_are_refused_even_when_signed():
    headers = sign(b"{}", "k", timestamp=1_000_000)
    assert verify(headers, b"{}", ["k"], now=1_000_000 + 300) is Verdict.VALID
    assert verify(headers, b"{}", ["k"], now=1_000_000 + 301) is Verdict.STALE
    assert verify(headers, b"{}", ["k"], now=1_000_000 - 301) is Verdict.STALE
    assert verify(headers, b"{}", ["k"], now=1_000_000 + 400, tolerance_s=500).ok


def test_any_of_several_secrets_verifies_during_rotation():
    old = sign(b"{}", "old-secret")
    new = sign(b"{}", "new-secret")
    both = ["new-secret", "old-secret"]
    assert verify(old, b"{}", both).ok
    assert verify(new, b"{}", both).ok
    assert verify(old, b"{}", ["new-secret"]) is Verdict.MISMATCH


def test_missing_headers_bad_timestamp_and_no_secret_are_refused():
    headers = sign(b"{}", "k")
    partial = dict(headers)
    del partial["x-sinch-webhook-signature-nonce"]
    assert verify(partial, b"{}", ["k"]) is Verdict.MISSING_HEADERS
    assert verify(
        {**headers, "x-sinch-webhook-signature-timestamp": "soon"}, b"{}", ["k"]
    ) is (Verdict.BAD_TIMESTAMP)
    assert verify(headers, b"{}", []) is Verdict.NO_SECRET
    assert verify(headers, b"{}", [""]) is Verdict.NO_SECRET


def test_every_secret_is_compared_in_constant_time():
    headers = sign(b"{}", "b")
    with mock.patch.object(
        signatures.hmac, "compare_digest", wraps=hmac.compare_digest
    ) as compare:
        assert verify(headers, b"{}", ["a", "b", "c"]).ok
    assert compare.call_count == 3
