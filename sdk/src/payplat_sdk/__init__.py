"""payplat_sdk: the Python client for the payplat payments API.

```python
from payplat_sdk import Payplat

client = Payplat(base_url, client_id, client_secret)
for payment in client.payments.list(status="succeeded").auto_paging_iter():
    print(payment.id, payment.amount, payment.currency)
```
"""

from payplat_sdk import webhooks
from payplat_sdk._version import __version__
from payplat_sdk.auth import AuthorizationCodeFlow, Tokens, pkce_pair
from payplat_sdk.client import Payplat
from payplat_sdk.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    IdempotencyError,
    InvalidClientError,
    InvalidRequestError,
    OAuthError,
    OAuthRateLimitError,
    PaymentError,
    PayplatError,
    PermissionDeniedError,
    RateLimitError,
    SignatureVerificationError,
)
from payplat_sdk.models import (
    Account,
    Balance,
    Deleted,
    Event,
    LedgerEntry,
    ListObject,
    Payment,
    PayplatObject,
    Redelivery,
    Refund,
    ResponseInfo,
    WebhookEndpoint,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "Account",
    "AuthenticationError",
    "AuthorizationCodeFlow",
    "Balance",
    "Deleted",
    "Event",
    "IdempotencyError",
    "InvalidClientError",
    "InvalidRequestError",
    "LedgerEntry",
    "ListObject",
    "OAuthError",
    "OAuthRateLimitError",
    "Payment",
    "PaymentError",
    "Payplat",
    "PayplatError",
    "PayplatObject",
    "PermissionDeniedError",
    "RateLimitError",
    "Redelivery",
    "Refund",
    "ResponseInfo",
    "SignatureVerificationError",
    "Tokens",
    "WebhookEndpoint",
    "__version__",
    "pkce_pair",
    "webhooks",
]
