"""The guarded outbound HTTP client every sign-in protocol uses.

Discovery, JWKS, token and userinfo requests all go to addresses a stranger may name (a typed-in
OpenID, an issuer, a redirect): here is the one place that refuses private and metadata addresses
(:mod:`~gateway.fetch.addresses`), enforces the provider allow list (:mod:`~gateway.fetch.allowlist`),
caps sizes and times, and keeps connections alive (:mod:`~gateway.fetch.connections`). It imports only
the floor and :mod:`gateway.observe`; the protocols in :mod:`gateway.signin` import it.
"""
