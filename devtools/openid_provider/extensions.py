"""SReg 1.1 and AX 1.0 answers, limited to what each profile is willing to release, and PAPE 1.0.

PAPE (Provider Authentication Policy Extension 1.0, python3-openid's ``draft.pape5``): a relying party
asks for a recent (``max_auth_age``) or multi-factor (``preferred_auth_policies``) authentication; every
positive assertion says when the person authenticated and whether with the one-time code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from openid.extensions import ax, sreg
from openid.extensions.draft import pape5
from openid.server.server import CheckIDRequest, OpenIDResponse, ProtocolError

from devtools.openid_provider.profiles import Profile

# Relying parties use three families of AX type URIs for the same three facts.
AX_TYPES: dict[str, str] = {
    f"{family}/{path}": field
    for family in ("http://axschema.org", "http://schema.openid.net", "http://openid.net/schema")
    for path, field in (("namePerson/friendly", "nickname"), ("contact/email", "email"), ("namePerson", "fullname"))
}


@dataclass(frozen=True)
class Requested:
    """What the relying party asked for, read once per request: each read deep-copies the whole message."""

    sreg: sreg.SRegRequest
    ax: ax.FetchRequest | None
    pape: pape5.Request | None = None

    def max_auth_age(self) -> int | None:
        """PAPE's ``max_auth_age``: the oldest authentication the relying party accepts, in seconds."""
        return None if self.pape is None else self.pape.max_auth_age

    def multi_factor(self) -> bool:
        """Whether the relying party prefers the multi-factor policy (PAPE §4)."""
        return self.pape is not None and pape5.AUTH_MULTI_FACTOR in self.pape.preferred_auth_policies


def check(request: CheckIDRequest) -> Requested:
    """Read the extension requests, refusing malformed arguments before anyone is asked to consent.

    Raises ProtocolError, which the endpoint sends back to the relying party.
    """
    try:
        return Requested(sreg.SRegRequest.fromOpenIDRequest(request), ax.FetchRequest.fromOpenIDRequest(request),
                         pape5.Request.fromOpenIDRequest(request))
    except (ValueError, KeyError) as exc:  # AXError, SRegNamespaceError and a bad max_auth_age are ValueErrors
        raise ProtocolError(request.message, f"malformed extension arguments: {exc}") from exc


def released(requested: Requested, profile: Profile) -> list[str]:
    """The field names the relying party asked for and would receive (for the consent page)."""
    fields: set[str] = set()
    if profile.sreg:
        fields.update(requested.sreg.allRequestedFields())
    fetch = requested.ax if profile.ax else None
    if fetch is not None:
        fields.update(AX_TYPES[uri] for uri in fetch.requested_attributes if uri in AX_TYPES)
    return sorted(fields & set(profile.fields))


def add_to(response: OpenIDResponse, requested: Requested, profile: Profile, username: str, auth_time: int,
           multi_factor: bool) -> None:
    """Attach the profile's SReg and AX answers for ``username`` to a positive assertion, and the PAPE answer:
    when the person authenticated (UTC, PAPE §5.2) and whether multi-factor (else the "none" policy)."""
    values = profile.attributes(username)
    if profile.sreg and requested.sreg.wereFieldsRequested():
        response.addExtension(sreg.SRegResponse.extractResponse(requested.sreg, values))
    fetch = requested.ax if profile.ax else None
    if fetch is not None:
        answer = ax.FetchResponse(fetch)
        for uri in fetch.requested_attributes:
            field = AX_TYPES.get(uri)
            if field in values:
                answer.addValue(uri, values[field])
        response.addExtension(answer)
    response.addExtension(pape5.Response([pape5.AUTH_MULTI_FACTOR] if multi_factor else [],
                                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(auth_time))))
