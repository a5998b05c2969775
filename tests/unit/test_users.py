"""Account holders: password hashing, sign-up validation, sign-in, and the DynamoDB store.

Hashes made here use a low scrypt cost (n=2**12) wherever the cost itself is not under test,
so the suite stays fast; the defaults run only where they are the point.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from payplat.oauth import users as users_module
from payplat.oauth.dal.users_table import DynamoUserStore
from payplat.oauth.users import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    USER_ID_PREFIX,
    User,
    UserExists,
    authenticate_user,
    create_user,
    hash_password,
    user_id_of,
    username_of,
    verify_password,
)

FAST = 2**12
PASSWORD = "correct horse battery staple"


class MemoryUserStore:
    """The UserStore protocol over a dict."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.gets: list[str] = []

    def get(self, username: str) -> User | None:
        self.gets.append(username)
        return self.users.get(username)

    def put(self, user: User) -> None:
        if user.username in self.users:
            raise UserExists(user.username)
        self.users[user.username] = user


def fast_user(username: str = "alice", password: str = PASSWORD, **fields: str) -> User:
    return User(
        username=username,
        user_id=user_id_of(username),
        display_name=username.capitalize(),
        password_hash=hash_password(password, n=FAST),
        **fields,
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- hash_password / verify_password ----------------------------------------------------------


def test_a_password_verifies_against_its_own_hash() -> None:
    # Given a hash made with the default (production) cost
    encoded = hash_password(PASSWORD)

    # Then the same password verifies and the encoding names the scheme and its parameters
    assert verify_password(PASSWORD, encoded)
    scheme, n, r, p, salt, key = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**15), "8", "3")
    # And salt and key are unpadded base64url of 16 and 32 bytes
    assert "=" not in salt + key
    assert len(base64.urlsafe_b64decode(salt + "==")) == 16
    assert len(base64.urlsafe_b64decode(key + "=")) == 32


def test_a_wrong_password_does_not_verify() -> None:
    encoded = hash_password(PASSWORD, n=FAST)
    assert not verify_password(PASSWORD + "!", encoded)
    assert not verify_password("", encoded)
    assert not verify_password(PASSWORD.upper(), encoded)


def test_hashes_are_salted() -> None:
    # Given the same password hashed twice
    first, second = hash_password(PASSWORD, n=FAST), hash_password(PASSWORD, n=FAST)

    # Then the hashes differ (a fresh salt each time) and both verify
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)


def test_the_encoding_carries_its_parameters() -> None:
    # Given a hash made with another cost than the default
    encoded = hash_password(PASSWORD, n=2**14, r=4, p=2)
    assert encoded.startswith(f"scrypt${2**14}$4$2$")

    # Then it still verifies: the cost is read from the hash, not assumed
    assert verify_password(PASSWORD, encoded)


def test_the_same_password_typed_composed_or_decomposed_verifies() -> None:
    # Given a password with an accent, stored as typed on one keyboard (é as one code point)
    encoded = hash_password("caf\u00e9 au lait tous les jours", n=FAST)

    # Then the same password typed as e + combining accent still matches
    assert verify_password("cafe\u0301 au lait tous les jours", encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "scrypt",
        "sha256$abc",
        "scrypt$4096$8$1$c2FsdA",  # no key
        "scrypt$4096$8$1$c2FsdA$a2V5$extra",
        "bcrypt$4096$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + b64(bytes(32)),
        "scrypt$x$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + b64(bytes(32)),
        "scrypt$4096$8$1$not*base64$" + b64(bytes(32)),
        "scrypt$4096$8$1$A$" + b64(bytes(32)),  # one base64 character is never whole bytes
        "scrypt$4096$8$1$$" + b64(bytes(32)),  # empty salt
        "scrypt$4096$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + b64(bytes(31)),  # short key
        "scrypt$4096$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + b64(bytes(32)) + "\n",
        " scrypt$4096$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + b64(bytes(32)),
        "scrypt$4_096$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + b64(bytes(32)),  # int() would take it
        "scrypt$-4096$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + b64(bytes(32)),
        "scrypt$4096$8$1$" + b64(bytes(65)) + "$" + b64(bytes(32)),  # salt over 64 bytes
    ],
)
def test_a_malformed_encoding_is_false_not_an_error(encoded: str) -> None:
    assert verify_password(PASSWORD, encoded) is False


