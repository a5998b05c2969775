"""payplat's CDK constructs, one per concern; `infra.stack.PayplatStack` composes them."""

from infra.constructs.api import Api
from infra.constructs.archive import AuditArchive
from infra.constructs.audit import Audit
from infra.constructs.audit_pipeline import AuditPipeline
from infra.constructs.data import Access, Data, TableAccess
from infra.constructs.functions import Functions, PayplatFunction
from infra.constructs.layer import CoreLayer
from infra.constructs.monitoring import Monitoring
from infra.constructs.schedules import Schedules
from infra.constructs.sealing_key import SealingKey
from infra.constructs.signing_key import SigningKey
from infra.constructs.webhooks import WebhookPipeline, WebhookQueues

__all__ = [
    "Access",
    "Api",
    "Audit",
    "AuditArchive",
    "AuditPipeline",
    "CoreLayer",
    "Data",
    "Functions",
    "Monitoring",
    "PayplatFunction",
    "Schedules",
    "SealingKey",
    "SigningKey",
    "TableAccess",
    "WebhookPipeline",
    "WebhookQueues",
]
