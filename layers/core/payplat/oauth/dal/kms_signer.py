"""Signing with the platform's KMS key: the private key never leaves KMS."""

from __future__ import annotations

import threading
from typing import Any

import boto3

from payplat.oauth.jwk import public_jwk

# KMS signs RAW messages up to 4096 bytes and hashes them itself; a JWT's signing input is
# far below that, and RAW behaves the same in KMS and in moto.
_MAX_RAW_MESSAGE_BYTES = 4096


class KmsSigner:
    def __init__(self, key_id: str, client: Any | None = None) -> None:
        self._key_id = key_id
        self._client = client or boto3.client("kms")
        self._public_key_der: bytes | None = None
        self._kid: str | None = None
        self._lock = threading.Lock()

    def public_key_der(self) -> bytes:
        if self._public_key_der is None:
            with self._lock:
                if self._public_key_der is None:
                    response = self._client.get_public_key(KeyId=self._key_id)
                    self._public_key_der = bytes(response["PublicKey"])
        return self._public_key_der

    @property
    def kid(self) -> str:
        if self._kid is None:
            self._kid = public_jwk(self.public_key_der())["kid"]
        return self._kid

    def sign_der(self, message: bytes) -> bytes:
        if len(message) > _MAX_RAW_MESSAGE_BYTES:
            raise ValueError("message too large for a KMS RAW signature")
        response = self._client.sign(
            KeyId=self._key_id,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )
        return bytes(response["Signature"])


# The tag that lets the oauth function sign with keys created after deployment (its IAM
# policy is conditioned on it), written by `payplat keys rotate`.
PURPOSE_TAG = ("payplat:purpose", "token-signing")


class KmsKeys:
    """Creates signing keys and names them by kid (public halves cached: they never change)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or boto3.client("kms")
        self._signers: dict[str, KmsSigner] = {}

    def signer(self, key_id: str) -> KmsSigner:
        if key_id not in self._signers:
            self._signers[key_id] = KmsSigner(key_id, self._client)
        return self._signers[key_id]

    def kid(self, key_id: str) -> str:
        return self.signer(key_id).kid

    def create_key(self) -> str:
        key_id: str = self._client.create_key(
            KeySpec="ECC_NIST_P256",
            KeyUsage="SIGN_VERIFY",
            Description="payplat access-token signing key (ES256, RFC 9068 JWTs), rotated",
            Tags=[{"TagKey": PURPOSE_TAG[0], "TagValue": PURPOSE_TAG[1]}],
        )["KeyMetadata"]["Arn"]
        return key_id
