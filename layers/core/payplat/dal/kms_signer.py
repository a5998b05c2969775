"""Signing with the platform's KMS key: the private key never leaves KMS."""

from __future__ import annotations

import threading
from typing import Any

import boto3

from payplat.auth.jwk import public_jwk

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
