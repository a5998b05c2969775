"""The authorization server: the token endpoint and its grants (token_endpoint, grants),
client authentication, the login-and-consent pages (authorize, pages) and pushed
authorization requests (par, RFC 9126), account holders
(users), dynamic registration (RFC 7591/7592), introspection and revocation
(token_services), access-token minting and the signing-key ring (access_tokens, jwk,
signing_keys); stored in the tokens and users tables and KMS (dal). Imports the kernel,
audit, clients, and gateway (verification, throttles, revocation).
"""

__all__ = ["access_tokens", "dal", "grants", "jwk", "signing_keys", "users"]
