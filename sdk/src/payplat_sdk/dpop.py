"""DPoP (RFC 9449): sender-constrained tokens. A client holding a DPoP key signs a fresh
proof JWT for every HTTP request; the authorization server binds the tokens it issues to that
key (`cnf.jkt`), and the API serves a bound token only with a proof signed by the same key —
so a copied access token is useless without the private key.

```python
from payplat_sdk import Payplat

client = Payplat(base_url, client_id, client_secret, dpop_key=True)  # a P-256 key of its own
```

`dpop_key` takes a `cryptography` EC P-256 private key (ES256), an RSA private key of 2048 bits
or more (PS256), a `DpopKey`, or `True` to generate a P-256 key for the client's lifetime.

The key also remembers the latest `DPoP-Nonce` (RFC 9449 §8-9) each server sent, and puts it
in the proofs it signs for that server afterwards. Each proof carries a new `jti` and is used
once. Neither a proof nor the private key appears in a repr, a log line or an exception.

Signing needs the `cryptography` package, imported only when a DpopKey is made: the SDK
itself still depends on `requests` alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

__all__ = [
    "AUTHORIZATION_SERVER",
    "NONCE_HEADER",
    "PROOF_HEADER",
    "RESOURCE_SERVER",
    "DpopKey",
    "access_token_hash",
    "asks_for_nonce",
    "dpop_key_of",
    "header_value",
    "htu_of",
]

PROOF_HEADER = "DPoP"
NONCE_HEADER = "DPoP-Nonce"
# Which server a nonce came from: the token endpoint's and the API's nonces are kept apart.
Role = Literal["authorization", "resource"]
AUTHORIZATION_SERVER: Role = "authorization"
RESOURCE_SERVER: Role = "resource"

MIN_RSA_BITS = 2048
_P256_BYTES = 32
_USE_DPOP_NONCE = re.compile(r'error\s*=\s*"?use_dpop_nonce"?', re.IGNORECASE)
_DPOP_SCHEME = re.compile(r"(?:^|,)\s*DPoP(?:\s|$|,)", re.IGNORECASE)
_KEY_TYPES = "dpop_key must be a cryptography EC P-256 or RSA private key, a DpopKey or True"


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "DPoP in payplat_sdk needs the cryptography package: pip install 'payplat-sdk[dpop]'"
        ) from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or max(1, (value.bit_length() + 7) // 8), "big")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def access_token_hash(access_token: str) -> str:
    """`ath`: base64url(SHA-256(the access token's ASCII)), no padding."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def htu_of(url: str) -> str:
    """The `htu` of a request to `url`: the URL without its query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def asks_for_nonce(status: int, headers: Mapping[str, str], body: Any) -> bool:
    """True when an answer asks to retry with a server-provided nonce (RFC 9449 §8, §9): a
    token endpoint's 400 `use_dpop_nonce`, or an API's 401 with a `DPoP` challenge saying
    `error="use_dpop_nonce"`, each with the `DPoP-Nonce` to use."""
    if not header_value(headers, NONCE_HEADER):
        return False
    if status == 400:
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    if status == 401:
        challenge = header_value(headers, "WWW-Authenticate") or ""
        return bool(_DPOP_SCHEME.search(challenge) and _USE_DPOP_NONCE.search(challenge))
    return False


class DpopKey:
    """A DPoP key pair: signs proofs (ES256 with a P-256 key, PS256 with an RSA key) and
    remembers the latest nonce each server sent. Safe to share across threads and clients.
    The repr shows the algorithm and the key's thumbprint (public), never the private key."""

    def __init__(self, private_key: PrivateKey) -> None:
        _require_cryptography()
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            if not isinstance(private_key.curve, ec.SECP256R1):
                raise ValueError("a DPoP EC key must be on P-256 (ES256)")
            numbers = private_key.public_key().public_numbers()
            self.alg = "ES256"
            self.public_jwk: dict[str, str] = {
                "kty": "EC",
                "crv": "P-256",
                "x": _b64url(_int_bytes(numbers.x, _P256_BYTES)),
                "y": _b64url(_int_bytes(numbers.y, _P256_BYTES)),
            }
        elif isinstance(private_key, rsa.RSAPrivateKey):
            if private_key.key_size < MIN_RSA_BITS:
                raise ValueError(f"a DPoP RSA key needs at least {MIN_RSA_BITS} bits (PS256)")
            rsa_numbers = private_key.public_key().public_numbers()
            self.alg = "PS256"
            self.public_jwk = {
                "kty": "RSA",
                "n": _b64url(_int_bytes(rsa_numbers.n)),
                "e": _b64url(_int_bytes(rsa_numbers.e)),
            }
        else:
            raise TypeError(_KEY_TYPES)
        self._key: PrivateKey = private_key
        self._nonces: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @classmethod
    def generate(cls) -> DpopKey:
        """A new EC P-256 key (ES256), held in memory only."""
        _require_cryptography()
        from cryptography.hazmat.primitives.asymmetric import ec

        return cls(ec.generate_private_key(ec.SECP256R1()))

    def __repr__(self) -> str:
        return f"DpopKey(alg={self.alg!r}, thumbprint={self.thumbprint!r})"

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 JWK SHA-256 thumbprint: the `cnf.jkt` of the tokens bound to it."""
        required = ("crv", "kty", "x", "y") if self.public_jwk["kty"] == "EC" else ("e", "kty", "n")
        canonical = {name: self.public_jwk[name] for name in required}
        return _b64url(hashlib.sha256(_json(canonical)).digest())

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        now: float | None = None,
    ) -> str:
        """A new DPoP proof JWT for one request (`htm` = method, `htu` = url without query
        and fragment, a fresh `jti`; `ath` when an access token goes with it). Single use."""
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": method.upper(),
            "htu": htu_of(url),
            "iat": int(time.time() if now is None else now),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}".encode("ascii")
        return f"{signing_input.decode('ascii')}.{_b64url(self._sign(signing_input))}"

    def proof_for(
        self, role: Role, method: str, url: str, *, access_token: str | None = None
    ) -> str:
        """A proof for a request to the `role` server at `url`, with the nonce it last sent."""
        return self.proof(method, url, access_token=access_token, nonce=self.nonce(role, url))

    def nonce(self, role: Role, url: str) -> str | None:
        with self._lock:
            return self._nonces.get((role, _origin(url)))

    def observe(self, role: Role, url: str, headers: Mapping[str, str]) -> None:
        """Remember the `DPoP-Nonce` an answer from the `role` server at `url` carries."""
        nonce = header_value(headers, NONCE_HEADER)
        if nonce:
            with self._lock:
                self._nonces[(role, _origin(url))] = nonce

    def _sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
            return _int_bytes(r, _P256_BYTES) + _int_bytes(s, _P256_BYTES)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return self._key.sign(data, pss, hashes.SHA256())


def dpop_key_of(value: object) -> DpopKey | None:
    """The `dpop_key=` option as a DpopKey: None or False for none, True for a new P-256 key,
    a DpopKey as is, or a cryptography private key."""
    if value is None or value is False:
        return None
    if value is True:
        return DpopKey.generate()
    if isinstance(value, DpopKey):
        return value
    _require_cryptography()
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(value, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return DpopKey(value)
    raise TypeError(_KEY_TYPES)
