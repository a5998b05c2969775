"""Operator actions (the `payplat` CLI calls these and only parses and prints): plans, partner
clients (create, rotate a secret, change plan, disable), account holders, token revocation and
signing-key rotation.

Every change is audited with actor sub "operator"; no secret, password or hash is ever part
of an audit record. Revocations go through payplat.revocation.Revoker: they take effect on the
next request, even where API Gateway still holds a cached Allow for the token (the limiter's
condition checks them on every request), and introspection sees them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from payplat.audit import events as audit
from payplat.clients.registry import (
    AUTH_METHODS,
    DEFAULT_PLAN,
    GRANT_CLIENT_CREDENTIALS,
    PRIVATE_KEY_JWT,
    SECRET_BASIC,
    Client,
    ClientReader,
    ClientStore,
    register_client,
    rotate_secret,
)
from payplat.errors import OAuthError
from payplat.gateway.plans import DEFAULT_PLANS, INTERNAL_PLANS, Limits, PlanStore
from payplat.gateway.revocation import Revoker
from payplat.oauth import registration
from payplat.oauth.signing_keys import (
    PUBLISH_LEAD_S,
    RETIRE_AFTER_S,
    KeyFactory,
    KeyRegistry,
    SigningKey,
    current,
    keys_in_force,
    rotate,
)
from payplat.oauth.users import USERNAME, User, UserExists, UserStore, create_user, username_of
from payplat.payments.ledger import Account
from payplat.payments.money import EXPONENTS, MAX_MAJOR_UNITS
from payplat.routes import SCOPES

OPERATOR = "operator"
MAX_SECRET_OVERLAP_S = registration.MAX_SECRET_OVERLAP_S
DEFAULT_PUBLISH_LEAD_S = PUBLISH_LEAD_S
DEFAULT_RETIRE_AFTER_S = RETIRE_AFTER_S
# A lead or a retirement longer than a week is a typo, not a plan.
MAX_KEY_DELAY_S = 7 * 86_400


class Accounts(Protocol):
    """The ledger's side of opening an account (payplat.payments.dal.ledger_table)."""

    def account(self, account_id: str) -> Account | None: ...

    def open_account(self, account: Account) -> None: ...


class UnknownClient(LookupError):
    pass


class UnknownUser(LookupError):
    pass


# -- plans --------------------------------------------------------------------------------------


def plans(store: PlanStore) -> list[Limits]:
    """Every plan in force: the stored ones, and the defaults not overridden."""
    stored = {plan.name: plan for plan in store.list_plans()}
    return sorted({**DEFAULT_PLANS, **stored}.values(), key=lambda plan: plan.name)


def put_plan(store: PlanStore, plan: Limits) -> Limits:
    """Create or change a plan; functions pick it up within their config cache TTL."""
    store.put_plan(plan)
    _record(
        "plan.set",
        f"plan/{plan.name}",
        rate_per_s=plan.rate_per_s,
        burst=plan.burst,
        daily_quota=plan.daily_quota,
        monthly_quota=plan.monthly_quota,
        shards=plan.shards,
    )
    return plan


def _partner_plan(store: PlanStore, plan: str) -> None:
    # Internal limits (token endpoint, sign-ins) are not tiers a client can be put on.
    if plan in INTERNAL_PLANS or plan not in {p.name for p in plans(store)}:
        raise ValueError(f"no such plan: {plan}")


# -- clients ------------------------------------------------------------------------------------


