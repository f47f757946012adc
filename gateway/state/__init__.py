"""What survives between requests: session cookies, remember-me series, revocations, CSRF tokens, rate limits.

Each module wraps one kind of state (signed cookies, store records, the in-memory revocation set) behind
small typed classes. It imports the floor, :mod:`gateway.observe` and :mod:`gateway.store`; the gate,
the sign-in methods and the pages build on it.
"""
