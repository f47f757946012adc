"""Signing people in: one :class:`~gateway.signin.methods.SignInMethod` per protocol, behind one registry.

The protocols sit side by side (:mod:`~gateway.signin.openid2`, :mod:`~gateway.signin.oidc`,
:mod:`~gateway.signin.github`); what they share is here: the registry and the threads sign-ins run on
(:mod:`~gateway.signin.methods`, :mod:`~gateway.signin.capacity`), the sign-ins in flight
(:mod:`~gateway.signin.loginstate`) and which account a sign-in reaches
(:mod:`~gateway.signin.identities`). Pages use the registry and never ask which protocol an identity came from.
"""
