"""PKCE (RFC 7636, S256 only) and scope narrowing at the token endpoint (RFC 6749 §3.3).

The PKCE oracle here is the RFC's own example (Appendix B) and BASE64URL(SHA256(ASCII(v)))
computed with the standard library, independently of payplat.grants.
"""

from __future__ import annotations

import base64
import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payplat.clients.registry import Client
from payplat.errors import OAuthError
from payplat.oauth.grants import pkce_matches, valid_challenge
from payplat.oauth.token_endpoint import CLIENT_ONLY_SCOPES, granted_scopes, user_scopes

# RFC 7636 Appendix B: the verifier is the base64url of 32 given octets; the challenge is
# BASE64URL(SHA256(verifier)).
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
RFC_OCTETS = bytes(
    [
        *(116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186),
        *(22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121),
    ]
)
UNRESERVED = string.ascii_letters + string.digits + "-._~"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --- pkce_matches ------------------------------------------------------------------------------


def test_the_rfc_vector_is_what_the_rfc_says() -> None:
    # Guards the constants: they are derived as Appendix B derives them
    assert base64.urlsafe_b64encode(RFC_OCTETS).rstrip(b"=").decode() == RFC_VERIFIER
    assert s256(RFC_VERIFIER) == RFC_CHALLENGE


def test_the_rfc_7636_appendix_b_verifier_matches_its_challenge() -> None:
    assert pkce_matches(RFC_VERIFIER, RFC_CHALLENGE)


def test_another_verifier_does_not_match_the_challenge() -> None:
    other = RFC_VERIFIER[:-1] + ("A" if RFC_VERIFIER[-1] != "A" else "B")

    assert not pkce_matches(other, RFC_CHALLENGE)


def test_the_challenge_with_padding_does_not_match() -> None:
    # The challenge is unpadded base64url (RFC 7636 §4.2); a padded one is another string
    assert not pkce_matches(RFC_VERIFIER, RFC_CHALLENGE + "=")


@pytest.mark.parametrize("length", [43, 128])
def test_verifiers_of_the_boundary_lengths_match(length: int) -> None:
    verifier = (UNRESERVED * 3)[:length]

    assert pkce_matches(verifier, s256(verifier))


@pytest.mark.parametrize("length", [0, 42, 129])
def test_verifiers_of_the_wrong_length_are_refused_even_with_their_own_challenge(
    length: int,
) -> None:
    # Given a verifier outside 43-128 characters, and the challenge that it would hash to
    verifier = ("a" * 200)[:length]

    # Then it does not match: the length is part of the verifier's definition (§4.1)
    assert not pkce_matches(verifier, s256(verifier))


@pytest.mark.parametrize("bad", [" ", "+", "/", "=", "%", "\n", "é"])
def test_verifiers_with_characters_outside_unreserved_are_refused(bad: str) -> None:
    verifier = "a" * 42 + bad
    challenge = s256(verifier) if bad.isascii() else RFC_CHALLENGE

    assert not pkce_matches(verifier, challenge)


def test_a_trailing_newline_does_not_sneak_past_the_length_check() -> None:
    assert not pkce_matches(RFC_VERIFIER + "\n", RFC_CHALLENGE)


def test_the_plain_method_is_not_accepted() -> None:
    # Given a "plain" challenge: the verifier itself (43 characters, so well-formed as S256)
    verifier = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
    assert valid_challenge(verifier)

    # Then presenting the verifier does not match it: only S256 is computed
    assert not pkce_matches(verifier, verifier)


@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
def test_any_well_formed_verifier_matches_its_s256_challenge_only(verifier: str) -> None:
    assert pkce_matches(verifier, s256(verifier))
    assert not pkce_matches(verifier, RFC_CHALLENGE) or verifier == RFC_VERIFIER


# --- valid_challenge ---------------------------------------------------------------------------


def test_an_s256_challenge_is_valid() -> None:
    assert valid_challenge(RFC_CHALLENGE)
    assert valid_challenge(s256("x" * 128))


@pytest.mark.parametrize(
    "challenge",
    [
        "",
        RFC_CHALLENGE[:-1],  # 42 characters
        RFC_CHALLENGE + "A",  # 44
        RFC_CHALLENGE + "=",  # padded
        RFC_CHALLENGE[:-1] + "+",  # base64, not base64url
        RFC_CHALLENGE[:-1] + "/",
        RFC_CHALLENGE[:-1] + ".",  # unreserved, but never in base64url
        RFC_CHALLENGE[:-1] + "~",
        RFC_CHALLENGE + "\n",
        " " + RFC_CHALLENGE[1:],
        RFC_VERIFIER * 2,  # a long plain challenge
    ],
)
def test_a_challenge_that_is_not_32_bytes_of_base64url_is_invalid(challenge: str) -> None:
    assert not valid_challenge(challenge)


# --- granted_scopes ----------------------------------------------------------------------------

ALLOWED = frozenset({"payments:read", "payments:write", "refunds:write"})


@pytest.mark.parametrize("requested", [None, "", "   "])
def test_no_scope_requested_grants_everything_allowed(requested: str | None) -> None:
    assert granted_scopes(requested, ALLOWED) == ALLOWED


def test_a_request_may_narrow_the_scope() -> None:
    assert granted_scopes("payments:read", ALLOWED) == {"payments:read"}
    assert granted_scopes(" payments:write  refunds:write ", ALLOWED) == {
        "payments:write",
        "refunds:write",
    }


def test_asking_for_everything_allowed_by_name_grants_it() -> None:
    assert granted_scopes(" ".join(sorted(ALLOWED)), ALLOWED) == ALLOWED


@pytest.mark.parametrize(
    "requested",
    ["accounts:read", "payments:read accounts:read", "payments:*", "PAYMENTS:READ"],
)
def test_a_request_may_not_widen_the_scope(requested: str) -> None:
    with pytest.raises(OAuthError) as refused:
        granted_scopes(requested, ALLOWED)

    assert refused.value.error == "invalid_scope"
    assert refused.value.status == 400


# --- user_scopes -------------------------------------------------------------------------------


def client_with(scopes: set[str]) -> Client:
    return Client(
        client_id="ppc_1",
        name="Shop",
        secret_hash=None,
        scopes=frozenset(scopes),
        grant_types=frozenset({"authorization_code"}),
        owner="usr_alice",
    )


def test_clients_manage_is_never_delegable_by_a_user() -> None:
    # Given a client that itself holds clients:manage
    client = client_with({"payments:read", "clients:manage"})

    # Then what an account holder can delegate to it leaves clients:manage out
    assert user_scopes(client) == {"payments:read"}
    assert "clients:manage" in CLIENT_ONLY_SCOPES
    # And asking for it on a user's behalf is a widening
    with pytest.raises(OAuthError) as refused:
        granted_scopes("clients:manage", user_scopes(client))
    assert refused.value.error == "invalid_scope"
    # And asking for nothing in particular does not bring it along
    assert "clients:manage" not in granted_scopes(None, user_scopes(client))


def test_user_scopes_are_the_client_scopes_otherwise() -> None:
    client = client_with({"payments:read", "accounts:read"})

    assert user_scopes(client) == client.scopes
