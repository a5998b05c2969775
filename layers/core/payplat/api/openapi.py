"""The OpenAPI 3.1 document: every route of the route table, described from a table keyed by
route name, with the request models, the objects each route answers, and every status it can
really answer — its own, the gateway's (401/403 before the function runs) and the edge's (413
from the WAF, 429 from the WAF's rate rule or stage throttling, 403 from a managed rule). It is
the API's inventory (OWASP API9) and what the contract test holds the live platform to.

Only the routes in ROUTES are emitted: a route described here but not (yet) in the table is
left out, and a route in the table without a description gets a bare operation (a unit test
makes sure none is left without one)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import MISSING, BaseModel

from payplat.clients.registry import AUTH_METHODS, GRANT_TYPES
from payplat.pagination import DEFAULT_LIMIT, MAX_LIMIT
from payplat.payments import models as payments_models
from payplat.payments.idempotency import MAX_IDEMPOTENCY_KEY
from payplat.payments.models import Shape
from payplat.payments.money import EXPONENTS
from payplat.payments.requests import (
    ID_PATTERN,
    MAX_METADATA_KEY,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE,
    CancelPayment,
    CapturePayment,
    CreatePayment,
    CreateRefund,
)
from payplat.routes import ROUTES, SCOPES, Function, Route
from payplat.webhooks import models as webhooks_models
from payplat.webhooks.endpoints import CreateWebhookEndpoint, RedeliverEvent, RollWebhookSecret
from payplat.webhooks.objects import EVENT_TYPES

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HTML = "text/html"
# Scopes no account holder can delegate (payplat.oauth.CLIENT_ONLY_SCOPES): only a client's
# own registration grants them, so the authorization-code flow does not offer them.
_CLIENT_ONLY_SCOPES = frozenset({"clients:manage"})
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "create_payment": CreatePayment,
    "capture_payment": CapturePayment,
    "cancel_payment": CancelPayment,
    "create_refund": CreateRefund,
    "create_webhook_endpoint": CreateWebhookEndpoint,
    "roll_webhook_endpoint_secret": RollWebhookSecret,
    "redeliver_event": RedeliverEvent,
}
# The objects the routes answer, by schema name; the examples below go with them.
RESPONSE_MODELS: tuple[type[Shape], ...] = (
    *payments_models.RESPONSE_MODELS,
    *webhooks_models.RESPONSE_MODELS,
    webhooks_models.EventData,
)


_REF_TEMPLATE = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# -- examples -----------------------------------------------------------------------------------

_PAYMENT_ID = "pay_0193f2a1b2c3d4e5f60718293a4b5c6d7e8f"
_ACCOUNT_EXAMPLE = {
    "id": "acct_alice_eur",
    "object": "account",
    "currency": "EUR",
    "balances": [{"currency": "EUR", "available": 248000, "held": 0}],
    "created": 1767225600,
}
_PAYMENT_EXAMPLE = {
    "id": _PAYMENT_ID,
    "object": "payment",
    "amount": 5000,
    "currency": "EUR",
    "status": "requires_capture",
    "capture_method": "manual",
    "source_account": "acct_alice_eur",
    "destination_account": "acct_bob_eur",
    "amount_captured": 0,
    "amount_refunded": 0,
    "description": "Order 42",
    "metadata": {"order_id": "42"},
    "created": 1767225600,
    "capture_before": 1767830400,
}
_REFUND_EXAMPLE = {
    "id": "re_0193f2a1c0ffee00112233445566778899aa",
    "object": "refund",
    "payment": _PAYMENT_ID,
    "amount": 1000,
    "currency": "EUR",
    "status": "succeeded",
    "reason": "requested_by_customer",
    "metadata": {},
    "created": 1767229200,
}
_ENTRY_EXAMPLE = {
    "id": "ent_0193f2a1b2c3aa00112233445566778899bb",
    "object": "ledger_entry",
    "account": "acct_alice_eur",
    "bucket": "held",
    "amount": 5000,
    "currency": "EUR",
    "payment": _PAYMENT_ID,
    "kind": "authorization",
    "created": 1767225600,
}
_WEBHOOK_ENDPOINT_EXAMPLE = {
    "id": "we_0193f2a1b2c3d4e5f60718293a4b5c6d7e8f",
    "object": "webhook_endpoint",
    "url": "https://partner.example/payplat/webhooks",
    "enabled_events": ["payment.succeeded", "refund.created"],
    "description": "Order fulfilment",
    "status": "enabled",
    "created": 1767225600,
}
_EVENT_EXAMPLE = {
    "id": "evt_0193f2a1b2c3d4e5f60718293a4b5c6d7e8f",
    "object": "event",
    "type": "payment.succeeded",
    "created": 1767225600,
    "data": {
        "object": {
            **{k: v for k, v in _PAYMENT_EXAMPLE.items() if k != "capture_before"},
            "status": "succeeded",
            "amount_captured": 5000,
        }
    },
    "pending_webhooks": 0,
}


def _list_example(url: str, item: Mapping[str, Any]) -> dict[str, Any]:
    return {"object": "list", "url": url, "data": [dict(item)], "has_more": False}


# -- schemas ------------------------------------------------------------------------------------

_METADATA = {
    "type": "object",
    "description": "Your own key-value pairs, returned as given.",
    "maxProperties": MAX_METADATA_KEYS,
    "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY},
    "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE},
}
_TIMESTAMP = {"type": "integer", "description": "Unix time, seconds."}
_AMOUNT = {"type": "integer", "description": "Minor units of the currency (5000 is 50.00 EUR)."}
_CURRENCY = {
    "type": "string",
    "enum": sorted(EXPONENTS),
    "description": "ISO 4217, upper case.",
}


_ERROR = {
    "type": "object",
    "description": "What every resource route (and the gateway and the edge) answers on error.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "invalid_request_error",
                        "authentication_error",
                        "permission_error",
                        "rate_limit_error",
                        "payment_error",
                        "idempotency_error",
                        "api_error",
                    ],
                },
                "code": {
                    "type": "string",
                    "description": "Machine-readable: parameter_invalid, resource_missing, "
                    "insufficient_funds, idempotency_key_reused, rate_limited, …",
                },
                "message": {"type": "string", "description": "For a developer, not an end user."},
                "param": {
                    "type": ["string", "null"],
                    "description": "The parameter at fault, if one is.",
                },
                "request_id": {
                    "type": ["string", "null"],
                    "description": "API Gateway's request id (also in x-amzn-RequestId); "
                    "null when the WAF answered.",
                },
                "payment": {
                    **_ref("Payment"),
                    "description": "402 only: the failed payment, as recorded.",
                },
            },
        }
    },
    "examples": [
        {
            "error": {
                "type": "invalid_request_error",
                "code": "parameter_invalid",
                "message": "Invalid amount: amount is an integer in minor units: "
                "1050 is 10.50 EUR.",
                "param": "amount",
                "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            }
        }
    ],
}
_OAUTH_ERROR = {
    "type": "object",
    "description": "RFC 6749 §5.2 (and RFC 7591 §3.2.2 for registration).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "description": "invalid_request, invalid_client, invalid_grant, "
            "unauthorized_client, unsupported_grant_type, invalid_scope, "
            "unsupported_token_type, invalid_client_metadata, invalid_redirect_uri, "
            "invalid_token, insufficient_scope, rate_limited, temporarily_unavailable, …",
        },
        "error_description": {"type": "string"},
    },
    "examples": [{"error": "invalid_client", "error_description": "Client authentication failed."}],
}


def _object(
    required: list[str], properties: dict[str, Any], example: Any = None, **extra: Any
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "required": required, "properties": properties}
    schema.update(extra)
    if example is not None:
        schema["examples"] = [example]
    return schema


def _list_of(item: str, example: Mapping[str, Any], url: str) -> dict[str, Any]:
    return _object(
        ["object", "url", "data", "has_more"],
        {
            "object": {"const": "list"},
            "url": {"type": "string"},
            "data": {"type": "array", "items": _ref(item)},
            "has_more": {
                "type": "boolean",
                "description": "More objects past this page: pass the last id as starting_after.",
            },
        },
        _list_example(url, example),
    )


_REGISTRATION_PROPERTIES: dict[str, Any] = {
    "client_name": {"type": "string", "minLength": 1, "maxLength": 100},
    "owner": {
        "type": "string",
        "pattern": "^usr_",
        "description": "The account holder (user id) whose money the client moves.",
    },
    "grant_types": {
        "type": "array",
        "items": {"type": "string", "enum": list(GRANT_TYPES)},
        "default": ["authorization_code"],
        "description": "password and implicit are legacy (RFC 9700): granted only when "
        "registered explicitly, and audited.",
    },
    "response_types": {
        "type": "array",
        "items": {"type": "string", "enum": ["code", "token"]},
        "description": "If given, must match grant_types.",
    },
    "redirect_uris": {
        "type": "array",
        "maxItems": 10,
        "items": {"type": "string", "format": "uri", "maxLength": 2000},
        "description": "https (plain http to the loopback address only on the local "
        "platform); required for authorization_code and implicit.",
    },
    "scope": {
        "type": "string",
        "default": "payments:read",
        "description": "Space-separated; clients:manage cannot be registered.",
    },
    "token_endpoint_auth_method": {
        "type": "string",
        "enum": list(AUTH_METHODS),
        "default": "client_secret_basic",
    },
    "jwks": {
        "type": "object",
        "description": "private_key_jwt only: 1-5 public keys, inline (jwks_uri is refused).",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
    },
    "plan": {"type": "string", "default": "standard", "description": "A plan in force."},
    "require_pushed_authorization_requests": {
        "type": "boolean",
        "default": False,
        "description": "RFC 9126 §6: the authorize page accepts this client's requests only "
        "pushed to /oauth/par first. An update may turn it on, never off (left out, it stays).",
    },
    "dpop_bound_access_tokens": {
        "type": "boolean",
        "default": False,
        "description": "RFC 9449 §5.2: token requests without a DPoP proof are refused "
        "(invalid_dpop_proof). An update may turn it on, never off (left out, it stays).",
    },
}
_REGISTRATION_EXAMPLE = {
    "client_name": "Bob's bookkeeping",
    "owner": "usr_bob",
    "grant_types": ["client_credentials", "authorization_code", "refresh_token"],
    "redirect_uris": ["https://books.example/callback"],
    "scope": "accounts:read payments:read",
}
_REGISTRATION_RESPONSE: dict[str, Any] = {
    "client_id": {"type": "string"},
    "client_id_issued_at": _TIMESTAMP,
    "client_name": {"type": "string"},
    "grant_types": {"type": "array", "items": {"type": "string"}},
    "response_types": {"type": "array", "items": {"type": "string"}},
    "redirect_uris": {"type": "array", "items": {"type": "string"}},
    "scope": {"type": "string"},
    "token_endpoint_auth_method": {"type": "string"},
    "plan": {"type": "string"},
    "owner": {"type": "string"},
    "registration_client_uri": {
        "type": "string",
        "description": "Where to read, update or delete this registration (RFC 7592).",
    },
    "jwks": {"type": "object"},
    "require_pushed_authorization_requests": {"type": "boolean"},
    "dpop_bound_access_tokens": {"type": "boolean"},
    "previous_secret_expires_at": {
        **_TIMESTAMP,
        "description": "Until when the secret before the last rotation keeps working.",
    },
}
_REGISTRATION_REQUIRED = [
    "client_id",
    "client_id_issued_at",
    "client_name",
    "grant_types",
    "response_types",
    "redirect_uris",
    "scope",
    "token_endpoint_auth_method",
    "plan",
    "owner",
]
_REGISTERED_EXAMPLE = {
    "client_id": "ppc_5f0c3e1d2a9b8c7d6e5f4a3b",
    "client_id_issued_at": 1767225600,
    "client_name": "Bob's bookkeeping",
    "grant_types": ["authorization_code", "client_credentials", "refresh_token"],
    "response_types": ["code"],
    "redirect_uris": ["https://books.example/callback"],
    "scope": "accounts:read payments:read",
    "token_endpoint_auth_method": "client_secret_basic",
    "plan": "standard",
    "owner": "usr_bob",
    "registration_client_uri": "https://api.example/oauth/register/ppc_5f0c3e1d2a9b8c7d6e5f4a3b",
}


@functools.cache
def _schemas() -> dict[str, Any]:
    """Built once per process (the pydantic models' schemas among them); callers copy."""
    schemas: dict[str, Any] = {
        "Error": _ERROR,
        "OAuthError": _OAUTH_ERROR,
        "AccountList": _list_of("Account", _ACCOUNT_EXAMPLE, "/v1/accounts"),
        "LedgerEntryList": _list_of(
            "LedgerEntry", _ENTRY_EXAMPLE, "/v1/accounts/acct_alice_eur/transactions"
        ),
        "PaymentList": _list_of("Payment", _PAYMENT_EXAMPLE, "/v1/payments"),
        "RefundList": _list_of("Refund", _REFUND_EXAMPLE, f"/v1/payments/{_PAYMENT_ID}/refunds"),
        "Health": _object(["status"], {"status": {"const": "ok"}}, {"status": "ok"}),
        "OpenApiDocument": {"type": "object", "description": "This document."},
        "TokenRequest": _object(
            ["grant_type"],
            {
                "grant_type": {
                    "type": "string",
                    "enum": [
                        "client_credentials",
                        "authorization_code",
                        "refresh_token",
                        "password",
                    ],
                },
                "scope": {
                    "type": "string",
                    "description": "Space-separated; may only narrow what the client "
                    "(or the grant) holds.",
                },
                "code": {"type": "string", "description": "authorization_code"},
                "redirect_uri": {"type": "string", "description": "authorization_code"},
                "code_verifier": {"type": "string", "description": "authorization_code (PKCE)"},
                "refresh_token": {"type": "string", "description": "refresh_token"},
                "username": {"type": "string", "description": "password (legacy)"},
                "password": {"type": "string", "description": "password (legacy)"},
                **_CLIENT_AUTH_FIELDS,
            },
            {"grant_type": "client_credentials", "scope": "payments:read"},
        ),
        "TokenResponse": _object(
            ["access_token", "token_type", "expires_in", "scope"],
            {
                "access_token": {
                    "type": "string",
                    "description": "An RFC 9068 JWT (ES256, typ at+jwt).",
                },
                "token_type": {
                    "type": "string",
                    "enum": ["Bearer", "DPoP"],
                    "description": "DPoP when the request carried a DPoP proof (RFC 9449 §5).",
                },
                "expires_in": {"type": "integer", "description": "Seconds."},
                "scope": {"type": "string"},
                "refresh_token": {
                    "type": "string",
                    "description": "authorization_code and password grants of clients "
                    "registered for refresh_token; rotated on every use.",
                },
            },
            {
                "access_token": "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9...",
                "token_type": "Bearer",
                "expires_in": 600,
                "scope": "payments:read",
            },
        ),
        "PushedAuthorizationRequest": _object(
            ["response_type", "state"],
            {
                "response_type": {"type": "string", "enum": ["code", "token"]},
                "redirect_uri": {
                    "type": "string",
                    "description": "Exactly as registered; may be left out when the client "
                    "registered one.",
                },
                "scope": {
                    "type": "string",
                    "description": "Space-separated; no scope asks for all the client may be "
                    "granted.",
                },
                "state": {"type": "string", "minLength": 1, "maxLength": 512},
                "code_challenge": {
                    "type": "string",
                    "description": "PKCE (required for code): BASE64URL(SHA256(code_verifier)).",
                },
                "code_challenge_method": {"type": "string", "enum": ["S256"]},
                **_CLIENT_AUTH_FIELDS,
            },
            {
                "response_type": "code",
                "redirect_uri": "https://books.example/callback",
                "scope": "accounts:read",
                "state": "xyz-123",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            },
            description="RFC 9126 §2.1: the authorization request's parameters, checked as "
            "the authorize page checks them, and the client's authentication as at the token "
            "endpoint. request_uri is refused.",
        ),
        "PushedAuthorizationResponse": _object(
            ["request_uri", "expires_in"],
            {
                "request_uri": {
                    "type": "string",
                    "pattern": "^urn:ietf:params:oauth:request_uri:",
                    "description": "Send the browser to the authorize page with client_id and "
                    "this; it works once.",
                },
                "expires_in": {"type": "integer", "description": "Seconds (60)."},
            },
            {
                "request_uri": "urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c",
                "expires_in": 60,
            },
        ),
        "TokenRequestForIntrospection": _object(
            ["token"],
            {
                "token": {"type": "string", "description": "An access or refresh token."},
                "token_type_hint": {
                    "type": "string",
                    "enum": ["access_token", "refresh_token"],
                },
                **_CLIENT_AUTH_FIELDS,
            },
            {"token": "eyJhbGciOiJFUzI1NiIs...", "token_type_hint": "access_token"},
        ),
        "Introspection": _object(
            ["active"],
            {
                "active": {"type": "boolean"},
                "scope": {"type": "string"},
                "client_id": {"type": "string"},
                "sub": {"type": "string"},
                "token_type": {"type": "string", "enum": ["Bearer", "DPoP", "refresh_token"]},
                "cnf": {
                    "type": "object",
                    "description": "DPoP-bound tokens (RFC 9449 §6.2): the key's thumbprint.",
                    "properties": {"jkt": {"type": "string"}},
                },
                "exp": _TIMESTAMP,
                "iat": _TIMESTAMP,
                "nbf": _TIMESTAMP,
                "iss": {"type": "string"},
                "aud": {"type": "string"},
                "jti": {"type": "string"},
            },
            {
                "active": True,
                "scope": "payments:read",
                "client_id": "ppc_5f0c3e1d2a9b8c7d6e5f4a3b",
                "sub": "ppc_5f0c3e1d2a9b8c7d6e5f4a3b",
                "token_type": "Bearer",
                "exp": 1767226200,
                "iat": 1767225600,
                "nbf": 1767225600,
                "iss": "https://api.example",
                "aud": "https://api.example",
                "jti": "at_0193f2a1b2c3",
            },
            description="Anything but a live token issued to the caller (or, for a "
            "clients:manage client, to anyone) is {active: false}.",
        ),
        "AuthorizationServerMetadata": _object(
            [
                "issuer",
                "authorization_endpoint",
                "token_endpoint",
                "jwks_uri",
                "registration_endpoint",
                "introspection_endpoint",
                "revocation_endpoint",
                "scopes_supported",
                "response_types_supported",
                "grant_types_supported",
                "code_challenge_methods_supported",
                "token_endpoint_auth_methods_supported",
            ],
            {
                "issuer": {"type": "string"},
                "authorization_endpoint": {"type": "string"},
                "token_endpoint": {"type": "string"},
                "pushed_authorization_request_endpoint": {"type": "string"},
                "require_pushed_authorization_requests": {"type": "boolean"},
                "dpop_signing_alg_values_supported": {
                    "type": "array",
                    "items": {"type": "string"},
                },
                "jwks_uri": {"type": "string"},
                "registration_endpoint": {"type": "string"},
                "introspection_endpoint": {"type": "string"},
                "revocation_endpoint": {"type": "string"},
                "scopes_supported": {"type": "array", "items": {"type": "string"}},
                "response_types_supported": {"type": "array", "items": {"type": "string"}},
                "grant_types_supported": {"type": "array", "items": {"type": "string"}},
                "code_challenge_methods_supported": {
                    "type": "array",
                    "items": {"type": "string"},
                },
                "token_endpoint_auth_methods_supported": {
                    "type": "array",
                    "items": {"type": "string"},
                },
                "service_documentation": {"type": "string"},
            },
            description="RFC 8414. Further members as the RFC and its extensions define.",
        ),
        "JWK": _object(
            ["kty", "crv", "x", "y", "kid", "use", "alg"],
            {
                "kty": {"const": "EC"},
                "crv": {"const": "P-256"},
                "x": {"type": "string"},
                "y": {"type": "string"},
                "kid": {"type": "string", "description": "RFC 7638 thumbprint"},
                "use": {"const": "sig"},
                "alg": {"const": "ES256"},
            },
        ),
        "JWKS": _object(
            ["keys"],
            {"keys": {"type": "array", "items": _ref("JWK")}},
            {
                "keys": [
                    {
                        "kty": "EC",
                        "crv": "P-256",
                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                        "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
                        "use": "sig",
                        "alg": "ES256",
                    }
                ]
            },
            description="Every key whose tokens may still be live, and the next key.",
        ),
        "ClientMetadata": _object(
            ["client_name", "owner"],
            _REGISTRATION_PROPERTIES,
            _REGISTRATION_EXAMPLE,
            description="RFC 7591 §2. Metadata the server does not know is ignored.",
        ),
        "ClientMetadataUpdate": _object(
            ["client_id", "client_name"],
            {
                "client_id": {"type": "string"},
                "client_secret": {
                    "type": "string",
                    "description": "If sent, must be the current secret.",
                },
                **_REGISTRATION_PROPERTIES,
            },
            {"client_id": "ppc_5f0c3e1d2a9b8c7d6e5f4a3b", **_REGISTRATION_EXAMPLE},
            description="RFC 7592 §2.2: replaces the metadata. Scopes and grants may be "
            "narrowed, never widened; owner and plan cannot change.",
        ),
        "ClientRegistration": _object(
            _REGISTRATION_REQUIRED,
            _REGISTRATION_RESPONSE,
            _REGISTERED_EXAMPLE,
            description="RFC 7591 §3.2.1 (never a secret).",
        ),
        "ClientRegistrationCreated": _object(
            [*_REGISTRATION_REQUIRED, "registration_access_token"],
            {
                **_REGISTRATION_RESPONSE,
                "registration_access_token": {
                    "type": "string",
                    "description": "Bearer token for registration_client_uri. Shown once.",
                },
                "client_secret": {
                    "type": "string",
                    "description": "Secret clients only. Shown once: keep it safe.",
                },
                "client_secret_expires_at": {"const": 0},
            },
            {
                **_REGISTERED_EXAMPLE,
                "registration_access_token": "rat-9dGx...",
                "client_secret": "cs-2Qf...",
                "client_secret_expires_at": 0,
            },
        ),
        "SecretRotationRequest": _object(
            [],
            {
                "overlap_seconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 7 * 86_400,
                    "default": 86_400,
                    "description": "How long the current secret keeps working.",
                }
            },
            {"overlap_seconds": 3600},
        ),
        "SecretRotation": _object(
            [
                "client_id",
                "client_secret",
                "client_secret_expires_at",
                "previous_secret_expires_at",
            ],
            {
                "client_id": {"type": "string"},
                "client_secret": {"type": "string", "description": "Shown once."},
                "client_secret_expires_at": {"const": 0},
                "previous_secret_expires_at": {"type": ["integer", "null"]},
            },
            {
                "client_id": "ppc_5f0c3e1d2a9b8c7d6e5f4a3b",
                "client_secret": "cs-7Hk...",
                "client_secret_expires_at": 0,
                "previous_secret_expires_at": 1767229200,
            },
        ),
        "AuthorizeForm": _object(
            ["request_id", "csrf", "action"],
            {
                "request_id": {"type": "string"},
                "csrf": {"type": "string"},
                "action": {"type": "string", "enum": ["login", "approve", "deny"]},
                "username": {"type": "string"},
                "password": {"type": "string"},
            },
            description="The page's own form: its hidden fields, the button pressed and, "
            "to sign in, what the account holder typed. Needs the page's CSRF cookie.",
        ),
        "WebhookEndpointList": _list_of(
            "WebhookEndpoint", _WEBHOOK_ENDPOINT_EXAMPLE, "/v1/webhook_endpoints"
        ),
        "EventList": _list_of("Event", _EVENT_EXAMPLE, "/v1/events"),
    }
    for name, model in REQUEST_MODELS.items():
        schemas[model.__name__] = _request_model_schema(name, model)
    for model in RESPONSE_MODELS:
        schemas[model.__name__] = _response_model_schema(model)
    return schemas