def create_client(
    clients: ClientStore,
    users: UserStore,
    plan_store: PlanStore,
    *,
    name: str,
    owner: str,
    scopes: Iterable[str],
    grant_types: Iterable[str] = (GRANT_CLIENT_CREDENTIALS,),
    redirect_uris: Sequence[str] = (),
    plan: str = DEFAULT_PLAN,
    auth_method: str = SECRET_BASIC,
    jwks: dict[str, Any] | None = None,
    local: bool = False,
    require_pushed_authorization_requests: bool = False,
    dpop_bound_access_tokens: bool = False,
) -> tuple[Client, str | None]:
    """Register a partner client; returns it with its secret (None for private_key_jwt),
    which is never retrievable again. `local` allows plain-http loopback redirect URIs."""
    name = name.strip()
    if not name or len(name) > registration.MAX_NAME_CHARS:
        raise ValueError(f"the name must be 1 to {registration.MAX_NAME_CHARS} characters")
    wanted = frozenset(scopes)
    if not wanted:
        raise ValueError("at least one scope is needed")
    if wanted - SCOPES.keys():
        raise ValueError(
            f"unknown scopes: {' '.join(sorted(wanted - SCOPES.keys()))}"
            f" (known: {' '.join(sorted(SCOPES))})"
        )
    if auth_method not in AUTH_METHODS:
        raise ValueError(f"the auth method must be one of {', '.join(AUTH_METHODS)}")
    if (jwks is not None) != (auth_method == PRIVATE_KEY_JWT):
        raise ValueError("a JWK Set is needed for private_key_jwt, and only there")
    _partner_plan(plan_store, plan)
    # The same checks dynamic registration applies, so an operator cannot register what a
    # partner could not (an http redirect URI in AWS, refresh_token alone, a private JWK).
    try:
        grants = registration.grant_types_from({"grant_types": list(grant_types)})
        uris = registration.redirect_uris_from(
            {"redirect_uris": list(redirect_uris)}, grants, local=local
        )
        checked_jwks = None if jwks is None else registration.jwks_from(jwks)
    except OAuthError as exc:
        raise ValueError(exc.description) from exc
    username = username_of(owner)
    if username is None:
        raise ValueError(f"the owner must be an account holder's user id (usr_...), not {owner!r}")
    if users.get(username) is None:
        raise UnknownUser(owner)
    client, secret = register_client(
        clients,
        name=name,
        scopes=wanted,
        owner=owner,
        grant_types=grants,
        plan=plan,
        redirect_uris=uris,
        auth_method=auth_method,
        jwks=checked_jwks,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
    )
    _record(
        "client.registered",
        f"client/{client.client_id}",
        registered_client_id=client.client_id,
        name=client.name,
        owner=client.owner,
        scope=" ".join(sorted(client.scopes)),
        grant_types=sorted(client.grant_types),
        redirect_uris=list(client.redirect_uris),
        auth_method=client.auth_method,
        plan=client.plan,
        require_pushed_authorization_requests=client.require_pushed_authorization_requests,
        dpop_bound_access_tokens=client.dpop_bound_access_tokens,
    )
    return client, secret


def describe_client(client: Client, issuer: str = "") -> dict[str, Any]:
    """The registration as partners see it (payplat.registration.describe), with what an
    operator also needs: its status and when it was created. Never a secret or any hash."""
    return {
        **registration.describe(issuer, client),
        "status": client.status,
        "created_at": client.created_at,
    }


def get_client(clients: ClientReader, client_id: str) -> Client:
    client = clients.get(client_id)
    if client is None:
        raise UnknownClient(client_id)
    return client


def rotate_client_secret(
    clients: ClientStore, client_id: str, *, overlap_s: int, now: int
) -> tuple[Client, str]:
    """A new secret; the current one keeps working for `overlap_s` more seconds."""
    if not 0 <= overlap_s <= MAX_SECRET_OVERLAP_S:
        raise ValueError(
            f"the overlap must be between 0s and {MAX_SECRET_OVERLAP_S // 86_400}d"
            f" ({MAX_SECRET_OVERLAP_S} s)"
        )
    client = get_client(clients, client_id)
    if not client.active:
        raise ValueError(f"client {client_id} is {client.status}: its secret is not rotated")
    try:
        updated, secret = rotate_secret(clients, client, overlap_s=overlap_s, now=now)
    except LookupError as exc:  # deleted between the read and the write
        raise UnknownClient(client_id) from exc
    _record(
        "client.secret_rotated",
        f"client/{client_id}",
        overlap_seconds=overlap_s,
        previous_secret_expires_at=updated.previous_secret_expires_at,
    )
    return updated, secret


def set_plan(clients: ClientStore, store: PlanStore, client_id: str, plan: str) -> Client:
    _partner_plan(store, plan)
    client = clients.update(client_id, plan=plan)
    if client is None:
        raise UnknownClient(client_id)
    _record("client.plan_changed", f"client/{client_id}", plan=plan)
    return client


def disable_client(clients: ClientStore, revoker: Revoker, client_id: str) -> Client:
    """The client gets no new token, and every token it holds is refused from now on."""
    client = clients.update(client_id, status="disabled")
    if client is None:
        raise UnknownClient(client_id)
    revoker.disable(client)
    _record("client.disabled", f"client/{client_id}")
    return client


def revoke_token(clients: ClientReader, revoker: Revoker, client_id: str, jti: str) -> None:
    """Revoke one access token (the limiter's buckets and introspection's list)."""
    get_client(clients, client_id)  # an operator's typo must not look like success
    revoker.revoke_access_token(client_id, jti)
    _record("token.revoked", f"client/{client_id}", jti=jti)


