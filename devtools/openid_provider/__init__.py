"""A local OpenID 2.0 provider for development and tests — never deploy it.

One server imitates several providers under path prefixes (see ``profiles.py``):
a full one (SReg + AX), an SReg-only one, an AX-only one, one without e-mail and a
Steam look-alike. It is built on python3-openid's server side and anyone can sign in
as any user name: there are no passwords.
"""

from __future__ import annotations

from devtools.openid_provider.app import create_app
from devtools.openid_provider.profiles import PROFILES, Profile

__all__ = ["PROFILES", "Profile", "create_app"]
