"""A GitHub-style OAuth 2.0 fake under ``/github``: GitHub's endpoints and JSON shapes, nothing more.

Laid out like GitHub Enterprise Server (``/login/oauth/...`` and the REST API under
``/api/v3``), so a relying party's "GitHub with overridden endpoints" configuration is
what it tests. Shapes follow GitHub's documentation: the token endpoint answers
form-encoded unless the client accepts JSON, and reports errors with status 200 and an
``error`` field; ``/user`` shows no e-mail (as for anyone who keeps theirs private), so
the primary *verified* one must come from ``/user/emails`` (scope ``user:email``);
``/user/orgs`` and ``/user/teams`` need ``read:org``. The registered clients are the
OpenID Connect provider's; PKCE (S256) is optional, as at GitHub.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from devtools.oidc_provider.authorize import EMAIL, NAME_LIMIT, PKCE_CHALLENGE
from devtools.oidc_provider.pages import GITHUB_TOOL, error_page, page
from devtools.oidc_provider.provider import Provider, parameters, text_fields, with_query
from devtools.oidc_provider.state import Expiring
from devtools.oidc_provider.token_endpoint import VERIFIER, s256
from devtools.openid_provider.profiles import USERNAME_RULE, valid_username

PREFIX = "/github"
DOCS = "https://docs.github.com/rest"
SLUG = re.compile(r"[A-Za-z0-9_.-]{1,39}")
EXPIRED = "This sign-in request is unknown, already answered or too old. Start again from the site you came from."


@dataclass(frozen=True)
class GitHubUser:
    login: str
    name: str
    email: str | None
    verified: bool
    other_email: str | None
    orgs: tuple[str, ...]
    teams: tuple[tuple[str, str], ...]  # (org, team slug)


@dataclass(frozen=True)
class GitHubGrant:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    user: GitHubUser | None = None


def number(kind: str, name: str) -> int:
    """A stable numeric id, as GitHub's ids are."""
    return int(hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:8], 16)