_CLIENT_AUTH_FIELDS: dict[str, Any] = {
    "client_id": {"type": "string", "description": "client_secret_post, private_key_jwt"},
    "client_secret": {
        "type": "string",
        "description": "client_secret_post (instead of HTTP Basic)",
    },
    "client_assertion_type": {
        "const": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "description": "private_key_jwt",
    },
    "client_assertion": {
        "type": "string",
        "description": "private_key_jwt: a JWT signed by the client (RFC 7523).",
    },
}

_REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "create_payment": {
        "source_account": "acct_alice_eur",
        "destination_account": "acct_bob_eur",
        "amount": 5000,
        "currency": "EUR",
        "capture_method": "manual",
        "description": "Order 42",
        "metadata": {"order_id": "42"},
    },
    "capture_payment": {"amount": 3000},
    "cancel_payment": {},
    "create_refund": {"amount": 1000, "reason": "requested_by_customer"},
    "create_webhook_endpoint": {
        "url": "https://partner.example/payplat/webhooks",
        "enabled_events": ["payment.succeeded", "refund.created"],
        "description": "Order fulfilment",
    },
    "roll_webhook_endpoint_secret": {"expires_in": 3600},
    "redeliver_event": {},
}


def _request_model_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """The pydantic model's JSON schema, with what its validators check written in: metadata
    bounds, positive amounts, the currencies payplat settles."""
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    properties = schema.get("properties", {})
    if "metadata" in properties:
        properties["metadata"] = {**copy.deepcopy(_METADATA), "default": {}}
    if "amount" in properties:
        amount = properties["amount"]
        variants = amount.get("anyOf", [amount])
        for variant in variants:
            if variant.get("type") == "integer":
                variant["minimum"] = 1
                variant["description"] = _AMOUNT["description"]
    if "currency" in properties:
        properties["currency"] = {**properties["currency"], **_CURRENCY}
    schema["examples"] = [_REQUEST_EXAMPLES[name]]
    return schema


