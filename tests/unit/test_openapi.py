"""The OpenAPI document: valid OpenAPI 3.1, one operation per route of the route table (and
only those), each protected one with its scope, every status with a body schema, and schemas
that hold the objects the code really returns (and examples the schemas accept)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from payplat.api import openapi
from payplat.clients.registry import Client
from payplat.config import TokenSettings
from payplat.oauth import registration
from payplat.oauth.token_endpoint import metadata
from payplat.pagination import page
from payplat.payments.ledger import Account, Payment, Refund
from payplat.payments.requests import CancelPayment, CapturePayment, CreatePayment, CreateRefund
from payplat.routes import ROUTES, SCOPES, Function, Route
from payplat.webhooks import endpoints, objects

BASE_URL = "https://api.payplat.test/live"
# Responses that have no body by design: a deletion, a redirect, revocation's empty 200.
BODILESS = {("delete_registration", "204"), ("revoke", "200")}
WEBHOOK_ROUTES = tuple(
    Route(name, method, path, Function.PAYMENTS, "webhooks:manage")
    for name, method, path in (
        ("create_webhook_endpoint", "POST", "/v1/webhook_endpoints"),
        ("list_webhook_endpoints", "GET", "/v1/webhook_endpoints"),
        ("get_webhook_endpoint", "GET", "/v1/webhook_endpoints/{endpoint_id}"),
        ("delete_webhook_endpoint", "DELETE", "/v1/webhook_endpoints/{endpoint_id}"),
        ("roll_webhook_endpoint_secret", "POST", "/v1/webhook_endpoints/{endpoint_id}/roll_secret"),
        ("list_events", "GET", "/v1/events"),
        ("get_event", "GET", "/v1/events/{event_id}"),
        ("redeliver_event", "POST", "/v1/events/{event_id}/redeliver"),
    )
)
WEBHOOK_ROUTE_NAMES = {route.name for route in WEBHOOK_ROUTES}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.document(BASE_URL)


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation)."""
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def schema_validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator for components.schemas[name], its $refs resolved within the document."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:payplat:openapi", resource)
    return Draft202012Validator(
        {"$ref": f"urn:payplat:openapi#/components/schemas/{name}"}, registry=registry
    )


# -- the document as a whole ---------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises on the first violation
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": BASE_URL}]


def test_every_route_of_the_table_has_its_operation_and_nothing_else(
    document: dict[str, Any],
) -> None:
    documented = {(method, path) for method, path, _ in operations(document).values()}
    assert documented == {(route.method, route.path) for route in ROUTES}
    assert set(operations(document)) == {route.name for route in ROUTES}


def test_every_route_is_described_not_left_bare() -> None:
    assert {route.name for route in ROUTES} <= openapi.SPECS.keys()