# -- account holders ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opening:
    """An account to open with the user: its currency and opening balance in minor units."""

    currency: str
    balance: int

    def __post_init__(self) -> None:
        if self.currency not in EXPONENTS:
            hint = " (codes are upper case)" if self.currency.upper() in EXPONENTS else ""
            raise ValueError(f"unsupported currency: {self.currency[:8]!r}{hint}")
        ceiling = MAX_MAJOR_UNITS * 10 ** EXPONENTS[self.currency]
        if not 0 <= self.balance <= ceiling:
            raise ValueError(
                f"an opening balance is 0 to {ceiling} minor units of {self.currency},"
                f" not {self.balance}"
            )


def account_id_of(username: str, currency: str) -> str:
    return f"acct_{username}_{currency.lower()}"


def create_account_holder(
    users: UserStore,
    ledger: Accounts,
    username: str,
    password: Callable[[], str],
    *,
    display_name: str | None = None,
    openings: Sequence[Opening] = (),
    now: int,
) -> tuple[User, list[Account]]:
    """Create a user who can sign in at the authorize page, and open their accounts.
    `password` is asked for only once everything else has been checked (nobody types a
    password twice to learn that the name is taken)."""
    currencies = [opening.currency for opening in openings]
    if len(set(currencies)) != len(currencies):
        raise ValueError("one account per currency")
    if not USERNAME.match(username):
        raise ValueError(
            "username must be 3 to 32 characters: a lowercase letter, then lowercase letters,"
            " digits or underscores"
        )
    if users.get(username) is not None:
        raise UserExists(f"username {username!r} is taken")
    for currency in currencies:
        if ledger.account(account_id_of(username, currency)) is not None:
            raise ValueError(f"account {account_id_of(username, currency)} exists already")
    user = create_user(users, username, password(), display_name)
    accounts = [
        Account(account_id_of(username, o.currency), user.user_id, o.currency, o.balance, 0, now)
        for o in openings
    ]
    _record("user.created", f"user/{user.user_id}", username=user.username)
    for account in accounts:
        ledger.open_account(account)
        # Opening balances are not ledger entries: this record is where they are accounted.
        _record(
            "account.opened",
            f"account/{account.id}",
            owner=account.owner,
            currency=account.currency,
            opening_balance=account.available,
        )
    return user, accounts


def describe_user(user: User) -> dict[str, Any]:
    """What an operator may see of a user: never the password hash."""
    return {
        "username": user.username,
        "user_id": user.user_id,
        "display_name": user.display_name,
        "status": user.status,
        "created_at": user.created_at,
    }


# -- signing keys -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyStatus:
    key: SigningKey
    state: str  # signing | next | retiring | retired


def signing_keys(
    registry: KeyRegistry, factory: KeyFactory, configured_key_id: str, *, now: int
) -> list[KeyStatus]:
    keys, _ = keys_in_force(registry, factory, configured_key_id)
    try:
        signing: SigningKey | None = current(keys, now)
    except LookupError:
        signing = None
    return [KeyStatus(key, key.state(now, signing)) for key in keys]


def rotate_signing_key(
    registry: KeyRegistry,
    factory: KeyFactory,
    configured_key_id: str,
    *,
    now: int,
    publish_lead_s: int = DEFAULT_PUBLISH_LEAD_S,
    retire_after_s: int = DEFAULT_RETIRE_AFTER_S,
) -> tuple[SigningKey, list[SigningKey]]:
    """Create the next signing key (published at once, signing after `publish_lead_s`); the
    keys it replaces stay published `retire_after_s` after that. Returns the new key and the
    set in force."""
    for label, value in (("publish lead", publish_lead_s), ("retirement", retire_after_s)):
        if not 0 <= value <= MAX_KEY_DELAY_S:
            raise ValueError(f"the {label} must be between 0s and {MAX_KEY_DELAY_S // 86_400}d")
    new, in_force = rotate(
        registry,
        factory,
        configured_key_id,
        now=now,
        publish_lead_s=publish_lead_s,
        retire_after_s=retire_after_s,
    )
    _record(
        "key.rotated",
        f"key/{new.kid}",
        kid=new.kid,
        key_id=new.key_id,
        activates_at=new.activates_at,
        publish_lead_s=publish_lead_s,
        retiring=[{"kid": key.kid, "retires_at": key.retires_at} for key in in_force if key != new],
    )
    return new, in_force


# -- audit --------------------------------------------------------------------------------------


def _record(event_type: str, resource: str, **details: Any) -> None:
    audit.record(
        audit.AuditEvent(
            type=event_type,
            outcome="success",
            actor=audit.Actor(sub=OPERATOR),
            resource=resource,
            details={key: value for key, value in details.items() if value is not None},
        )
    )