_RESPONSE_EXAMPLES: dict[str, dict[str, Any]] = {
    "Account": _ACCOUNT_EXAMPLE,
    "LedgerEntry": _ENTRY_EXAMPLE,
    "Payment": _PAYMENT_EXAMPLE,
    "Refund": _REFUND_EXAMPLE,
    "WebhookEndpoint": _WEBHOOK_ENDPOINT_EXAMPLE,
    "WebhookEndpointWithSecret": {**_WEBHOOK_ENDPOINT_EXAMPLE, "secret": "whsec_8Jq..."},
    "DeletedWebhookEndpoint": {
        "id": _WEBHOOK_ENDPOINT_EXAMPLE["id"],
        "object": "webhook_endpoint",
        "deleted": True,
    },
    "Event": _EVENT_EXAMPLE,
    "EventRedelivery": {"id": _EVENT_EXAMPLE["id"], "object": "event", "redelivery": "queued"},
}


def _response_model_schema(model: type[Shape]) -> dict[str, Any]:
    """The model's JSON schema as a component: nested models by reference (each is a
    component of its own), every field required but the `MISSING` ones (which a body leaves
    out when unset), no titles or defaults, and open to members added later (a client must
    ignore what it does not know, so answers can grow without a new version)."""
    schema = model.model_json_schema(mode="serialization", ref_template=_REF_TEMPLATE)
    nested = set(schema.pop("$defs", {}))
    unknown = nested - {m.__name__ for m in RESPONSE_MODELS}
    if unknown:
        raise AssertionError(f"{model.__name__} nests models with no component: {unknown}")
    component: dict[str, Any] = _untitled(schema)
    component.pop("additionalProperties", None)
    for prop in component["properties"].values():
        prop.pop("default", None)  # a default says nothing in an answer
    component["required"] = [
        name for name, info in model.model_fields.items() if info.default is not MISSING
    ]
    if model.__name__ in _RESPONSE_EXAMPLES:
        component["examples"] = [_RESPONSE_EXAMPLES[model.__name__]]
    return component


