"""OpenID 2.0 (python3-openid): the exchange, discovery and association caches, SReg/AX, provider rules."""
