"""Sign-in methods beside OpenID 2.0 (:mod:`gateway.openid`): OpenID Connect (:mod:`gateway.signin.oidc`)."""