@pytest.mark.parametrize(
    ("n", "r", "p"),
    [
        (2**21, 8, 1),  # N over 2**20: gigabytes a sign-in
        (2**14, 17, 1),  # r over 16
        (2**14, 8, 5),  # p over 4
        (4095, 8, 1),  # N not a power of two
        (1, 8, 1),
        (0, 8, 1),
        (2**14, 0, 1),
        (2**14, 8, 0),
        (2**64, 8, 1),
    ],
)
def test_absurd_parameters_in_a_stored_hash_are_refused(n: int, r: int, p: int) -> None:
    # Given a hash whose salt and key are well-formed but whose cost is out of bounds
    valid = hash_password(PASSWORD, n=FAST).split("$")
    encoded = "$".join(["scrypt", str(n), str(r), str(p), valid[4], valid[5]])

    # Then it is refused without running scrypt at that cost
    assert verify_password(PASSWORD, encoded) is False


def test_hash_password_refuses_parameters_verify_would_refuse() -> None:
    with pytest.raises(ValueError, match="out of range"):
        hash_password(PASSWORD, n=2**21)


def test_an_over_long_password_is_false_not_hashed() -> None:
    # Given a password one character over the limit, whose first MAX characters are stored
    long_password = "x" * (MAX_PASSWORD_CHARS + 1)
    at_limit = hash_password("x" * MAX_PASSWORD_CHARS, n=FAST)
    assert verify_password("x" * MAX_PASSWORD_CHARS, at_limit)

    # Then it is refused outright, both when verifying and when hashing
    assert verify_password(long_password, at_limit) is False
    with pytest.raises(ValueError, match="longer than"):
        hash_password(long_password, n=FAST)


# --- create_user -----------------------------------------------------------------------------


def test_create_user_stores_a_user_with_a_hashed_password() -> None:
    store = MemoryUserStore()

    user = create_user(store, "alice", PASSWORD)

    assert store.users["alice"] == user
    assert user.user_id == "usr_alice"
    assert user.display_name == "Alice"
    assert user.active and user.status == "active"
    assert user.created_at
    assert PASSWORD not in user.password_hash
    assert verify_password(PASSWORD, user.password_hash)


def test_create_user_keeps_a_given_display_name() -> None:
    user = create_user(MemoryUserStore(), "bob_shop", PASSWORD, display_name="Bob's Bikes")
    assert user.display_name == "Bob's Bikes"


@pytest.mark.parametrize(
    "username",
    [
        "",
        "al",
        "Alice",
        "1alice",
        "_alice",
        "alice-smith",
        "alice smith",
        "alice\n",
        "a" * 33,
        "\u00e9lise",
        "al\u0131ce",
    ],
)
def test_create_user_refuses_a_malformed_username(username: str) -> None:
    store = MemoryUserStore()
    with pytest.raises(ValueError, match="username must be"):
        create_user(store, username, PASSWORD)
    assert store.users == {}


def test_create_user_accepts_usernames_at_the_bounds() -> None:
    store = MemoryUserStore()
    for username in ("abc", "a" * 32, "a_1"):
        create_user(store, username, PASSWORD)
    assert set(store.users) == {"abc", "a" * 32, "a_1"}


def test_create_user_refuses_a_short_or_over_long_password() -> None:
    store = MemoryUserStore()
    with pytest.raises(ValueError, match=f"at least {MIN_PASSWORD_CHARS}"):
        create_user(store, "alice", "x" * (MIN_PASSWORD_CHARS - 1))
    with pytest.raises(ValueError, match=f"at most {MAX_PASSWORD_CHARS}"):
        create_user(store, "alice", "x" * (MAX_PASSWORD_CHARS + 1))
    assert store.users == {}


def test_create_user_refuses_a_taken_username() -> None:
    store = MemoryUserStore()
    first = create_user(store, "alice", PASSWORD)
    with pytest.raises(UserExists):
        create_user(store, "alice", "another long password")
    assert store.users["alice"] == first