def test_the_document_follows_the_table_with_or_without_the_webhook_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook routes are described by name: emitted exactly when the table has them."""
    without = tuple(route for route in ROUTES if route.name not in WEBHOOK_ROUTE_NAMES)
    monkeypatch.setattr(openapi, "ROUTES", without)
    document = openapi.document(BASE_URL)
    validate(document)
    assert not any(path.startswith(("/v1/webhook", "/v1/events")) for path in document["paths"])

    monkeypatch.setattr(openapi, "ROUTES", without + WEBHOOK_ROUTES)
    monkeypatch.setitem(openapi.SCOPES, "webhooks:manage", "Manage webhook endpoints")
    document = openapi.document(BASE_URL)
    validate(document)
    ops = operations(document)
    for route in WEBHOOK_ROUTES:
        method, path, operation = ops[route.name]
        assert (method, path) == (route.method, route.path)
        assert operation["security"] == [{"oauth2": ["webhooks:manage"]}]
    created = ops["create_webhook_endpoint"][2]["responses"]["200"]["content"]
    assert created["application/json"]["schema"]["$ref"].endswith("/WebhookEndpointWithSecret")
    listed = ops["get_webhook_endpoint"][2]["responses"]["200"]["content"]
    assert listed["application/json"]["schema"]["$ref"].endswith("/WebhookEndpoint")
    flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
    assert "webhooks:manage" in flows["clientCredentials"]["scopes"]


def test_object_schemas_are_derived_from_the_response_models(document: dict[str, Any]) -> None:
    """One source of truth: each object's schema is its pydantic model's, so a field added to
    a model is in the document, and a field only a `MISSING` default marks is optional."""
    schemas = document["components"]["schemas"]
    names = {model.__name__ for model in openapi.RESPONSE_MODELS}
    assert {"Account", "Payment", "Refund", "LedgerEntry", "Event", "WebhookEndpoint"} <= names
    for model in openapi.RESPONSE_MODELS:
        ours = schemas[model.__name__]
        assert list(ours["properties"]) == list(model.model_fields), model.__name__
        assert "additionalProperties" not in ours  # answers may grow
        assert "title" not in keys_of(ours), model.__name__  # no generated titles
    payment = schemas["Payment"]
    assert "failure_code" not in payment["required"] and "capture_before" not in payment["required"]
    assert {"id", "object", "status", "description", "metadata"} <= set(payment["required"])
    assert payment["properties"]["status"]["enum"] == [
        "requires_capture",
        "succeeded",
        "canceled",
        "failed",
    ]
    event = schemas["Event"]["properties"]
    assert event["type"]["enum"] == list(objects.EVENT_TYPES)
    assert event["data"] == {"$ref": "#/components/schemas/EventData"}
    # The webhook request models are documented from the models the routes parse with.
    for name in ("CreateWebhookEndpoint", "RollWebhookSecret", "RedeliverEvent"):
        model = getattr(endpoints, name)
        assert (
            openapi.REQUEST_MODELS[
                {
                    "CreateWebhookEndpoint": "create_webhook_endpoint",
                    "RollWebhookSecret": "roll_webhook_endpoint_secret",
                    "RedeliverEvent": "redeliver_event",
                }[name]
            ]
            is model
        )
        assert schemas[name]["additionalProperties"] is False, name
    items = schemas["CreateWebhookEndpoint"]["properties"]["enabled_events"]["items"]
    assert items["enum"] == [*objects.EVENT_TYPES, "*"]


def keys_of(schema: Any) -> set[str]:
    """Every key anywhere in a JSON schema (property names included)."""
    if isinstance(schema, dict):
        return set(schema).union(*(keys_of(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(keys_of(item) for item in schema))
    return set()


def test_the_webhook_module_answers_what_its_schemas_say() -> None:
    endpoint = objects.Endpoint(
        id="we_1",
        owner="usr_bob",
        url="https://shop.example/hooks",
        enabled_events=("*",),
        created=1,
        secrets=(objects.Secret("whsec_1"),),
        client_id="ppc_1",
    )
    document = openapi.document(BASE_URL)
    schema_validator(document, "WebhookEndpoint").validate(endpoint.public())
    schema_validator(document, "WebhookEndpointWithSecret").validate(
        endpoint.public(with_secret=True)
    )


# -- security ------------------------------------------------------------------------------------


def test_every_protected_operation_declares_its_scope(document: dict[str, Any]) -> None:
    ops = operations(document)
    for route in ROUTES:
        operation = ops[route.name][2]
        if route.scope is not None:
            assert operation["security"] == [{"oauth2": [route.scope]}], route.name
            assert operation["x-rate-limit-cost"] == route.cost
            assert {"401", "403", "429"} <= operation["responses"].keys(), route.name


def test_public_operations_declare_the_credentials_they_do_take(document: dict[str, Any]) -> None:
    ops = operations(document)
    for name in ("token", "introspect", "revoke"):
        assert ops[name][2]["security"] == [{"clientSecretBasic": []}, {}]
        assert "401" in ops[name][2]["responses"]
        form = ops[name][2]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        schema = document["components"]["schemas"][form["schema"]["$ref"].rsplit("/", 1)[1]]
        assert {"client_id", "client_secret", "client_assertion"} <= schema["properties"].keys()
    for name in ("get_registration", "update_registration", "delete_registration", "rotate_secret"):
        assert ops[name][2]["security"] == [{"registrationAccessToken": []}]
    for name in ("health", "openapi", "docs", "oauth_metadata", "jwks", "authorize"):
        assert ops[name][2]["security"] == []


def test_both_oauth_flows_list_every_scope_with_its_words(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    flows = schemes["oauth2"]["flows"]
    assert flows["clientCredentials"] == {
        "tokenUrl": f"{BASE_URL}/oauth/token",
        "scopes": SCOPES,
    }
    code = flows["authorizationCode"]
    assert code["authorizationUrl"] == f"{BASE_URL}/oauth/authorize"
    assert code["tokenUrl"] == code["refreshUrl"] == f"{BASE_URL}/oauth/token"
    # An account holder cannot delegate clients:manage.
    assert code["scopes"] == {k: v for k, v in SCOPES.items() if k != "clients:manage"}
    assert schemes["clientSecretBasic"] == {**schemes["clientSecretBasic"], "scheme": "basic"}
    assert schemes["registrationAccessToken"]["scheme"] == "bearer"
    used = {
        scope
        for _, _, op in operations(document).values()
        for requirement in op["security"]
        for scope in requirement.get("oauth2", [])
    }
    assert used <= flows["clientCredentials"]["scopes"].keys()


# -- responses -----------------------------------------------------------------------------------


def test_every_declared_status_has_a_description_and_a_schema(document: dict[str, Any]) -> None:
    for name, (_, _, operation) in operations(document).items():
        for status, response in operation["responses"].items():
            assert response["description"], (name, status)
            if (name, status) in BODILESS or status == "302":
                assert "content" not in response, (name, status)
                continue
            assert response.get("content"), (name, status)
            for media, body in response["content"].items():
                assert "schema" in body, (name, status, media)


def test_errors_use_the_format_of_whoever_answers(document: dict[str, Any]) -> None:
    ops = operations(document)

    def schemas(name: str, status: str, media: str = "application/json") -> set[str]:
        schema = ops[name][2]["responses"][status]["content"][media]["schema"]
        refs = schema.get("anyOf", [schema])
        return {ref["$ref"].rsplit("/", 1)[1] for ref in refs}

    assert schemas("create_payment", "400") == {"Error"}
    assert schemas("create_payment", "402") == {"Error"}
    assert schemas("token", "400") == {"OAuthError"}
    assert schemas("token", "401") == {"OAuthError"}
    # The token endpoint's own 429 is RFC 6749 shaped; the edge's is the API's.
    assert schemas("token", "429") == {"OAuthError", "Error"}
    # The initial access token is checked by the gateway (API format) and the gate (OAuth).
    assert schemas("register", "401") == {"Error", "OAuthError"}
    assert schemas("get_registration", "401") == {"OAuthError"}
    # Pages are HTML; the edge in front of them still answers JSON.
    assert "text/html" in ops["authorize"][2]["responses"]["200"]["content"]
    assert schemas("authorize", "413") == {"Error"}
    assert set(ops["authorize_submit"][2]["responses"]["403"]["content"]) == {
        "application/json",
        "text/html",
    }
    assert ops["authorize"][2]["responses"]["302"]["headers"]["Location"]["required"]


def test_the_statuses_each_kind_of_route_can_really_answer(document: dict[str, Any]) -> None:
    ops = operations(document)

    def statuses(name: str) -> set[str]:
        return set(ops[name][2]["responses"])

    edge = {"403", "413", "429"}
    assert statuses("health") == {"200", *edge}
    assert statuses("create_payment") == {
        "200", "400", "401", "402", "403", "404", "409", "413", "422", "429", "503",
    }  # fmt: skip
    assert statuses("create_refund") >= {"201", "402", "409", "422", "503"}
    assert statuses("capture_payment") >= {"200", "409", "422", "503"}
    assert "402" not in statuses("capture_payment")
    # Reads fail open when the limiter is down: never a 503.
    assert "503" not in statuses("list_payments")
    assert statuses("get_payment") == {"200", "401", "403", "404", "413", "429"}
    assert statuses("token") == {"200", "400", "401", "403", "413", "429", "503"}
    assert statuses("delete_registration") == {"204", "401", "403", "404", "413", "429", "503"}
    assert statuses("authorize") == {"200", "302", "400", "403", "413", "429"}


def test_headers_partners_rely_on_are_declared(document: dict[str, Any]) -> None:
    ops = operations(document)
    create = ops["create_payment"][2]
    ok_headers = create["responses"]["200"]["headers"]
    assert {"RateLimit", "RateLimit-Policy", "Idempotent-Replayed"} <= ok_headers.keys()
    assert create["responses"]["402"]["headers"]["Idempotent-Replayed"]
    for name, (_, _, operation) in ops.items():
        too_many = operation["responses"]["429"]
        assert too_many["headers"]["Retry-After"]["required"], name
    assert ops["list_accounts"][2]["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]
    assert ops["token"][2]["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]


# -- requests ------------------------------------------------------------------------------------


def test_money_posts_take_an_idempotency_key_and_their_model(document: dict[str, Any]) -> None:
    ops = operations(document)
    for name, model in openapi.REQUEST_MODELS.items():
        operation = ops[name][2]
        [key] = [p for p in operation["parameters"] if p.get("name") == "Idempotency-Key"]
        # Required where money moves; the webhook routes take one if sent.
        assert key["in"] == "header" and key["required"] is (name not in WEBHOOK_ROUTE_NAMES)
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model.__name__}"}
    create = document["components"]["schemas"]["CreatePayment"]
    assert create["additionalProperties"] is False  # no mass assignment
    assert set(create["required"]) == {
        "source_account",
        "destination_account",
        "amount",
        "currency",
    }
    assert "EUR" in create["properties"]["currency"]["enum"]
    assert create["properties"]["metadata"]["maxProperties"] == 50


def test_form_bodies_where_the_authorization_server_reads_forms(document: dict[str, Any]) -> None:
    ops = operations(document)
    for name in ("token", "introspect", "revoke", "authorize_submit"):
        assert set(ops[name][2]["requestBody"]["content"]) == {"application/x-www-form-urlencoded"}
    for name in ("register", "update_registration", "rotate_secret"):
        assert set(ops[name][2]["requestBody"]["content"]) == {"application/json"}


def test_lists_take_the_pagination_parameters(document: dict[str, Any]) -> None:
    ops = operations(document)
    for name in ("list_accounts", "list_payments"):
        refs = {p["$ref"].rsplit("/", 1)[1] for p in ops[name][2]["parameters"] if "$ref" in p}
        assert {"limit", "starting_after", "ending_before"} <= refs
    # Transactions page forward only: ending_before is refused, so it is not offered.
    parameters = ops["list_transactions"][2]["parameters"]
    refs = {p["$ref"].rsplit("/", 1)[1] for p in parameters if "$ref" in p}
    assert refs == {"limit", "starting_after"}
    limit = document["components"]["parameters"]["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 100)


# -- schemas against what the code returns ---------------------------------------------------------


def test_examples_are_valid_against_their_schemas(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            schema_validator(document, name).validate(example)


def test_request_examples_are_accepted_by_the_request_models(document: dict[str, Any]) -> None:
    models = {
        "CreatePayment": CreatePayment,
        "CapturePayment": CapturePayment,
        "CancelPayment": CancelPayment,
        "CreateRefund": CreateRefund,
    }
    for name, model in models.items():
        for example in document["components"]["schemas"][name]["examples"]:
            model.model_validate(example)


def test_the_objects_the_code_returns_match_their_schemas(document: dict[str, Any]) -> None:
    payment = Payment(
        id="pay_1",
        payer="usr_alice",
        payee="usr_bob",
        source_account="acct_a",
        destination_account="acct_b",
        amount=5000,
        currency="EUR",
        capture_method="manual",
        status="requires_capture",
        created=1,
        expires_at=2,
    )
    failed = replace(payment, status="failed", failure_code="insufficient_funds", expires_at=None)
    canceled = replace(payment, status="canceled", canceled_at=3, cancellation_reason="expired")
    refund = Refund("re_1", "pay_1", 100, "EUR", 4, "duplicate", {"k": "v"})
    account = Account("acct_a", "usr_alice", "EUR", 100, 0, 1)
    client = Client(
        client_id="ppc_1",
        name="app",
        secret_hash=None,
        scopes=frozenset({"payments:read"}),
        grant_types=frozenset({"client_credentials"}),
        owner="usr_bob",
        registration_token_hash="x",
    )
    settings = TokenSettings(issuer="https://api.payplat.test", audience="https://api")
    cases: list[tuple[str, Any]] = [
        ("Payment", payment.public()),
        ("Payment", failed.public()),
        ("Payment", canceled.public()),
        ("Refund", refund.public()),
        ("Account", account.public()),
        ("PaymentList", page([payment.public()], False, "/v1/payments")),
        ("RefundList", page([refund.public()], False, "/v1/payments/pay_1/refunds")),
        ("AccountList", page([account.public()], True, "/v1/accounts")),
        ("ClientRegistration", registration.describe("https://api.payplat.test", client)),
        ("AuthorizationServerMetadata", metadata(settings)),
    ]
    for name, instance in cases:
        schema_validator(document, name).validate(instance)


def test_the_reference_page_renders_this_document() -> None:
    assert 'url: "openapi.json"' in openapi.SWAGGER_UI  # relative: the stage prefix is kept
    assert "swagger-ui-bundle.js" in openapi.SWAGGER_UI
