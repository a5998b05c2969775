"""Request bodies of the money routes: pydantic models that refuse what they do not know (no
mass assignment of `status`, `amount_refunded` or anything else), with errors that name the
offending parameter."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from payplat.errors import InvalidRequest
from payplat.payments.money import check_amount, check_currency, minor_units_hint

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
ID_PATTERN = r"^[A-Za-z0-9_]{1,64}$"

M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_KEY:
            raise ValueError(f"keys are 1 to {MAX_METADATA_KEY} characters")
        if len(item) > MAX_METADATA_VALUE:
            raise ValueError(f"values are at most {MAX_METADATA_VALUE} characters")
    return value


class CreatePayment(_Body):
    source_account: StrictStr = Field(pattern=ID_PATTERN)
    destination_account: StrictStr = Field(pattern=ID_PATTERN)
    amount: StrictInt
    currency: StrictStr = Field(min_length=3, max_length=3)
    capture_method: Literal["automatic", "manual"] = "automatic"
    description: StrictStr | None = Field(default=None, max_length=1000)
    metadata: dict[StrictStr, StrictStr] = Field(default_factory=dict)

    _check_metadata = field_validator("metadata")(_metadata)


class CapturePayment(_Body):
    amount: StrictInt | None = None


class CreateRefund(_Body):
    amount: StrictInt | None = None
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    metadata: dict[StrictStr, StrictStr] = Field(default_factory=dict)

    _check_metadata = field_validator("metadata")(_metadata)


class CancelPayment(_Body):
    pass


def parse(model: type[M], body: str | None, content_type: str | None) -> M:
    """The body as `model`, or a 400 naming the parameter (never a stack trace)."""
    if body and (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise InvalidRequest("The body must be JSON (Content-Type: application/json).")
    try:
        data: Any = json.loads(body) if body else {}
    except ValueError as exc:
        raise InvalidRequest("The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "extra_forbidden":
            raise InvalidRequest(f"Unknown parameter: {param}.", param=param) from None
        message = error["msg"]
        if param == "amount" and error["type"] in ("int_type", "int_from_float"):
            message = minor_units_hint(str(data.get("currency", "USD")))
        raise InvalidRequest(f"Invalid {param}: {message}.", param=param) from None
    if isinstance(parsed, CreatePayment):
        check_currency(parsed.currency)
        check_amount(parsed.amount, parsed.currency)
    return parsed
