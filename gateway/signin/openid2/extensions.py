"""Asking for and reading nickname and e-mail through SReg and AX; step-up through PAPE.

Providers differ (Ubuntu One speaks SReg, others only AX, Steam neither), so
we ask through both. Only *signed* extension fields count: an unsigned field
could have been added by anyone on the way back. python3-openid raises
``AttributeError``/``AXError`` when AX fields are present but unsigned or
malformed; that is read as "no AX data".

Step-up asks through PAPE 1.0 (python3-openid's ``openid.extensions.draft.pape5``, the final 1.0
namespace): ``max_auth_age`` and ``preferred_auth_policies`` (a rule's ``acr_values`` are policy URIs
for an OpenID 2.0 provider, such as :data:`MULTI_FACTOR`). The answer's *signed* PAPE response gives
the :class:`~gateway.types.Assurance`: its ``auth_time`` and the policies the provider says it applied.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from openid.extensions import ax, sreg
from openid.extensions.draft import pape5

from gateway.types import Assurance, StepUp

logger = logging.getLogger("gateway.openid")

AX_NICKNAME = "http://axschema.org/namePerson/friendly"
AX_EMAIL = "http://axschema.org/contact/email"
MAX_FIELD = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def add_extension_requests(auth_request: Any, require_email: bool) -> None:
    """Ask for nickname and e-mail through SReg and AX."""
    required = ["email"] if require_email else []
    optional = ["nickname"] + ([] if require_email else ["email"])
    auth_request.addExtension(sreg.SRegRequest(required=required, optional=optional))
    fetch = ax.FetchRequest()
    fetch.add(ax.AttrInfo(AX_NICKNAME, alias="nickname", required=False))
    fetch.add(ax.AttrInfo(AX_EMAIL, alias="email", required=require_email))
    auth_request.addExtension(fetch)


MULTI_FACTOR = pape5.AUTH_MULTI_FACTOR


def add_pape_request(auth_request: Any, step_up: StepUp) -> None:
    """Ask for a sign-in that meets ``step_up`` (PAPE 1.0 §5.1: ``max_auth_age``, ``preferred_auth_policies``)."""
    auth_request.addExtension(pape5.Request(preferred_auth_policies=list(step_up.acr_values),
                                            max_auth_age=step_up.max_age))


def signed_assurance(success_response: Any, preferred: tuple[str, ...] = ()) -> Assurance | None:
    """The signed PAPE response's ``auth_time`` and policies (§5.2); None without a signed ``auth_time``.

    The ``acr`` is the first applied policy among ``preferred`` (what the sign-in asked for), else the first
    applied one; ``none`` is no policy.
    """
    response = pape5.Response.fromSuccessResponse(success_response)  # None unless every PAPE field is signed
    if response is None or not response.auth_time:
        return None
    try:
        auth_time = calendar.timegm(time.strptime(response.auth_time, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None
    applied = [policy for policy in response.auth_policies if policy != pape5.AUTH_NONE and len(policy) <= 200]
    acr = next((policy for policy in applied if policy in preferred), applied[0] if applied else "")
    return Assurance(float(auth_time), acr, ())


def _clean(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return _CONTROL.sub("", value).strip()[:MAX_FIELD]


def signed_profile(success_response: Any) -> tuple[str, str]:
    """Return ``(nickname, email)`` from signed SReg/AX fields; empty strings when absent."""
    nickname = email = ""
    sreg_response = sreg.SRegResponse.fromSuccessResponse(success_response, signed_only=True)
    if sreg_response is not None:
        nickname = _clean(sreg_response.get("nickname"))
        email = _clean(sreg_response.get("email"))
    try:
        ax_response = ax.FetchResponse.fromSuccessResponse(success_response, signed=True)
    except (AttributeError, ax.AXError, KeyError, ValueError) as exc:
        logger.info("ignoring unusable AX response: %s", exc)
        ax_response = None
    if ax_response is not None:
        try:
            nickname = nickname or _clean(ax_response.getSingle(AX_NICKNAME, ""))
            email = email or _clean(ax_response.getSingle(AX_EMAIL, ""))
        except ax.AXError as exc:
            logger.info("ignoring ambiguous AX values: %s", exc)
    if email and ("@" not in email or " " in email):
        email = ""
    return nickname, email


def fallback_nickname(nickname: str, email: str, claimed_id: str) -> str:
    """Nickname, else the e-mail's local part, else the identifier's last path segment."""
    if nickname:
        return nickname
    if email:
        return email.split("@", 1)[0]
    parts = urlsplit(claimed_id)
    segments = [s for s in parts.path.split("/") if s]
    return _clean(segments[-1] if segments else parts.hostname or claimed_id) or "user"
