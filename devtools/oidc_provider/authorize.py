"""The authorization endpoint and its consent page (OpenID Connect Core §3.1.2).

A request whose client or redirect URI is not registered gets a page, never a redirect
(RFC 6749 §4.1.2.1: an unchecked redirect URI would make us an open redirector). Any
other bad request goes back to the client as an ``error`` response. PKCE with S256 is
required (RFC 7636; OAuth 2.0 Security BCP §2.1.1): ``plain`` and no challenge are refused.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from devtools.oidc_provider.pages import error_page, page
from devtools.oidc_provider.provider import Provider, parameters, text_fields
from devtools.oidc_provider.state import ACR_MFA, ACR_PWD, ACR_VALUES, AuthorizationRequest, Grant, Session, User
from devtools.openid_provider.profiles import PROFILES, USERNAME_RULE, valid_username
from devtools.stepup import DEV_OTP, remember_browser, second_factor, stays

PATH = "/authorize"
SESSION_COOKIE = "devtools_oidc_session"  # "stay signed in": the provider session's sid
CONSENT_PATH = "/consent"
RESPONSE_MODES = ("query", "form_post")
PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest, unpadded
NAME_LIMIT = 100
GROUP = re.compile(r"[A-Za-z0-9 ._:/@-]{1,64}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
EXPIRED = ("This sign-in request is unknown, already answered or older than ten minutes. "
           "Start again from the site you came from.")


class BadRequest(ValueError):
    """A request the client must hear about: ``error`` is the RFC 6749 §4.1.2.1 code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _one(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if value else None


def _requested_acr(params: Mapping[str, str]) -> tuple[str, ...]:
    """The assurance levels the request accepts, among the ones this provider has (Core §3.1.2.1 ``acr_values``,
    and an essential ``acr`` in the ``claims`` parameter, §5.5.1.1); unknown values are ignored, as Core allows."""
    asked = params.get("acr_values", "").split()
    if params.get("claims"):
        try:
            claims = json.loads(params["claims"])
        except ValueError:
            raise BadRequest("invalid_request", "claims is not a JSON object (Core §5.5)") from None
        id_token = claims.get("id_token") if isinstance(claims, dict) else None
        if not isinstance(claims, dict) or not isinstance(id_token, dict | None):
            raise BadRequest("invalid_request", "claims is a JSON object whose id_token member is an object")
        acr = (id_token or {}).get("acr")
        if isinstance(acr, dict) and acr.get("essential") is True:
            values = acr.get("values", [acr.get("value")])
            asked += [value for value in values if isinstance(value, str)] if isinstance(values, list) else []
    return tuple(value for value in dict.fromkeys(asked) if value in ACR_VALUES)


def _max_age(params: Mapping[str, str]) -> int | None:
    value = params.get("max_age")
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 10:
        raise BadRequest("invalid_request", "max_age is a number of seconds (Core §3.1.2.1)")
    return int(value)


def check_request(params: Mapping[str, str], *, ignore_step_up: bool = False) -> AuthorizationRequest:
    """The request's parameters, once the redirect URI is known to be safe; raises BadRequest.

    ``ignore_step_up``: ``max_age``, ``prompt=login``, ``acr_values`` and ``claims`` are not even read.
    """
    mode = params.get("response_mode") or "query"
    if mode not in RESPONSE_MODES:
        raise BadRequest("invalid_request", f"response_mode must be one of {', '.join(RESPONSE_MODES)}")
    prompt = params.get("prompt", "").split()
    if "none" in prompt and len(prompt) > 1:
        raise BadRequest("invalid_request", "prompt=none goes with no other prompt value (Core §3.1.2.1)")
    auth = AuthorizationRequest(
        client_id=params["client_id"], redirect_uri=params["redirect_uri"],
        scope=tuple(params.get("scope", "").split()), state=_one(params, "state"), nonce=_one(params, "nonce"),
        code_challenge=params.get("code_challenge", ""), response_mode=mode,
        openid2_realm=_one(params, "openid2_realm"), prompt_login=not ignore_step_up and "login" in prompt,
        max_age=None if ignore_step_up else _max_age(params),
        acr_values=() if ignore_step_up else _requested_acr(params),
    )
    if params.get("response_type") != "code":
        raise BadRequest("unsupported_response_type", "only the authorization code flow (response_type=code)")
    if "openid" not in auth.scope:
        raise BadRequest("invalid_scope", "scope must include openid")
    if params.get("code_challenge_method") != "S256":
        raise BadRequest("invalid_request", "PKCE is required with code_challenge_method=S256 (plain is refused)")
    if not PKCE_CHALLENGE.fullmatch(auth.code_challenge):
        raise BadRequest("invalid_request", "code_challenge must be 43 base64url characters (S256)")
    return auth


def satisfies(session: Session, auth: AuthorizationRequest, now: int) -> bool:
    """Whether the provider session may answer ``auth`` without the form: the same client, and nothing
    asked that it lacks (a new authentication, a more recent one, or another level)."""
    if auth.client_id not in session.client_ids or auth.prompt_login:
        return False
    if auth.max_age is not None and (auth.max_age == 0 or now - session.auth_time > auth.max_age):
        return False  # Core §3.1.2.1: max_age=0 is prompt=login
    return not auth.acr_values or session.acr in auth.acr_values


def _field(data: FormData, name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def user_from_form(data: FormData, auth: AuthorizationRequest,
                   openid2_provider: str | None = None) -> tuple[User | None, str | None]:
    """The person the form describes, or an error message for them.

    With ``openid2_provider`` (a local OpenID 2.0 provider's URL) an empty
    ``openid2_id`` field means the identifier of the same user name there.
    """
    username, email = _field(data, "username"), _field(data, "email")
    groups = tuple(group.strip() for group in _field(data, "groups").split(",") if group.strip())
    openid2_id = _field(data, "openid2_id") if auth.openid2_realm else ""
    if auth.openid2_realm and not openid2_id and openid2_provider and valid_username(username):
        openid2_id = PROFILES[0].claimed_id(openid2_provider, username)
    if not valid_username(username):
        return None, f"Not a valid user name. User names are {USERNAME_RULE}."
    if email and not EMAIL.fullmatch(email):
        return None, "Not a valid e-mail address."
    if len(_field(data, "name")) > NAME_LIMIT:
        return None, f"A full name is at most {NAME_LIMIT} characters."
    if not all(GROUP.fullmatch(group) for group in groups):
        return None, "Groups are separated by commas, each 1 to 64 letters, digits, spaces or . _ : / @ -"
    if openid2_id and urlsplit(openid2_id).scheme not in ("http", "https"):
        return None, "The OpenID 2.0 identifier is an http(s) URL."
    user = User(username=username, name=_field(data, "name") or username, email=email or None,
                email_verified=bool(email) and data.get("email_verified") == "yes", groups=groups,
                openid2_id=openid2_id or None)
    return user, None


class Authorization:
    """``/authorize`` shows the consent page; ``POST /consent`` answers with a code or access_denied."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.authorize, methods=["GET", "POST"]),
                Route(CONSENT_PATH, self.decide, methods=["POST"])]

    async def authorize(self, request: Request) -> Response:
        params = await parameters(request)
        client = self.provider.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page(request, 400, "Unknown client_id: this provider does not know the site that sent you.")
        if params.get("redirect_uri") not in client.redirect_uris:
            return error_page(request, 400, "redirect_uri is not one the client registered (compared exactly).")
        try:
            auth = check_request(params, ignore_step_up=self.provider.ignore_step_up)
        except BadRequest as exc:
            mode = params.get("response_mode", "query")
            fallback = AuthorizationRequest(client.client_id, params["redirect_uri"], (), _one(params, "state"),
                                            None, "", mode if mode in RESPONSE_MODES else "query", None)
            return self.provider.respond(request, fallback, {"error": exc.error, "error_description": exc.description})
        sid = request.cookies.get(SESSION_COOKIE, "")
        session = self.provider.sessions.get(sid)
        if session is not None and satisfies(session, auth, int(time.time())):  # signed in here already
            grant = Grant(auth, session.user, sid, session.auth_time, session.acr, session.amr)
            return self.provider.respond(request, auth, {"code": self.provider.codes.add(grant)})
        if params.get("prompt") == "none":
            return self.provider.respond(request, auth, {"error": "login_required",
                                                         "error_description": "nobody is signed in here"})
        return self.form(request, self.provider.pending.add(auth), auth)

    def form(self, request: Request, token: str, auth: AuthorizationRequest, *, error: str | None = None,
             values: Mapping[str, str] | None = None, status_code: int = 200) -> Response:
        """The consent form (re-shown with ``error`` and the person's ``values`` after a mistake)."""
        values = values or {"email_verified": "yes"}
        context = {"action": CONSENT_PATH, "token": token, "auth": auth, "values": values, "error": error,
                   "username_rule": USERNAME_RULE, "groups_claim": self.provider.groups_claim,
                   "openid2_provider": self.provider.openid2_provider,
                   "otp_required": _otp_required(auth), "dev_otp": DEV_OTP}
        return page(request, "consent.html", context, status_code=status_code)

    async def decide(self, request: Request) -> Response:
        async with request.form() as data:
            token, decision = _field(data, "token"), _field(data, "decision")
            auth = self.provider.pending.get(token)
            if auth is None:
                return error_page(request, 400, EXPIRED)
            values = text_fields(data)
            user, error = user_from_form(data, auth, self.provider.openid2_provider)
            otp, otp_error = second_factor(data, _otp_required(auth))
            stay = stays(data)
        if decision not in ("allow", "deny"):
            return self.form(request, token, auth, error="Choose Allow or Deny.", values=values, status_code=400)
        if decision == "allow" and (user is None or otp_error):
            return self.form(request, token, auth, error=error or otp_error, values=values, status_code=400)
        if self.provider.pending.take(token) is None:  # answered meanwhile by another submission
            return error_page(request, 400, EXPIRED)
        if decision == "deny" or user is None:
            return self.provider.respond(request, auth, {"error": "access_denied",
                                                         "error_description": "The person denied the request."})
        now = int(time.time())
        acr, amr = (ACR_MFA, ("pwd", "otp")) if otp else (ACR_PWD, ("pwd",))
        sid = self.provider.sessions.add(Session(user, now, {auth.client_id}, acr, amr))
        code = self.provider.codes.add(Grant(auth, user, sid, now, acr, amr))
        response = self.provider.respond(request, auth, {"code": code})
        return remember_browser(response, SESSION_COOKIE, sid) if stay else response


def _otp_required(auth: AuthorizationRequest) -> bool:
    """The form insists on the one-time code when the request accepts the multi-factor level only."""
    return auth.acr_values == (ACR_MFA,)