def _untitled(schema: Any) -> Any:
    """Without pydantic's generated titles (`"title": "Amount Captured"` says nothing)."""
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


# -- security -----------------------------------------------------------------------------------


def _security_schemes(base_url: str) -> dict[str, Any]:
    partner_scopes = {s: words for s, words in SCOPES.items() if s not in _CLIENT_ONLY_SCOPES}
    return {
        "oauth2": {
            "type": "oauth2",
            "description": "Access tokens are RFC 9068 JWTs (ES256). Client credentials act "
            "for the client's owner; the authorization code (PKCE S256, required) acts for "
            "the account holder who consented. Refresh tokens rotate on every use.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": f"{base_url}/oauth/token",
                    "scopes": dict(SCOPES),
                },
                "authorizationCode": {
                    "authorizationUrl": f"{base_url}/oauth/authorize",
                    "tokenUrl": f"{base_url}/oauth/token",
                    "refreshUrl": f"{base_url}/oauth/token",
                    "scopes": partner_scopes,
                },
            },
        },
        "clientSecretBasic": {
            "type": "http",
            "scheme": "basic",
            "description": "Client authentication (client_secret_basic): the client id and "
            "secret, each form-urlencoded, as HTTP Basic. Alternatively send client_id and "
            "client_secret (client_secret_post) or client_assertion_type and "
            "client_assertion (private_key_jwt) as form fields — one method per request.",
        },
        "registrationAccessToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The registration_access_token returned by POST /oauth/register "
            "(RFC 7592), for that registration only.",
        },
    }


