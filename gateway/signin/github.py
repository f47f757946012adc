"""The OAuth 2.0 exchange with GitHub (``type = "oauth2"``, ``preset = "github"``): code flow, then its REST API.

GitHub speaks no OpenID Connect: there is no ID token to verify, so who the
person is comes from the API, called with the access token the code is
redeemed for. :meth:`OAuth2SignIn.authorize` builds the authorization request
(``state`` = the login state id, PKCE S256, which GitHub supports);
:meth:`OAuth2SignIn.complete` redeems the code (GitHub reports token errors
with status 200 and an ``error`` field) and reads ``/user``, ``/user/emails``
and, when ``groups_from`` asks, ``/user/orgs`` and ``/user/teams``.

Both block on the network through the SSRF-guarded, time- and size-capped
:class:`~gateway.fetch.fetcher.SafeFetcher`: run them on the sign-in threads.

The account key is ``<api_url>#<numeric user id>``: GitHub's ``login`` can be
renamed (and then taken by someone else), an e-mail address can be
reassigned, the numeric id never changes; the API URL tells github.com from a
GitHub Enterprise server. E-mail is passed on only when GitHub lists it as
primary *and* verified.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from gateway.errors import LoginFailed
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.methods import ButtonMethod
from gateway.signin.oidc.exchange import MAX_GROUP_LENGTH, MAX_GROUPS, authorization_code, s256_code_challenge
from gateway.signin.oidc.metadata import PROVIDER_ERROR, fetch_json
from gateway.signin.provider import Provider
from gateway.store.base import SignInProtocol
from gateway.types import Assurance, Identity, StepUp

API_ACCEPT = "application/vnd.github+json"
PER_PAGE = 100  # one page is enough: more than MAX_GROUPS is refused anyway


def user_id(api_url: str, github_id: int) -> str:
    """The account key of GitHub user ``github_id`` on the server whose REST API is at ``api_url``."""
    return f"{api_url}#{github_id}"


class OAuth2SignIn(ButtonMethod):
    """Begins and completes OAuth 2.0 sign-ins with the configured ``oauth2`` (GitHub) providers."""

    protocol: SignInProtocol = "oauth2"

    def __init__(self, providers: Sequence[Provider], fetcher: SafeFetcher, redirect_uri: str, *,
                 require_email: bool = False) -> None:
        self.providers = {p.name: p for p in providers if p.type == "oauth2"}
        self.fetcher = fetcher
        self.redirect_uri = redirect_uri
        self.require_email = require_email

    def authorize(self, provider: Provider, state: str,
                  step_up: StepUp | None = None) -> tuple[str, dict[str, object]]:
        """The authorization request for ``provider`` (no network: GitHub has no discovery).

        GitHub's OAuth 2.0 can be asked for no step-up (no ``max_age``, ``prompt``, ``acr_values``): ``step_up``
        is not sent, and the sign-in's time is ours (:meth:`complete`).
        """
        verifier = secrets.token_urlsafe(48)
        params = {
            "response_type": "code", "client_id": provider.client_id, "redirect_uri": self.redirect_uri,
            "scope": provider.scopes, "state": state, "allow_signup": "false",
            "code_challenge": s256_code_challenge(verifier), "code_challenge_method": "S256",
        }
        endpoint = provider.identifier
        url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
        return url, {"verifier": verifier}

    def complete(self, query: Mapping[str, str], current_url: str, data: Mapping[str, object]) -> Identity:
        """Redeem the code and read the person from the API; :class:`LoginFailed` on any doubt."""
        provider = self.providers.get(str(data.get("provider", "")))
        verifier = data.get("verifier")
        if provider is None or not isinstance(verifier, str):
            raise LoginFailed(f"login state names no configured OAuth 2.0 provider ({data.get('provider')!r})")
        code = authorization_code(query, provider.name)
        token = self._redeem(provider, code, verifier)
        return self._identity(provider, token)

    def _redeem(self, provider: Provider, code: str, verifier: str) -> str:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": verifier, "client_id": provider.client_id,
                "client_secret": str(provider.client_secret) if provider.client_secret is not None else ""}
        status, body = fetch_json(self.fetcher, provider.token_url, "token request", urlencode(form))
        if status != 200 or not isinstance(body, dict):
            raise LoginFailed(f"token endpoint {provider.token_url} answered {status} without JSON", PROVIDER_ERROR)
        if "error" in body:  # GitHub: status 200 with an error field (bad_verification_code, …)
            raise LoginFailed(f"token endpoint {provider.token_url} refused the code: {str(body['error'])[:100]}"
                              f" ({str(body.get('error_description', ''))[:200]})")
        token = body.get("access_token")
        if not isinstance(token, str) or not token or str(body.get("token_type", "bearer")).lower() != "bearer":
            raise LoginFailed(f"token endpoint {provider.token_url} sent no bearer access_token", PROVIDER_ERROR)
        return token

    def _api(self, provider: Provider, token: str, path: str) -> object:
        url = f"{provider.api_url}{path}"
        status, body = fetch_json(self.fetcher, url, "GitHub API", None,
                                  {"Accept": API_ACCEPT, "Authorization": f"Bearer {token}"})
        if status != 200 or body is None:
            raise LoginFailed(f"{url} answered {status}" + (" (scope missing?)" if status == 404 else ""),
                              PROVIDER_ERROR)
        return body

    def _identity(self, provider: Provider, token: str) -> Identity:
        user = self._api(provider, token, "/user")
        github_id = user.get("id") if isinstance(user, dict) else None
        login = user.get("login") if isinstance(user, dict) else None
        if isinstance(github_id, bool) or not isinstance(github_id, int) or github_id <= 0 \
                or not isinstance(login, str) or not 0 < len(login) <= 100:
            raise LoginFailed(f"{provider.api_url}/user has no numeric id and login", PROVIDER_ERROR)
        email = _primary_verified_email(self._api(provider, token, "/user/emails"))
        if self.require_email and not email:
            raise LoginFailed(f"no primary verified e-mail from {provider.name}", "email-required")
        # GitHub says nothing of when or how the person authenticated: the sign-in's own time counts (a round
        # trip through GitHub may not have asked for a password), at no acr.
        return Identity(user_id(provider.api_url, github_id), login, email, self._groups(provider, token),
                        provider.name, assurance=Assurance(time.time()))

    def _groups(self, provider: Provider, token: str) -> tuple[str, ...]:
        """Org logins and ``org/team-slug`` names, only from the sources ``groups_from`` names.

        They ride in the session cookie: beyond the bounds the sign-in is refused
        rather than cut short (a dropped group could slip past a deny rule).
        """
        names: list[object] = []
        if "orgs" in provider.groups_from:
            orgs = self._api(provider, token, f"/user/orgs?per_page={PER_PAGE}")
            names += [org.get("login") for org in orgs if isinstance(org, dict)] if isinstance(orgs, list) else [None]
        if "teams" in provider.groups_from:
            teams = self._api(provider, token, f"/user/teams?per_page={PER_PAGE}")
            names += [_team_name(team) for team in teams] if isinstance(teams, list) else [None]
        if len(names) > MAX_GROUPS or not all(isinstance(n, str) and 0 < len(n) <= MAX_GROUP_LENGTH for n in names):
            raise LoginFailed(f"{provider.name}: more than {MAX_GROUPS} orgs/teams, or one not named in 1 to "
                              f"{MAX_GROUP_LENGTH} characters", "too-many-groups")
        return tuple(sorted({str(n) for n in names}))


def _primary_verified_email(emails: object) -> str:
    """The address GitHub marks primary and verified; '' when there is none (never an unverified one)."""
    for entry in emails if isinstance(emails, list) else []:
        if isinstance(entry, dict) and entry.get("primary") is True and entry.get("verified") is True:
            address = entry.get("email")
            if isinstance(address, str) and "@" in address and len(address) <= 320:
                return address
    return ""


def _team_name(team: object) -> str | None:
    """``org/team-slug`` for one entry of ``/user/teams``."""
    if not isinstance(team, dict) or not isinstance(team.get("organization"), dict):
        return None
    org, slug = team["organization"].get("login"), team.get("slug")
    return f"{org}/{slug}" if isinstance(org, str) and isinstance(slug, str) and org and slug else None


__all__ = ["OAuth2SignIn", "user_id"]
