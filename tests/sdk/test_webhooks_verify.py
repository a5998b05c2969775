"""payplat_sdk.webhooks.verify: `Payplat-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256
over f"{t}.{payload}", within a tolerance, with one secret or several while one is rolled."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from payplat_sdk import Event, PayplatError, SignatureVerificationError, webhooks

SECRET = "whsec_test_4f1d2c3b"
OLD_SECRET = "whsec_old_9a8b7c6d"
NOW = 1_767_225_600
EVENT = {
    "id": "evt_01",
    "object": "event",
    "type": "payment.succeeded",
    "created": NOW - 1,
    "data": {"object": {"id": "pay_01", "object": "payment", "amount": 5000}},
}
PAYLOAD = json.dumps(EVENT, separators=(",", ":")).encode()


def header(payload: bytes, *secrets: str, t: int = NOW) -> str:
    """Signed independently of the SDK: the documented scheme, by hand."""
    signatures = [
        hmac.new(s.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        for s in secrets
    ]
    return ",".join([f"t={t}", *(f"v1={sig}" for sig in signatures)])


def test_a_good_signature_returns_the_event() -> None:
    assert webhooks.verify(PAYLOAD, header(PAYLOAD, SECRET), SECRET, now=NOW) == EVENT
    # The payload as text, and a header with spaces, verify the same
    spaced = header(PAYLOAD, SECRET).replace(",", ", ")
    assert webhooks.verify(PAYLOAD.decode(), spaced, SECRET, now=NOW) == EVENT
    event = webhooks.construct_event(PAYLOAD, header(PAYLOAD, SECRET), SECRET, now=NOW)
    assert isinstance(event, Event)
    assert (event.id, event.type, event.data["object"]["id"]) == (
        "evt_01",
        "payment.succeeded",
        "pay_01",
    )


def test_sign_makes_what_verify_accepts() -> None:
    assert webhooks.sign(PAYLOAD, SECRET, timestamp=NOW) == header(PAYLOAD, SECRET)
    assert webhooks.verify(PAYLOAD, webhooks.sign(PAYLOAD, SECRET), SECRET) == EVENT


@pytest.mark.parametrize(
    ("t", "now", "tolerance"),
    [
        (NOW - 301, NOW, 300),  # stale: a replay of an old delivery
        (NOW + 301, NOW, 300),  # from the future
        (NOW - 11, NOW, 10),
    ],
    ids=["stale", "future", "tight-tolerance"],
)
def test_a_timestamp_outside_the_tolerance_is_refused(t: int, now: int, tolerance: int) -> None:
    signed = header(PAYLOAD, SECRET, t=t)
    with pytest.raises(SignatureVerificationError, match="tolerance"):
        webhooks.verify(PAYLOAD, signed, SECRET, tolerance=tolerance, now=now)


def test_the_edge_of_the_tolerance_is_accepted() -> None:
    assert webhooks.verify(PAYLOAD, header(PAYLOAD, SECRET, t=NOW - 300), SECRET, now=NOW)


def test_an_altered_payload_or_signature_is_refused() -> None:
    signed = header(PAYLOAD, SECRET)
    altered = PAYLOAD.replace(b"5000", b"9000")
    with pytest.raises(SignatureVerificationError, match="No signature matches"):
        webhooks.verify(altered, signed, SECRET, now=NOW)
    # Moving the timestamp breaks the signature too (it is signed)
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(PAYLOAD, signed.replace(f"t={NOW}", f"t={NOW + 1}"), SECRET, now=NOW)
    flipped = signed[:-1] + ("0" if signed[-1] != "0" else "1")
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(PAYLOAD, flipped, SECRET, now=NOW)
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(PAYLOAD, signed, "whsec_someone_else", now=NOW)


def test_rolled_secrets_verify_with_either() -> None:
    # While a secret is rolled, payplat signs with both: either secret verifies
    both = header(PAYLOAD, SECRET, OLD_SECRET)
    assert webhooks.verify(PAYLOAD, both, SECRET, now=NOW) == EVENT
    assert webhooks.verify(PAYLOAD, both, OLD_SECRET, now=NOW) == EVENT
    # A receiver that holds both accepts a delivery signed with either
    for signer in (SECRET, OLD_SECRET):
        signed = header(PAYLOAD, signer)
        assert webhooks.verify(PAYLOAD, signed, [SECRET, OLD_SECRET], now=NOW) == EVENT
    # Once the old secret is dropped, a delivery signed only with it is refused
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(PAYLOAD, header(PAYLOAD, OLD_SECRET), [SECRET], now=NOW)
    assert webhooks.sign(PAYLOAD, [SECRET, OLD_SECRET], timestamp=NOW) == both


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "v1=abc",  # no timestamp
        f"t={NOW}",  # no signature
        f"t={NOW},v0=abc",  # only another scheme
        f"t=yesterday,v1={'0' * 64}",
        f"t={NOW},v1=é",  # not ASCII
        "t=1," + "v1=0," * 2000,  # absurdly long
    ],
)
def test_malformed_headers_are_refused(bad: str) -> None:
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(PAYLOAD, bad, SECRET, now=NOW)


def test_no_secret_and_non_object_payloads_are_refused() -> None:
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(PAYLOAD, header(PAYLOAD, SECRET), [], now=NOW)
    for payload in (b"[1, 2]", b"not json"):
        with pytest.raises(SignatureVerificationError):
            webhooks.verify(payload, header(payload, SECRET), SECRET, now=NOW)


def test_the_error_is_a_payplat_error_and_never_shows_the_secret() -> None:
    with pytest.raises(PayplatError) as refused:
        webhooks.verify(PAYLOAD, header(PAYLOAD, SECRET), OLD_SECRET, now=NOW)
    assert isinstance(refused.value, SignatureVerificationError)
    for text in (str(refused.value), repr(refused.value)):
        assert OLD_SECRET not in text
        assert SECRET not in text
