"""The public shapes of the webhook routes' objects and of the events every delivery sends.
The webhook code builds its bodies through these models and the OpenAPI document derives its
schemas from them (see payplat.payments.models for the conventions: public names, import the
module, `MISSING` marks the only optional fields)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import MISSING, Field

from payplat.payments.models import Payment, Refund, Shape, Timestamp

EventType = Literal[
    "payment.created",
    "payment.succeeded",
    "payment.captured",
    "payment.failed",
    "payment.canceled",
    "payment.expired",
    "refund.created",
]
AllEvents = Literal["*"]


class WebhookEndpoint(Shape):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    enabled_events: Annotated[
        list[EventType | AllEvents], Field(description='Event types, or ["*"] for every type.')
    ]
    description: str | None
    status: Literal["enabled"] = "enabled"
    created: Timestamp


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: Annotated[
        str,
        Field(
            description="The signing secret (whsec_…). Shown only on create and roll: store "
            "it then."
        ),
    ]


class DeletedWebhookEndpoint(Shape):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    deleted: Literal[True] = True


class EventData(Shape):
    object: Annotated[
        Payment | Refund,
        Field(
            description="The object the event is about, as the API showed it when the event "
            "was made."
        ),
    ]


class Event(Shape):
    id: str
    object: Literal["event"] = "event"
    type: EventType
    created: Timestamp
    data: EventData
    pending_webhooks: Annotated[
        int | MISSING,
        Field(
            ge=0,
            description="Deliveries to your endpoints not yet done (API only; not in deliveries).",
        ),
    ] = MISSING


class EventRedelivery(Shape):
    id: str
    object: Literal["event"] = "event"
    redelivery: Literal["queued"] = "queued"


RESPONSE_MODELS: tuple[type[Shape], ...] = (
    WebhookEndpoint,
    WebhookEndpointWithSecret,
    DeletedWebhookEndpoint,
    Event,
    EventRedelivery,
)
