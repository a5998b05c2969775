"""payplat's CDK constructs, one per concern; `infra.stack.PayplatStack` composes them."""

from infra.constructs.api import Api
from infra.constructs.audit import Audit
from infra.constructs.data import Access, Data
from infra.constructs.functions import Functions, PayplatFunction
from infra.constructs.layer import CoreLayer
from infra.constructs.signing_key import SigningKey

__all__ = [
    "Access",
    "Api",
    "Audit",
    "CoreLayer",
    "Data",
    "Functions",
    "PayplatFunction",
    "SigningKey",
]