# Basic, or the credentials in the form (client_secret_post, private_key_jwt): an empty
# requirement says the form fields may carry them instead.
_CLIENT_AUTH: list[dict[str, list[str]]] = [{"clientSecretBasic": []}, {}]


# -- responses ----------------------------------------------------------------------------------


def _header(description: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": dict(schema or {"type": "string"})}


_HEADERS: dict[str, Any] = {
    "RateLimit": _header(
        'Where the caller stands, per limit (IETF RateLimit draft): "<policy>";r=<remaining>;'
        "t=<seconds to reset>, for the token bucket and any daily and monthly quota.",
    ),
    "RateLimit-Policy": _header(
        'The limits of the caller\'s plan: "<policy>";q=<quota>;w=<window in seconds>.'
    ),
    "Retry-After": _header("Seconds to wait before retrying.", {"type": "integer", "minimum": 0}),
    "Idempotent-Replayed": _header(
        "true when the answer was replayed from an earlier request with the same "
        "Idempotency-Key (nothing happened twice).",
        {"const": "true"},
    ),
    "WWW-Authenticate": _header(
        'RFC 6750 (Bearer realm="payplat", error="invalid_token" | "insufficient_scope") '
        'or, for client authentication, Basic realm="payplat".'
    ),
    "Location": _header("Where the browser goes next (the client's redirect_uri)."),
}


def _h(name: str, *, required: bool = False) -> dict[str, Any]:
    """The header, inline: a reference object in 3.1 may not say `required`."""
    header: dict[str, Any] = copy.deepcopy(_HEADERS[name])
    if required:
        header["required"] = True
    return header


def _rate_headers() -> dict[str, Any]:
    return {"RateLimit": _h("RateLimit"), "RateLimit-Policy": _h("RateLimit-Policy")}


def _content(schema_names: tuple[str, ...], media: str = JSON) -> dict[str, Any]:
    schema: dict[str, Any]
    if len(schema_names) == 1:
        schema = _ref(schema_names[0])
    else:
        schema = {"anyOf": [_ref(name) for name in schema_names]}
    return {media: {"schema": schema}}


def _response(
    description: str,
    schemas: tuple[str, ...] = ("Error",),
    *,
    headers: Mapping[str, Any] | None = None,
    html: bool = False,
) -> dict[str, Any]:
    content = _content(schemas) if schemas else {}
    if html:
        content[HTML] = {"schema": {"type": "string"}}
    response: dict[str, Any] = {"description": description}
    if content:
        response["content"] = content
    if headers:
        response["headers"] = dict(headers)
    return response


_WAF_403 = "Blocked by a managed rule of the API's firewall (deployed only)."
_TOO_LARGE = "The body is over 32 KB or the Authorization header over 4 KB (the edge)."
_EDGE_429 = "Throttled at the edge (the WAF's per-address rule, stage throttling)."


# -- the operations ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """How one route is described. `errors` are the statuses the route's own function or the
    gateway in front of it answer; the edge's (403, 413, 429) are added to every route."""

    summary: str
    tag: str
    description: str = ""
    ok: str = "200"
    ok_description: str = "Success"
    ok_schema: str | None = None  # a component schema; None: no body
    ok_media: str = JSON
    request: str | None = None  # a component schema
    request_media: str = JSON
    request_required: bool = False
    query: tuple[str, ...] = ()  # components.parameters
    # A money POST needs an Idempotency-Key; the webhook POSTs honour one if sent.
    idempotency_key: Literal["required", "optional"] | None = None
    errors: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    extra: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # other statuses


# Resource routes: the gateway's 401/403 and the function's, all in the one error format.
def _api_errors(*statuses: str, fails_closed: bool = False) -> dict[str, dict[str, Any]]:
    challenge = {"WWW-Authenticate": _h("WWW-Authenticate", required=True)}
    descriptions = {
        "400": "Invalid request: the message and param say what.",
        "402": "The money could not move (insufficient funds); the failed attempt is recorded.",
        "404": "No such object, or not yours (existence is not revealed).",
        "409": "Another request on this object or with this key is in flight: retry.",
        "422": "The Idempotency-Key was used before with different parameters.",
    }
    errors = {
        "401": _response(
            "Missing, invalid, expired or revoked token; or the client is disabled.",
            headers=challenge,
        ),
        "403": _response(
            "The token lacks the route's scope (or the firewall blocked the request).",
            headers={"WWW-Authenticate": _h("WWW-Authenticate")},
        ),
        "429": _response(
            "Rate limited (plan's token bucket, daily or monthly quota) or throttled at the edge.",
            headers={"Retry-After": _h("Retry-After", required=True), **_rate_headers()},
        ),
    }
    for status in statuses:
        errors[status] = _response(descriptions[status], headers=_rate_headers())
    if fails_closed:
        errors["503"] = _response(
            "The rate limiter is unreachable and this route fails closed: retry shortly.",
            headers={"Retry-After": _h("Retry-After", required=True)},
        )
    return errors


def _client_auth_errors(*, bad_request: str) -> dict[str, dict[str, Any]]:
    """The token endpoint and the token services: RFC 6749 §5.2, throttled per address and
    per client id before any credential is checked."""
    return {
        "400": _response(bad_request, ("OAuthError",)),
        "401": _response(
            "invalid_client: client authentication failed.",
            ("OAuthError",),
            headers={"WWW-Authenticate": _h("WWW-Authenticate", required=True)},
        ),
        "429": _response(
            "Too many requests from this address or for this client id (or throttled at the edge).",
            ("OAuthError", "Error"),
            headers={"Retry-After": _h("Retry-After", required=True), **_rate_headers()},
        ),
        "503": _response(
            "The rate limiter is unreachable (temporarily_unavailable): retry shortly.",
            ("OAuthError",),
            headers={"Retry-After": _h("Retry-After", required=True)},
        ),
    }


def _registration_errors(*, bad_request: bool) -> dict[str, dict[str, Any]]:
    """RFC 7592's routes: the registration access token, checked by the oauth function."""
    errors = {
        "401": _response(
            "invalid_token: the registration access token is missing, wrong, or the "
            "registration is gone.",
            ("OAuthError",),
            headers={"WWW-Authenticate": _h("WWW-Authenticate", required=True)},
        ),
        "404": _response("No route for this path (an empty client_id)."),
        "429": _response(
            "Too many requests for this client id or from this address (or throttled at the edge).",
            ("OAuthError", "Error"),
            headers={"Retry-After": _h("Retry-After", required=True), **_rate_headers()},
        ),
        "503": _response(
            "The rate limiter is unreachable (temporarily_unavailable): retry shortly.",
            ("OAuthError",),
            headers={"Retry-After": _h("Retry-After", required=True)},
        ),
    }
    if bad_request:
        errors["400"] = _response(
            "invalid_client_metadata or invalid_redirect_uri (RFC 7591 §3.2.2).", ("OAuthError",)
        )
    return errors


_PAGE_200 = _response("The sign-in or consent page.", (), html=True)
_PAGE_302 = {
    "description": "To the client's redirect_uri: code, state and iss (RFC 9207) on "
    "approval, error and error_description otherwise (in the fragment for response_type "
    "token).",
    "headers": {"Location": _h("Location", required=True)},
}

SPECS: dict[str, Spec] = {
    # -- platform
    "health": Spec("Liveness probe", "Platform", ok_schema="Health"),
    "openapi": Spec(
        "This document",
        "Platform",
        description="OpenAPI 3.1, built from the route table: the API's inventory.",
        ok_schema="OpenApiDocument",
    ),
    "docs": Spec(
        "Interactive API reference",
        "Platform",
        description="Swagger UI rendering /openapi.json.",
        ok_media=HTML,
        ok_schema="",
    ),
    # -- the authorization server
    "oauth_metadata": Spec(
        "Authorization server metadata (RFC 8414)", "OAuth", ok_schema="AuthorizationServerMetadata"
    ),
    "jwks": Spec("Token signing keys (RFC 7517)", "OAuth", ok_schema="JWKS"),
    "token": Spec(
        "Get an access token",
        "OAuth",
        description="Grants: client_credentials (acts for the client's owner; no refresh "
        "token), authorization_code (PKCE S256 required; single-use codes), refresh_token "
        "(rotated on every use; a reused one revokes the whole grant) and, for clients "
        "registered with it, password (legacy). Authenticate the client with HTTP Basic, "
        "client_secret_post form fields or a private_key_jwt assertion.",
        ok_schema="TokenResponse",
        request="TokenRequest",
        request_media=FORM,
        request_required=True,
        errors=_client_auth_errors(
            bad_request="invalid_request, invalid_grant, unauthorized_client, "
            "unsupported_grant_type or invalid_scope."
        ),
    ),
    "par": Spec(
        "Push an authorization request (RFC 9126)",
        "OAuth",
        description="The authorization request's parameters, posted by the client itself "
        "(authenticated and throttled as at the token endpoint) instead of through the "
        "browser. Send the browser to the authorize page with client_id and the request_uri "
        "answered: it works once, within expires_in.",
        ok="201",
        ok_description="Pushed.",
        ok_schema="PushedAuthorizationResponse",
        request="PushedAuthorizationRequest",
        request_media=FORM,
        request_required=True,
        errors=_client_auth_errors(
            bad_request="invalid_request (request_uri is refused), invalid_scope, "
            "unauthorized_client or unsupported_response_type."
        ),
    ),
    "authorize": Spec(
        "Authorization endpoint (the account holder's sign-in page)",
        "OAuth",
        description="Opened in the account holder's browser. Answers the sign-in page, "
        "redirects errors the client may hear about to its redirect_uri, and shows the "
        "others (unknown client, unregistered redirect_uri, an unknown, expired or used "
        "request_uri, a client that must push its requests) on a page. With request_uri "
        "(RFC 9126), the pushed parameters are used and the rest of the query is ignored.",
        ok_schema="",
        ok_media=HTML,
        ok_description="The sign-in page.",
        query=(
            "response_type",
            "client_id",
            "request_uri",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        ),
        errors={
            "400": _response("The request cannot be redirected safely: a page.", (), html=True)
        },
        extra={"302": _PAGE_302},
    ),
    "authorize_submit": Spec(
        "The sign-in and consent page's form",
        "OAuth",
        description="Posted by the page in the browser that opened it (CSRF cookie and "
        "hidden fields). Not for API clients.",
        ok_schema="",
        ok_media=HTML,
        ok_description="The next page: consent after sign-in, or the sign-in page again.",
        request="AuthorizeForm",
        request_media=FORM,
        request_required=True,
        errors={
            "400": _response("The form could not be used: a page.", (), html=True),
            "403": _response(
                "The form did not come from the browser that started the request (a page), "
                "or the firewall blocked it.",
                html=True,
            ),
            "429": _response(
                "Too many sign-in attempts for this username or address (a page), or "
                "throttled at the edge.",
                html=True,
                headers={"Retry-After": _h("Retry-After", required=True)},
            ),
            "503": _response(
                "The sign-in limiter is unreachable (temporarily_unavailable): retry shortly.",
                ("OAuthError",),
                headers={"Retry-After": _h("Retry-After", required=True)},
            ),
        },
        extra={"302": _PAGE_302},
    ),
    "introspect": Spec(
        "Is this token active? (RFC 7662)",
        "OAuth",
        description="A client sees its own tokens; a clients:manage client sees any.",
        ok_schema="Introspection",
        request="TokenRequestForIntrospection",
        request_media=FORM,
        request_required=True,
        errors=_client_auth_errors(bad_request="invalid_request."),
    ),
    "revoke": Spec(
        "Revoke an access or refresh token (RFC 7009)",
        "OAuth",
        description="Always 200 for a token that is unknown, not yours or already revoked. "
        "A refresh token stands for its grant: every token of it is revoked.",
        ok_description="Revoked (or nothing to revoke). No body.",
        request="TokenRequestForIntrospection",
        request_media=FORM,
        request_required=True,
        errors=_client_auth_errors(bad_request="invalid_request or unsupported_token_type."),
    ),
    # -- dynamic registration
    "register": Spec(
        "Register a client (RFC 7591)",
        "Registration",
        description="With an initial access token: a client-credentials token with clients:manage.",
        ok="201",
        ok_schema="ClientRegistrationCreated",
        request="ClientMetadata",
        request_required=True,
        errors={
            "400": _response(
                "invalid_client_metadata or invalid_redirect_uri (RFC 7591 §3.2.2).",
                ("OAuthError",),
                headers=_rate_headers(),
            ),
            "401": _response(
                "The initial access token is missing, invalid or revoked (RFC 6750), or its "
                "client is disabled.",
                ("Error", "OAuthError"),
                headers={"WWW-Authenticate": _h("WWW-Authenticate")},
            ),
            "403": _response(
                "The token lacks clients:manage (or the firewall blocked the request).",
                ("Error", "OAuthError"),
                headers={"WWW-Authenticate": _h("WWW-Authenticate")},
            ),
            "429": _response(
                "Rate limited (the registrar's plan) or throttled at the edge.",
                ("OAuthError", "Error"),
                headers={"Retry-After": _h("Retry-After", required=True), **_rate_headers()},
            ),
            "503": _response(
                "The rate limiter is unreachable (temporarily_unavailable): retry shortly.",
                ("OAuthError",),
                headers={"Retry-After": _h("Retry-After", required=True)},
            ),
        },
    ),
    "get_registration": Spec(
        "Read a registration (RFC 7592)",
        "Registration",
        ok_schema="ClientRegistration",
        errors=_registration_errors(bad_request=False),
    ),
    "update_registration": Spec(
        "Replace a registration's metadata (RFC 7592)",
        "Registration",
        ok_schema="ClientRegistration",
        request="ClientMetadataUpdate",
        request_required=True,
        errors=_registration_errors(bad_request=True),
    ),
    "delete_registration": Spec(
        "Delete a registration (RFC 7592)",
        "Registration",
        description="The client stops working at once, and so does every token it holds.",
        ok="204",
        ok_description="Deleted. No body.",
        errors=_registration_errors(bad_request=False),
    ),
    "rotate_secret": Spec(
        "Rotate the client secret",
        "Registration",
        description="A new secret; the current one keeps working for overlap_seconds "
        "(default a day, at most 7), so a fleet can roll without downtime.",
        ok_schema="SecretRotation",
        request="SecretRotationRequest",
        errors=_registration_errors(bad_request=True),
    ),
    # -- accounts
    "list_accounts": Spec(
        "List your accounts",
        "Accounts",
        ok_schema="AccountList",
        query=("limit", "starting_after", "ending_before"),
        errors=_api_errors("400", "404"),
    ),
    "get_account": Spec(
        "Get an account and its balances",
        "Accounts",
        ok_schema="Account",
        errors=_api_errors("404"),
    ),
    "list_transactions": Spec(
        "List an account's ledger entries",
        "Accounts",
        description="Newest first; forward only (starting_after).",
        ok_schema="LedgerEntryList",
        query=("limit", "starting_after"),
        errors=_api_errors("400", "404"),
    ),
    # -- payments
    "list_payments": Spec(
        "List payments you pay or receive",
        "Payments",
        ok_schema="PaymentList",
        query=(
            "limit",
            "starting_after",
            "ending_before",
            "status",
            "created_gte",
            "created_lte",
        ),
        errors=_api_errors("400", "404"),
    ),
    "create_payment": Spec(
        "Create a payment",
        "Payments",
        description="From one of your accounts. capture_method manual holds the money on "
        "the source account until the payee captures (or 7 days pass).",
        ok_schema="Payment",
        request="CreatePayment",
        request_required=True,
        idempotency_key="required",
        errors=_api_errors("400", "402", "404", "409", "422", fails_closed=True),
    ),
    "get_payment": Spec(
        "Get a payment", "Payments", ok_schema="Payment", errors=_api_errors("404")
    ),
    "capture_payment": Spec(
        "Capture an authorized payment (payee)",
        "Payments",
        description="All of it, or part (amount); the rest goes back to the payer.",
        ok_schema="Payment",
        request="CapturePayment",
        idempotency_key="required",
        errors=_api_errors("400", "404", "409", "422", fails_closed=True),
    ),
    "cancel_payment": Spec(
        "Cancel a payment before capture",
        "Payments",
        ok_schema="Payment",
        request="CancelPayment",
        idempotency_key="required",
        errors=_api_errors("400", "404", "409", "422", fails_closed=True),
    ),
    # -- refunds
    "create_refund": Spec(
        "Refund a captured payment (payee)",
        "Refunds",
        description="All that is left to refund, or part (amount).",
        ok="201",
        ok_schema="Refund",
        request="CreateRefund",
        idempotency_key="required",
        errors=_api_errors("400", "402", "404", "409", "422", fails_closed=True),
    ),
    "list_refunds": Spec(
        "List a payment's refunds", "Refunds", ok_schema="RefundList", errors=_api_errors("404")
    ),
    # -- webhooks (scope webhooks:manage)
    "create_webhook_endpoint": Spec(
        "Create a webhook endpoint",
        "Webhooks",
        description="For the owner the client acts for (at most 16). The URL is checked "
        "against the SSRF rules now and at every delivery. The answer holds the signing "
        "secret: the only time it is shown (until rolled).",
        ok_schema="WebhookEndpointWithSecret",
        request="CreateWebhookEndpoint",
        request_required=True,
        idempotency_key="optional",
        errors=_api_errors("400", "422", fails_closed=True),
    ),
    "list_webhook_endpoints": Spec(
        "List your webhook endpoints",
        "Webhooks",
        ok_schema="WebhookEndpointList",
        query=("limit", "starting_after", "ending_before"),
        errors=_api_errors("400", "404"),
    ),
    "get_webhook_endpoint": Spec(
        "Get a webhook endpoint",
        "Webhooks",
        ok_schema="WebhookEndpoint",
        errors=_api_errors("404"),
    ),
    "delete_webhook_endpoint": Spec(
        "Delete a webhook endpoint",
        "Webhooks",
        description="Nothing more is sent to it; deliveries under way are canceled.",
        ok_schema="DeletedWebhookEndpoint",
        errors=_api_errors("404", fails_closed=True),
    ),
    "roll_webhook_endpoint_secret": Spec(
        "Roll a webhook endpoint's signing secret",
        "Webhooks",
        description="A new secret; the old one keeps signing next to it for expires_in "
        "seconds, so deploy the new one first and verify with both meanwhile.",
        ok_schema="WebhookEndpointWithSecret",
        request="RollWebhookSecret",
        idempotency_key="optional",
        errors=_api_errors("400", "404", "409", "422", fails_closed=True),
    ),
    "list_events": Spec(
        "List events",
        "Events",
        description="What happened to the payments and refunds of your owner, newest "
        "first (kept 30 days).",
        ok_schema="EventList",
        query=("limit", "starting_after", "ending_before", "type"),
        errors=_api_errors("400", "404"),
    ),
    "get_event": Spec("Get an event", "Events", ok_schema="Event", errors=_api_errors("404")),
    "redeliver_event": Spec(
        "Send an event to your endpoints again",
        "Events",
        description="A new delivery to each of your enabled endpoints subscribed to the "
        "event's type, retried as usual (400 no_webhook_endpoints when there is none).",
        ok_schema="EventRedelivery",
        request="RedeliverEvent",
        idempotency_key="optional",
        errors=_api_errors("400", "404", "422", fails_closed=True),
    ),
}

# Kept for callers that only want the one-line summaries.
SUMMARIES: dict[str, str] = {name: spec.summary for name, spec in SPECS.items()}


def _parameters() -> dict[str, Any]:
    def query(name: str, schema: Mapping[str, Any], description: str, **extra: Any) -> Any:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": dict(schema),
            **extra,
        }

    object_id = {"type": "string", "pattern": ID_PATTERN}
    return {
        "limit": query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "How many objects a page holds.",
        ),
        "starting_after": query(
            "starting_after", object_id, "The page after this object id (older objects)."
        ),
        "ending_before": query(
            "ending_before", object_id, "The page before this object id (newer objects)."
        ),
        "status": query(
            "status",
            {"type": "string", "enum": list(get_args(payments_models.PaymentStatus))},
            "Only this status.",
        ),
        "created_gte": query(
            "created[gte]",
            {"type": "integer", "minimum": 0, "maximum": 99_999_999_999},
            "Created at or after this Unix time (seconds).",
        ),
        "created_lte": query(
            "created[lte]",
            {"type": "integer", "minimum": 0, "maximum": 99_999_999_999},
            "Created at or before this Unix time (seconds).",
        ),
        "type": query(
            "type", {"type": "string", "enum": list(EVENT_TYPES)}, "Only events of this type."
        ),
        "response_type": query(
            "response_type",
            {"type": "string", "enum": ["code", "token"]},
            "code (token only for clients registered for the legacy implicit grant). "
            "Required unless request_uri is given.",
        ),
        "client_id": query("client_id", {"type": "string"}, "The client.", required=True),
        "request_uri": query(
            "request_uri",
            {"type": "string"},
            "From POST /oauth/par (RFC 9126): the pushed request, once; every other "
            "parameter but client_id is then ignored.",
        ),
        "redirect_uri": query(
            "redirect_uri",
            {"type": "string"},
            "Exactly as registered; may be left out when the client registered one.",
        ),
        "scope": query(
            "scope",
            {"type": "string"},
            "Space-separated; no scope asks for all the client may be granted.",
        ),
        "state": query(
            "state",
            {"type": "string", "minLength": 1, "maxLength": 512},
            "Opaque to payplat, returned to the redirect_uri. Required unless request_uri "
            "is given.",
        ),
        "code_challenge": query(
            "code_challenge", {"type": "string"}, "PKCE: BASE64URL(SHA256(code_verifier))."
        ),
        "code_challenge_method": query(
            "code_challenge_method", {"type": "string", "enum": ["S256"]}, "PKCE: S256 only."
        ),
        "Idempotency-Key": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "description": "Your unique key for this request (24 h): the same key with the "
            "same body answers what the first request got, with Idempotent-Replayed: true.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY,
                "pattern": "^[ -~]+$",
            },
            "example": "order-42",
        },
    }


