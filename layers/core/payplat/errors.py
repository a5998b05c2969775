"""Domain errors. Each carries what its HTTP answer needs; the mapping to a response lives in
one place per function kind (payplat.http), never in `isinstance` chains in handlers."""

from __future__ import annotations


class OAuthError(Exception):
    """An RFC 6749 §5.2 error from the authorization server's endpoints."""

    status = 400

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers: dict[str, str] = {}  # what the answer must carry (DPoP-Nonce)


class InvalidClient(OAuthError):
    """Client authentication failed: 401 with a WWW-Authenticate challenge (§5.2)."""

    def __init__(self, description: str = "Client authentication failed.") -> None:
        super().__init__("invalid_client", description, status=401)


class ApiError(Exception):
    """A resource-route error, answered as `{"error": {type, code, message, param, request_id}}`."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"
    code = "parameter_invalid"


class NotFound(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "resource_missing"


class AuthenticationFailed(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_token"


class InvalidDpopProof(AuthenticationFailed):
    """401 for a DPoP-bound token whose request's proof fails (RFC 9449 §7.1): the challenge
    says DPoP, and `reason` is the short code audited."""

    code = "invalid_dpop_proof"

    def __init__(
        self, message: str, *, reason: str, algorithms: str, nonce: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        # A missing or old nonce (RFC 9449 §9): use_dpop_nonce, with the nonce to use.
        error = "use_dpop_nonce" if reason == "use_dpop_nonce" else "invalid_dpop_proof"
        self.code = error
        self.headers = {"WWW-Authenticate": f'DPoP error="{error}", algs="{algorithms}"'}
        if nonce is not None:
            self.headers["DPoP-Nonce"] = nonce


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"
    code = "insufficient_scope"


class PaymentFailed(ApiError):
    """402: the request was valid, the money could not move (the attempt is recorded)."""

    status = 402
    type = "payment_error"
    code = "insufficient_funds"


class IdempotencyMismatch(ApiError):
    status = 422
    type = "idempotency_error"
    code = "idempotency_key_reused"


class Conflict(ApiError):
    """409: another request on the same object or key is in flight; retrying is safe."""

    status = 409
    type = "api_error"
    code = "conflict"


class InvalidState(ApiError):
    status = 400
    type = "invalid_request_error"
    code = "payment_invalid_state"