# --- authenticate_user -----------------------------------------------------------------------


def test_the_right_password_signs_the_user_in() -> None:
    store = MemoryUserStore()
    store.put(fast_user("alice"))

    assert authenticate_user(store, "alice", PASSWORD) == store.users["alice"]


def test_username_case_and_surrounding_spaces_are_ignored() -> None:
    # Given a user, and a phone keyboard that capitalised the name and added a space
    store = MemoryUserStore()
    store.put(fast_user("alice"))

    # Then it is still alice
    assert authenticate_user(store, " Alice ", PASSWORD) == store.users["alice"]


def test_a_wrong_password_signs_no_one_in() -> None:
    store = MemoryUserStore()
    store.put(fast_user("alice"))

    assert authenticate_user(store, "alice", PASSWORD + "?") is None
    assert authenticate_user(store, "alice", "") is None


def test_a_disabled_user_cannot_sign_in_even_with_the_right_password() -> None:
    store = MemoryUserStore()
    store.put(fast_user("alice", status="disabled"))

    assert authenticate_user(store, "alice", PASSWORD) is None


def test_an_unknown_user_is_none_after_the_same_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store without "mallory", and a record of every hash verified
    verified: list[str] = []
    real_verify = users_module.verify_password

    def spy(password: str, encoded: str) -> bool:
        verified.append(encoded)
        return real_verify(password, encoded)

    monkeypatch.setattr(users_module, "verify_password", spy)
    store = MemoryUserStore()

    # When an unknown but well-formed name and a malformed one try to sign in
    assert authenticate_user(store, "mallory", PASSWORD) is None
    assert authenticate_user(store, "<script>", PASSWORD) is None

    # Then a hash at the default cost was still verified each time
    assert len(verified) == 2
    assert all(encoded.startswith(f"scrypt${2**15}$8$3$") for encoded in verified)
    # And only the well-formed name was looked up
    assert store.gets == ["mallory"]


# --- user ids --------------------------------------------------------------------------------


def test_user_id_and_username_are_inverses() -> None:
    assert user_id_of("alice") == USER_ID_PREFIX + "alice"
    assert username_of(user_id_of("alice")) == "alice"


@pytest.mark.parametrize("user_id", ["alice", "ppc_alice", "usr_", "usr_A", "USR_alice", ""])
def test_username_of_something_that_is_not_a_user_id_is_none(user_id: str) -> None:
    assert username_of(user_id) is None


# --- DynamoUserStore -------------------------------------------------------------------------


@pytest.fixture
def dynamo_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoUserStore]:
    # Given a users table (partition key `username`) in moto
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="eu-west-1")
        resource.create_table(
            TableName="users",
            KeySchema=[{"AttributeName": "username", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "username", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoUserStore("users", resource)


def test_dynamo_store_round_trips_a_user(dynamo_store: DynamoUserStore) -> None:
    user = fast_user("alice")
    dynamo_store.put(user)

    assert dynamo_store.get("alice") == user
    assert dynamo_store.get("bob") is None


def test_dynamo_store_refuses_a_taken_username(dynamo_store: DynamoUserStore) -> None:
    # Given alice is stored
    original = fast_user("alice")
    dynamo_store.put(original)

    # When someone else signs up as alice
    with pytest.raises(UserExists):
        dynamo_store.put(replace(original, display_name="Impostor", password_hash="x"))

    # Then the first alice is untouched
    assert dynamo_store.get("alice") == original


def test_dynamo_store_lists_every_user(dynamo_store: DynamoUserStore) -> None:
    users = [fast_user("alice"), fast_user("bob", status="disabled")]
    for user in users:
        dynamo_store.put(user)

    listed = sorted(dynamo_store.list(), key=lambda user: user.username)

    assert listed == users
    assert listed[1].active is False


def test_dynamo_store_works_with_create_and_authenticate(dynamo_store: DynamoUserStore) -> None:
    created = create_user(dynamo_store, "carol", PASSWORD)

    assert authenticate_user(dynamo_store, "carol", PASSWORD) == created
    assert authenticate_user(dynamo_store, "carol", "wrong password!") is None