_PATH_PARAMETERS = {
    "account_id": ("An account id (acct_…).", "acct_alice_eur"),
    "payment_id": ("A payment id (pay_…).", _PAYMENT_ID),
    "client_id": ("The registration's client id.", "ppc_5f0c3e1d2a9b8c7d6e5f4a3b"),
    "endpoint_id": ("A webhook endpoint id (we_…).", "we_0193f2a1b2c3d4e5f60718293a4b5c6d7e8f"),
    "event_id": ("An event id (evt_…).", "evt_0193f2a1b2c3d4e5f60718293a4b5c6d7e8f"),
}


def _path_parameter(name: str) -> dict[str, Any]:
    description, example = _PATH_PARAMETERS.get(name, (name, None))
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        # Every id payplat makes is of this form; anything else names nothing (404, or 401
        # for a registration).
        "schema": {"type": "string", "pattern": ID_PATTERN},
    }
    if example is not None:
        parameter["example"] = example
    return parameter


def _operation(route: Route) -> dict[str, Any]:
    spec = SPECS.get(route.name) or Spec(route.name, "Other")
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": spec.summary,
        "tags": [spec.tag],
    }
    if spec.description:
        operation["description"] = spec.description
    parameters = [_path_parameter(name) for name in _path_params(route.path)]
    parameters += [{"$ref": f"#/components/parameters/{name}"} for name in spec.query]
    if spec.idempotency_key:  # inline: clients read it off the operation
        key = copy.deepcopy(_parameters()["Idempotency-Key"])
        if spec.idempotency_key == "optional":
            key["required"] = False
            key["description"] = "Optional here: " + key["description"]
        parameters.append(key)
    if parameters:
        operation["parameters"] = parameters
    if spec.request is not None:
        body: dict[str, Any] = {"schema": _ref(spec.request)}
        examples = _schemas()[spec.request].get("examples")
        if examples:
            body["example"] = copy.deepcopy(examples[0])
        operation["requestBody"] = {
            "required": spec.request_required,
            "content": {spec.request_media: body},
        }
    operation["security"] = _security(route)
    if route.scope is not None:
        operation["x-rate-limit-cost"] = route.cost
    operation["responses"] = _responses(route, spec)
    return operation


