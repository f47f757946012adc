"""The OpenID 2.0 relying party: the exchange, its extensions, its fetcher and provider rules."""
