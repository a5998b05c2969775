"""The OpenAPI 3.1 document: built from the route table (every path, method, scope and cost),
the request models and the error format, so it cannot drift from what is served. It is the
API's inventory (OWASP API9)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from payplat.requests import CancelPayment, CapturePayment, CreatePayment, CreateRefund
from payplat.routes import ROUTES, SCOPES, Route

REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "create_payment": CreatePayment,
    "capture_payment": CapturePayment,
    "cancel_payment": CancelPayment,
    "create_refund": CreateRefund,
}

SUMMARIES = {
    "health": "Liveness probe",
    "oauth_metadata": "Authorization server metadata (RFC 8414)",
    "jwks": "Token signing keys (RFC 7517)",
    "token": "Get an access token (client credentials, authorization code, refresh, password)",
    "authorize": "Authorization endpoint: the account holder's login and consent page (HTML)",
    "authorize_submit": "The login and consent page's form (HTML form post)",
    "introspect": "Is this token active? (RFC 7662)",
    "revoke": "Revoke an access or refresh token (RFC 7009)",
    "register": "Register a client (RFC 7591; initial access token with clients:manage)",
    "get_registration": "Read a registration (RFC 7592; registration access token)",
    "update_registration": "Replace a registration's metadata (RFC 7592)",
    "delete_registration": "Delete a registration and stop its tokens (RFC 7592)",
    "rotate_secret": "Rotate the client secret; the old one works until the overlap ends",
    "openapi": "This document",
    "docs": "Interactive API reference",
    "list_accounts": "List your accounts",
    "get_account": "Get an account and its balances",
    "list_transactions": "List an account's ledger entries",
    "list_payments": "List payments you pay or receive",
    "create_payment": "Create a payment",
    "get_payment": "Get a payment",
    "capture_payment": "Capture an authorized payment (payee)",
    "cancel_payment": "Cancel a payment before capture",
    "create_refund": "Refund a captured payment (payee)",
    "list_refunds": "List a payment's refunds",
}

_REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
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
                "code": {"type": "string"},
                "message": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "request_id": {"type": ["string", "null"]},
            },
        }
    },
}
_OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def document(base_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payplat API",
            "version": "1",
            "description": (
                "Accounts, payments and refunds on a double-entry ledger, behind OAuth 2.0. "
                "Every POST needs an Idempotency-Key; amounts are integers in minor units."
            ),
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{base_url}/oauth/token",
                            "scopes": dict(SCOPES),
                        }
                    },
                }
            },
            "schemas": {
                "Error": _ERROR,
                "OAuthError": _OAUTH_ERROR,
                **{
                    model.__name__: model.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                    for model in REQUEST_MODELS.values()
                },
            },
        },
    }


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": SUMMARIES.get(route.name, route.name),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(route.path)
        ],
        "responses": _responses(route),
    }
    if route.scope is not None:
        operation["security"] = [{"oauth2": [route.scope]}]
        operation["x-rate-limit-cost"] = route.cost
    else:
        operation["security"] = []
    if route.method == "POST" and route.function.value == "payments":
        operation["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    model = REQUEST_MODELS.get(route.name)
    if model is not None:
        operation["requestBody"] = {
            "required": route.name == "create_payment",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
            },
        }
    if route.name == "token":
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {
                                "type": "string",
                                "enum": [
                                    "client_credentials",
                                    "authorization_code",
                                    "refresh_token",
                                    "password",
                                ],
                            },
                            "scope": {"type": "string"},
                            "code": {"type": "string"},
                            "redirect_uri": {"type": "string"},
                            "code_verifier": {"type": "string"},
                            "refresh_token": {"type": "string"},
                            "username": {"type": "string"},
                            "password": {"type": "string"},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "client_assertion_type": {"type": "string"},
                            "client_assertion": {"type": "string"},
                        },
                    }
                }
            },
        }
    return operation


_OK_STATUS = {"create_refund": "201", "register": "201", "delete_registration": "204"}


def _responses(route: Route) -> dict[str, Any]:
    ok = _OK_STATUS.get(route.name, "200")
    error = "OAuthError" if route.function.value == "oauth" else "Error"
    error_body = {
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}}
    }
    responses: dict[str, Any] = {
        ok: {"description": "Success"},
        "400": {"description": "Invalid request", **error_body},
        "429": {"description": "Rate limited (see Retry-After)", **error_body},
    }
    if route.scope is not None:
        responses["401"] = {"description": "Missing, invalid or revoked token", **error_body}
        responses["403"] = {"description": "Token lacks the scope", **error_body}
        responses["404"] = {"description": "Not found (or not yours)", **error_body}
    if route.method == "POST" and route.scope is not None:
        responses["409"] = {"description": "In flight elsewhere; retry", **error_body}
        responses["422"] = {"description": "Idempotency-Key reused", **error_body}
    if route.name in ("create_payment", "create_refund"):
        responses["402"] = {"description": "Insufficient funds", **error_body}
    return responses


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


SWAGGER_UI = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>payplat API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
</body></html>
"""
