"""The doors: how each front proxy asks the gate and hears its verdict.

:mod:`~gateway.front.auth_request` answers nginx's ``auth_request`` (mode 1),
:mod:`~gateway.front.forward_auth` Caddy's and Traefik's forward auth, and :mod:`~gateway.front.proxy`
is the gateway as the reverse proxy itself (mode 2). Each turns one
:class:`~gateway.gate.authenticate.Verdict` into its own dialect and decides nothing itself.
"""
