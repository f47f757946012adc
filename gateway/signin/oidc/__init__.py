"""OpenID Connect: discovery and JWKS, the authorization code flow with PKCE and ID token checks,
back-channel logout tokens, and the OpenID 2.0 -> OpenID Connect migration (``openid2_id``)."""
