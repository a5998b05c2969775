"""Account holders (consumers and merchants) who sign in at the OAuth authorize page.

Unlike client secrets, passwords are chosen by people and can be guessed from a dictionary,
so they are stored with a slow, memory-hard hash (scrypt) rather than a plain SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

USER_ID_PREFIX = "usr_"
USERNAME = re.compile(r"^[a-z][a-z0-9_]{2,31}\Z")
MIN_PASSWORD_CHARS = 12
# Bounded: how much work a sign-in costs must not be up to whoever sends the form.
MAX_PASSWORD_CHARS = 1024

# scrypt (RFC 7914) is memory-hard, so guessing on GPUs/ASICs costs memory as well as time,
# and it is in the standard library (hashlib over OpenSSL): no native dependency to build for
# Lambda. N=2**15, r=8, p=3 is one of OWASP's equivalent minimums (Password Storage Cheat
# Sheet): 128*r*N = 32 MiB at a time and about 0.25 s of a core a sign-in, affordable in the
# 512 MiB oauth function (the p lanes run one after another), costly to guess at scale.
# The parameters travel with every hash, so they can be raised later without invalidating
# the hashes already stored.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 3
SALT_BYTES = 16
KEY_BYTES = 32
# Refused in a stored hash: whoever can write one must not make a sign-in take gigabytes.
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 16
MAX_SCRYPT_P = 4
MAX_SALT_BYTES = 64
_SCHEME = "scrypt"
# Digits bounded so int() stays cheap; the bounds proper are checked after parsing.
_ENCODED = re.compile(
    r"scrypt\$(?P<n>[1-9][0-9]{0,9})\$(?P<r>[1-9][0-9]{0,3})\$(?P<p>[1-9][0-9]{0,3})"
    r"\$(?P<salt>[A-Za-z0-9_-]+)\$(?P<key>[A-Za-z0-9_-]+)"
)


@dataclass(frozen=True, slots=True)
class User:
    username: str
    user_id: str
    display_name: str
    password_hash: str
    status: str = "active"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def active(self) -> bool:
        return self.status == "active"


class UserExists(ValueError):
    """The username is already taken."""


class UserStore(Protocol):
    def get(self, username: str) -> User | None: ...

    def put(self, user: User) -> None:
        """Store a new user; raises UserExists if the username is taken."""
        ...


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """`scrypt$<n>$<r>$<p>$<salt>$<hash>`, salt and hash base64url without padding."""
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password longer than {MAX_PASSWORD_CHARS} characters")
    if not _acceptable(n, r, p):
        raise ValueError(f"scrypt parameters out of range: n={n}, r={r}, p={p}")
    salt = secrets.token_bytes(SALT_BYTES)
    return _encode(n, r, p, salt, _scrypt(password, salt, n, r, p))


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches `encoded`; False, never an exception, for anything else."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    match = _ENCODED.fullmatch(encoded)
    if match is None:
        return False
    n, r, p = (int(group) for group in match.group("n", "r", "p"))
    try:
        salt, expected = _b64decode(match["salt"]), _b64decode(match["key"])
    except ValueError:  # binascii.Error is a ValueError
        return False
    if not (
        _acceptable(n, r, p) and 0 < len(salt) <= MAX_SALT_BYTES and len(expected) == KEY_BYTES
    ):
        return False
    try:
        actual = _scrypt(password, salt, n, r, p)
    except (ValueError, MemoryError):  # OpenSSL refused the parameters
        return False
    return hmac.compare_digest(actual, expected)


def _acceptable(n: int, r: int, p: int) -> bool:
    power_of_two = n > 1 and n & (n - 1) == 0
    return power_of_two and n <= MAX_SCRYPT_N and 1 <= r <= MAX_SCRYPT_R and 1 <= p <= MAX_SCRYPT_P


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # NFKC (as NIST SP 800-63B advises) so the same password typed on another keyboard, with
    # composed or decomposed accents, still matches.
    secret = unicodedata.normalize("NFKC", password).encode("utf-8")
    # What OpenSSL allocates: 128*r*(N+2) for V plus 128*r*p for B. (Twice 128*r*N would
    # pass CPython's 2 GiB maxmem ceiling at N=2**20 and fall short for a tiny N.)
    maxmem = 128 * r * (n + p + 2)
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=KEY_BYTES)


def _encode(n: int, r: int, p: int, salt: bytes, key: bytes) -> str:
    return f"{_SCHEME}${n}${r}${p}${_b64encode(salt)}${_b64encode(key)}"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def create_user(
    store: UserStore, username: str, password: str, display_name: str | None = None
) -> User:
    """Validate and store a new user; raises ValueError (UserExists if the name is taken)."""
    if not USERNAME.match(username):
        raise ValueError(
            "username must be 3 to 32 characters: a lowercase letter, then lowercase letters,"
            " digits or underscores"
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password must be at most {MAX_PASSWORD_CHARS} characters")
    user = User(
        username=username,
        user_id=user_id_of(username),
        display_name=(display_name or "").strip() or username.capitalize(),
        password_hash=hash_password(password),
    )
    store.put(user)
    return user


# Verified against when the username is unknown or malformed, so the time a failed sign-in
# takes does not tell which usernames exist. Random salt and key with the default
# parameters: as costly to check as a real hash, no password matches it, and no scrypt
# runs at import (a cold start).
_DUMMY_HASH = _encode(
    SCRYPT_N, SCRYPT_R, SCRYPT_P, secrets.token_bytes(SALT_BYTES), secrets.token_bytes(KEY_BYTES)
)


def authenticate_user(store: UserStore, username: str, password: str) -> User | None:
    """The user if the password is right and the account active; None otherwise."""
    # Usernames are lowercase, so case and stray spaces (mobile keyboards) cannot mean another.
    username = username.strip().lower()
    user = store.get(username) if USERNAME.match(username) else None
    matches = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not matches or not user.active:
        return None
    return user


def user_id_of(username: str) -> str:
    return USER_ID_PREFIX + username


def username_of(user_id: str) -> str | None:
    """The username in `user_id`; None if it is not a user id."""
    if not user_id.startswith(USER_ID_PREFIX):
        return None
    username = user_id.removeprefix(USER_ID_PREFIX)
    return username if USERNAME.match(username) else None