def _field(data: FormData, name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def user_from_form(data: FormData) -> tuple[GitHubUser | None, str | None]:
    login, email, other = _field(data, "login"), _field(data, "email"), _field(data, "other_email")
    teams = [tuple(team.split("/", 1)) for team in _names(_field(data, "teams"))]
    orgs = _names(_field(data, "orgs"))
    if not valid_username(login) or len(login) > 39:
        return None, f"Not a valid login. Logins here are {USERNAME_RULE}, at most 39."
    if any(address and not EMAIL.fullmatch(address) for address in (email, other)):
        return None, "Not a valid e-mail address."
    if len(_field(data, "name")) > NAME_LIMIT:
        return None, f"A name is at most {NAME_LIMIT} characters."
    if not all(SLUG.fullmatch(org) for org in orgs) or \
            not all(len(team) == 2 and all(SLUG.fullmatch(part) for part in team) for team in teams):
        return None, "Organisations are comma-separated logins; teams are comma-separated org/team-slug pairs."
    all_orgs = tuple(dict.fromkeys([*orgs, *(team[0] for team in teams)]))
    return GitHubUser(login, _field(data, "name") or login, email or None, data.get("verified") == "yes",
                      other or None, all_orgs, tuple((org, slug) for org, slug in teams)), None


def _org(base: str, login: str) -> dict[str, Any]:
    api = f"{base}/api/v3/orgs/{login}"
    return {"login": login, "id": number("org", login), "node_id": f"O_{number('org', login)}", "url": api,
            "repos_url": f"{api}/repos", "events_url": f"{api}/events", "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues", "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{base}/avatars/{login}", "description": None}


class GitHubFake:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.pending: Expiring[GitHubGrant] = Expiring(600.0)
        self.codes: Expiring[GitHubGrant] = Expiring(600.0)  # GitHub: codes expire after 10 minutes
        self.tokens: Expiring[GitHubGrant] = Expiring(8 * 3600.0)

    def routes(self) -> list[BaseRoute]:
        return [Mount(PREFIX, routes=[
            Route("/", self.home),
            Route("/login/oauth/authorize", self.authorize),
            Route("/consent", self.decide, methods=["POST"]),
            Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
            Route("/api/v3/user", self.user),
            Route("/api/v3/user/emails", self.emails),
            Route("/api/v3/user/orgs", self.orgs),
            Route("/api/v3/user/teams", self.teams),
        ])]

    def base(self, request: Request) -> str:
        return self.provider.issuer(request) + PREFIX

    async def home(self, request: Request) -> Response:
        return page(request, "github_home.html", {"base": self.base(request)}, tool=GITHUB_TOOL)

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        client = self.provider.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page(request, 404, "Unknown client_id (GitHub shows a 404 page here).", tool=GITHUB_TOOL)
        redirect_uri = params.get("redirect_uri") or client.redirect_uris[0]
        if redirect_uri not in client.redirect_uris:
            return error_page(request, 400, "The redirect_uri is not associated with this application.",
                              tool=GITHUB_TOOL)
        challenge = params.get("code_challenge")
        if challenge is not None and (params.get("code_challenge_method") != "S256"
                                      or not PKCE_CHALLENGE.fullmatch(challenge)):
            return RedirectResponse(with_query(redirect_uri, {
                "error": "invalid_request", "error_description": "code_challenge_method must be S256",
                **({"state": params["state"]} if params.get("state") else {})}), status_code=302)
        scopes = tuple(scope for scope in re.split(r"[ ,]+", params.get("scope", "")) if scope)
        grant = GitHubGrant(client.client_id, redirect_uri, scopes, params.get("state"), challenge)
        return self.form(request, self.pending.add(grant), grant)

    def form(self, request: Request, token: str, grant: GitHubGrant, *, error: str | None = None,
             values: dict[str, str] | None = None, status_code: int = 200) -> Response:
        context = {"token": token, "grant": grant, "error": error, "values": values or {"verified": "yes"},
                   "action": f"{PREFIX}/consent"}
        return page(request, "github_consent.html", context, status_code=status_code, tool=GITHUB_TOOL)

    async def decide(self, request: Request) -> Response:
        async with request.form() as data:
            token, decision = _field(data, "token"), _field(data, "decision")
            grant = self.pending.get(token)
            if grant is None:
                return error_page(request, 400, EXPIRED, tool=GITHUB_TOOL)
            values = text_fields(data)
            user, error = user_from_form(data)
        if decision == "allow" and user is None:
            return self.form(request, token, grant, error=error, values=values, status_code=400)
        if decision not in ("allow", "deny") or self.pending.take(token) is None:
            return error_page(request, 400, EXPIRED, tool=GITHUB_TOOL)
        state = {"state": grant.state} if grant.state else {}
        if decision == "deny" or user is None:
            return RedirectResponse(with_query(grant.redirect_uri, {
                "error": "access_denied", "error_description": "The user has denied your application access.",
                "error_uri": f"{DOCS}/authorizing-oauth-apps", **state}), status_code=302)
        code = self.codes.add(GitHubGrant(grant.client_id, grant.redirect_uri, grant.scopes, grant.state,
                                          grant.code_challenge, user), secrets.token_hex(10))
        return RedirectResponse(with_query(grant.redirect_uri, {"code": code, **state}), status_code=302)

    async def access_token(self, request: Request) -> Response:
        """GitHub's token endpoint: errors come with status 200, as GitHub sends them."""
        form = await parameters(request)
        client = self.provider.clients.get(form.get("client_id", ""))
        grant = self.codes.take(form.get("code", ""))
        verifier = form.get("code_verifier", "")
        if client is None or not client.secret_matches(form.get("client_secret", "")):
            body = {"error": "incorrect_client_credentials",
                    "error_description": "The client_id and/or client_secret passed are incorrect."}
        elif grant is None or grant.client_id != client.client_id or (grant.code_challenge is not None and not (
                VERIFIER.fullmatch(verifier) and hmac.compare_digest(s256(verifier), grant.code_challenge))):
            body = {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}
        elif form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            body = {"error": "redirect_uri_mismatch", "error_description":
                    "The redirect_uri MUST match the registered callback URL for this application."}
        else:
            token = self.tokens.add(grant, "gho_" + secrets.token_urlsafe(27))
            body = {"access_token": token, "token_type": "bearer", "scope": ",".join(grant.scopes)}
        if "error" in body:
            body["error_uri"] = f"{DOCS}/troubleshooting-oauth-app-access-token-request-errors"
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(body)
        return Response(urlencode(body), media_type="application/x-www-form-urlencoded")

    def _grant(self, request: Request) -> GitHubGrant | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return self.tokens.get(token.strip()) if scheme.lower() in ("bearer", "token") else None

    def _api(self, request: Request, needs: tuple[str, ...], answer: Any) -> Response:
        """Answer an API call as GitHub does: 401 without a token, 404 without the scope."""
        grant = self._grant(request)
        if grant is None or grant.user is None:
            return JSONResponse({"message": "Requires authentication", "documentation_url": DOCS,
                                 "status": "401"}, status_code=401)
        headers = {"X-OAuth-Scopes": ", ".join(grant.scopes), "X-Accepted-OAuth-Scopes": ", ".join(needs)}
        if needs and not set(needs) & set(grant.scopes):
            return JSONResponse({"message": "Not Found", "documentation_url": DOCS, "status": "404"},
                                status_code=404, headers=headers)
        return JSONResponse(answer(grant.user), headers=headers)

    async def user(self, request: Request) -> Response:
        base = self.base(request)

        def shape(user: GitHubUser) -> dict[str, Any]:
            user_id = number("user", user.login)
            return {"login": user.login, "id": user_id, "node_id": f"U_{user_id}",
                    "avatar_url": f"{base}/avatars/{user.login}", "gravatar_id": "",
                    "url": f"{base}/api/v3/users/{user.login}", "html_url": f"{base}/{user.login}",
                    "type": "User", "site_admin": False, "name": user.name, "company": None, "blog": "",
                    "location": None, "email": None, "hireable": None, "bio": None,
                    "created_at": "2020-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        return self._api(request, (), shape)

    async def emails(self, request: Request) -> Response:
        def shape(user: GitHubUser) -> list[dict[str, Any]]:
            listed = [(user.email, True, user.verified), (user.other_email, False, False)]
            return [{"email": email, "primary": primary, "verified": verified, "visibility": "private"
                     if primary else None} for email, primary, verified in listed if email]
        return self._api(request, ("user:email", "user"), shape)

    async def orgs(self, request: Request) -> Response:
        base = self.base(request)
        return self._api(request, ("read:org", "admin:org"), lambda user: [_org(base, org) for org in user.orgs])

    async def teams(self, request: Request) -> Response:
        base = self.base(request)

        def shape(user: GitHubUser) -> list[dict[str, Any]]:
            return [{"id": number("team", f"{org}/{slug}"), "node_id": f"T_{number('team', f'{org}/{slug}')}",
                     "url": f"{base}/api/v3/orgs/{org}/teams/{slug}", "html_url": f"{base}/orgs/{org}/teams/{slug}",
                     "name": slug, "slug": slug, "description": None, "privacy": "closed",
                     "notification_setting": "notifications_enabled", "permission": "pull",
                     "members_url": f"{base}/api/v3/orgs/{org}/teams/{slug}/members{{/member}}",
                     "repositories_url": f"{base}/api/v3/orgs/{org}/teams/{slug}/repos", "parent": None,
                     "organization": _org(base, org)} for org, slug in user.teams]
        return self._api(request, ("read:org", "admin:org"), shape)