def _security(route: Route) -> list[dict[str, list[str]]]:
    if route.scope is not None:
        return [{"oauth2": [route.scope]}]
    if route.name in ("token", "introspect", "revoke"):
        return copy.deepcopy(_CLIENT_AUTH)
    if route.path.startswith("/oauth/register/"):
        return [{"registrationAccessToken": []}]
    return []


def _responses(route: Route, spec: Spec) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": spec.ok_description}
    if spec.ok_schema is not None:
        schema = _ref(spec.ok_schema) if spec.ok_schema else {"type": "string"}
        ok["content"] = {spec.ok_media: {"schema": schema}}
        examples = _schemas().get(spec.ok_schema, {}).get("examples")
        if examples:
            ok["content"][spec.ok_media]["example"] = copy.deepcopy(examples[0])
    headers: dict[str, Any] = {}
    if _rate_limited(route):
        headers.update(_rate_headers())
    if spec.idempotency_key:
        headers["Idempotent-Replayed"] = _h("Idempotent-Replayed")
    if headers:
        ok["headers"] = headers
    responses: dict[str, Any] = {spec.ok: ok, **copy.deepcopy(dict(spec.extra))}
    for status, response in spec.errors.items():
        responses[status] = copy.deepcopy(response)
    if spec.idempotency_key:
        # A replay answers the first request's status, 402 included.
        for status in ("402",):
            if status in responses:
                responses[status].setdefault("headers", {})["Idempotent-Replayed"] = _h(
                    "Idempotent-Replayed"
                )
    html_page = spec.ok_media == HTML and route.function is Function.OAUTH
    edge = {
        "403": _response(_WAF_403),
        "413": _response(_TOO_LARGE),
        "429": _response(_EDGE_429, headers={"Retry-After": _h("Retry-After", required=True)}),
    }
    for status, response in edge.items():
        if status not in responses:
            responses[status] = response
        elif html_page and JSON not in responses[status].get("content", {}):
            # The page's own answer is HTML; the edge's is still JSON.
            responses[status].setdefault("content", {})[JSON] = {"schema": _ref("Error")}
    return dict(sorted(responses.items()))


