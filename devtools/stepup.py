"""What both development providers share for step-up: "stay signed in", the one-time code, the ignore switch.

A relying party that asks for a fresh or stronger sign-in (OpenID Connect's ``max_age``,
``prompt=login``, ``acr_values``; PAPE's ``max_auth_age`` and policies) can only be tested
against a provider that remembers a sign-in at all: the consent pages' "Stay signed in at this
provider" box (form field ``stay``) sets the provider's own cookie, and a later request from that
browser is answered without the form, with the *original* time and level of authentication,
unless the request asks for more. The second factor is a fixed development one-time code
(form field ``otp``). ``--ignore-step-up`` makes a provider disregard every such request while
still reporting the truth about the sign-in it used: the path where a relying party must refuse.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.responses import Response

STAY_FIELD = "stay"  # the consent forms' checkbox: remember this sign-in at the provider
OTP_FIELD = "otp"  # the consent forms' optional second factor
DEV_OTP = "123456"  # the development one-time code: anyone may know it, as anyone may be anyone here
SESSION_LIFETIME = 8 * 3600  # seconds a "stay signed in" cookie lasts (the provider forgets sooner on restart)
OTP_NEEDED = f"This site asks for a second factor: enter the one-time code (the development code is {DEV_OTP})."
OTP_WRONG = f"Wrong one-time code: the development code is {DEV_OTP}."


def stays(data: FormData) -> bool:
    """Whether the person ticked "Stay signed in at this provider"."""
    return data.get(STAY_FIELD) == "yes"


def second_factor(data: FormData, required: bool) -> tuple[bool, str | None]:
    """(whether the form carries the right one-time code, an error for the person or None).

    A wrong code is always an error; a missing one only when the request asks for the second factor.
    """
    value = data.get(OTP_FIELD)
    code = value.strip() if isinstance(value, str) else ""
    if not code:
        return False, OTP_NEEDED if required else None
    if not hmac.compare_digest(code.encode(), DEV_OTP.encode()):
        return False, OTP_WRONG
    return True, None


def remember_browser(response: Response, cookie: str, session_id: str) -> Response:
    """Set the provider's own session cookie (HttpOnly; SameSite=Lax, so the top-level redirect
    from a relying party carries it) on the answer to the consent form."""
    response.set_cookie(cookie, session_id, max_age=SESSION_LIFETIME, path="/", httponly=True, samesite="lax")
    return response
