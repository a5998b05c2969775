"""payplat's CDK constructs, one per concern; `infra.stack.PayplatStack` composes them."""

from infra.constructs.api import Api
from infra.constructs.audit import Audit
from infra.constructs.data import Access, Data, TableAccess
from infra.constructs.functions import Functions, PayplatFunction
from infra.constructs.layer import CoreLayer
from infra.constructs.schedules import Schedules
from infra.constructs.signing_key import SigningKey

__all__ = [
    "Access",
    "Api",
    "Audit",
    "CoreLayer",
    "Data",
    "Functions",
    "PayplatFunction",
    "Schedules",
    "SigningKey",
    "TableAccess",
]
