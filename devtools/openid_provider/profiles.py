"""The imitated providers: one ``Profile`` per path prefix, and the user-name rules.

Every URL a profile publishes is built here from the externally visible base URL, so
discovery documents, the endpoint and the assertions always agree on them (a relying
party compares them character for character: OpenID 2.0 §11.2).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from openid.extensions import ax, sreg

USERNAME_RULE = "1 to 64 characters: letters, digits, '.', '_' or '-'"
_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STEAM_ID = re.compile(r"7656119[0-9]{10}")


def valid_username(name: str) -> bool:
    """Whether ``name`` may be used as a user name.

    "." and ".." are refused too: as path segments they would be normalised away
    (RFC 3986 §5.2.4) and the claimed identifier would point somewhere else.
    """
    return _USERNAME.fullmatch(name) is not None and name not in {".", ".."}


def steam_id(username: str) -> str:
    """A SteamID64-shaped number (17 digits starting 7656119), the same for a name every time."""
    digest = hashlib.sha256(username.encode()).digest()
    return f"7656119{int.from_bytes(digest[:8], 'big') % 10**10:010d}"


def valid_steam_id(value: str) -> bool:
    return _STEAM_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class Profile:
    """How one imitated provider behaves and where it lives.

    ``steam_ids``: claimed identifiers are ``<prefix>/openid/id/<SteamID64>`` and only
    identifier_select is accepted, as on steamcommunity.com. ``assoc_type_in_reply``:
    False removes ``assoc_type`` from association replies, as Steam does, which makes
    python3-openid's consumer fall back to stateless ``check_authentication``.
    """

    name: str
    prefix: str
    summary: str
    sreg: bool = True
    ax: bool = True
    email: bool = True
    steam_ids: bool = False
    assoc_type_in_reply: bool = True

    def url(self, base: str, path: str = "") -> str:
        return f"{base}{self.prefix}{path}"

    def op_identifier(self, base: str) -> str:
        return self.url(base, "/openid")

    def endpoint(self, base: str) -> str:
        return self.url(base, "/endpoint")

    def claimed_id(self, base: str, username: str) -> str:
        """The identifier asserted for ``username`` (the page that supports Yadis discovery)."""
        if self.steam_ids:
            return self.url(base, f"/openid/id/{steam_id(username)}")
        return self.url(base, f"/id/{username}")

    def html_claimed_id(self, base: str, username: str) -> str:
        """An identifier for ``username`` discoverable through HTML links only (no XRDS)."""
        return self.url(base, f"/html-id/{username}")

    def username_for(self, base: str, identity: str) -> str | None:
        """The user an OP-local identifier names, or None when it is not one of ours."""
        if self.steam_ids:
            return None
        for path in ("/id/", "/html-id/"):
            start = self.url(base, path)
            if identity.startswith(start) and valid_username(identity[len(start):]):
                return identity[len(start):]
        return None

    def extension_types(self) -> list[str]:
        """The extension type URIs the discovery documents advertise."""
        types = []
        if self.sreg:
            types.append(sreg.ns_uri_1_1)
        if self.ax:
            types.append(ax.AXMessage.ns_uri)
        return types

    @property
    def fields(self) -> tuple[str, ...]:
        """The SReg field names this provider releases (AX carries the same facts)."""
        if not (self.sreg or self.ax):
            return ()
        return ("nickname", "email", "fullname") if self.email else ("nickname", "fullname")

    def attributes(self, username: str) -> dict[str, str]:
        """What this provider releases about ``username``, keyed by SReg field name."""
        values = {"nickname": username, "email": f"{username}@example.test", "fullname": f"Development user {username}"}
        return {field: values[field] for field in self.fields}


PROFILES: tuple[Profile, ...] = (
    Profile("full", "", "SReg and AX: nickname, e-mail address and full name."),
    Profile("sreg-only", "/sreg-only", "Answers SReg only and ignores AX.", ax=False),
    Profile("ax-only", "/ax-only", "Answers AX only and ignores SReg.", sreg=False),
    Profile("no-email", "/no-email", "SReg and AX with a nickname but never an e-mail address.", email=False),
    Profile(
        "steam", "/steam",
        "Imitates Steam: identifier_select only, SteamID64 claimed identifiers, no SReg or AX, "
        "association replies without assoc_type.",
        sreg=False, ax=False, email=False, steam_ids=True, assoc_type_in_reply=False,
    ),
)