def _rate_limited(route: Route) -> bool:
    """Routes whose answers carry the RateLimit headers: every route behind the gate, and
    the token endpoint, the token services and registration management (throttled per
    address and client id)."""
    if route.scope is not None:
        return True
    return route.name in ("token", "introspect", "revoke") or route.path.startswith(
        "/oauth/register/"
    )


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def document(base_url: str) -> dict[str, Any]:
    """The OpenAPI document as served at `base_url` (the public base URL, with the stage)."""
    base_url = base_url.rstrip("/")
    schemas = copy.deepcopy(_schemas())
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    used_tags = sorted({op["tags"][0] for item in paths.values() for op in item.values()})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payplat API",
            "version": "1",
            "summary": "Accounts, payments, refunds and webhooks behind OAuth 2.0.",
            "description": (
                "Accounts, payments and refunds on a double-entry ledger, behind payplat's "
                "own OAuth 2.0 authorization server. Amounts are integers in minor units; "
                "every money POST needs an Idempotency-Key; lists paginate with limit, "
                "starting_after and ending_before; every response of a rate-limited route "
                "carries RateLimit and RateLimit-Policy, and every 429 Retry-After. "
                "Resource routes answer errors as {error: {type, code, message, param, "
                "request_id}}, the authorization server as RFC 6749 §5.2."
            ),
        },
        "servers": [{"url": base_url}],
        "tags": [{"name": tag} for tag in used_tags],
        "paths": paths,
        "components": {
            "securitySchemes": _security_schemes(base_url),
            "schemas": schemas,
            "parameters": _parameters(),
            "headers": copy.deepcopy(_HEADERS),
        },
    }


SWAGGER_UI = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>payplat API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
</body></html>
"""
