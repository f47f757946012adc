"""The OpenID Connect exchange: authorization code flow with PKCE, the ID token checked with joserfc.

:meth:`OIDCSignIn.begin` builds the authorization request (PKCE S256 always,
``state`` = the login state id, a fresh ``nonce``) and returns what the login
state must keep (:mod:`gateway.signin.loginstate`). :meth:`OIDCSignIn.complete` takes
the provider's answer: the RFC 9207 ``iss`` parameter (mix-up defence), the
token request (client_secret_basic or _post, as discovery says) and the ID
token, verified by joserfc — signature against the provider's JWKS with only
asymmetric algorithms it announces, ``iss``, ``aud``, ``azp``, ``exp``,
``iat``, ``nonce`` — never by hand. When the ID token leaves out the e-mail,
user name or groups claims and discovery names a ``userinfo_endpoint``, they
are read from it with the access token (Core §5.3), whose ``sub`` must be
the ID token's (§5.3.2: a response for somebody else is refused).

A provider configured with ``openid2_migration`` gets our OpenID 2.0 realm
(``openid2_realm``) and its ``openid2_id`` claim is handed on unverified in
:attr:`OIDCIdentity.openid2`: :mod:`gateway.signin.oidc.migration` verifies it.

A step-up (a rule's ``max_age``/``acr_values``) asks with Core §3.1.2.1's ``max_age``,
``prompt=login`` and ``acr_values``, and with an essential ``acr`` in the ``claims`` parameter
(§5.5.1.1) where discovery says ``claims_parameter_supported``. The ID token's ``auth_time``,
``acr`` and ``amr`` become the identity's :class:`~gateway.types.Assurance`, judged against what
was asked by :meth:`SignInMethods.complete <gateway.signin.methods.SignInMethods.complete>`.

Both methods block on the network (through the SSRF-guarded
:class:`~gateway.fetch.fetcher.SafeFetcher`): run them on the sign-in
threads (:class:`~gateway.signin.capacity.SignInCapacity`).

The account key is ``<issuer>#<sub>``: ``sub`` is unique only per issuer, an
issuer URL has no fragment (so the first ``#`` splits it), and an e-mail
address is never a key (providers reassign them). E-mail is passed on only
when the provider says ``email_verified: true``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from gateway.errors import LoginCancelled, LoginFailed
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.methods import ButtonMethod
from gateway.signin.oidc.metadata import PROVIDER_ERROR, ProviderDocument, ProviderMetadata, fetch_json
from gateway.signin.oidc.migration import OpenID2Claim, openid2_realm
from gateway.signin.provider import Provider
from gateway.store.base import SignInProtocol
from gateway.types import Assurance, Identity, StepUp

LEEWAY = 60  # seconds of clock difference tolerated on exp and iat
MAX_GROUPS = 30  # the groups ride in the session cookie (at most 4096 bytes)
MAX_GROUP_LENGTH = 50
_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F))


def s256_code_challenge(verifier: str) -> str:
    """PKCE's S256 challenge (RFC 7636 §4.2): ``BASE64URL(SHA256(ASCII(code_verifier)))``, unpadded.

    One line of the standard library: the OAuth 2.0 client library it used to come from was a
    dependency for this alone.
    """
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class ProviderLogin:
    """What logging out at the provider needs: kept server-side with the session, never in its cookie."""

    provider: str  # the configured provider's name
    sub: str
    sid: str | None  # the provider's session id (Front/Back-Channel Logout), when its ID token has one
    id_token: str  # the ``id_token_hint`` of an RP-initiated logout


@dataclass(frozen=True, slots=True)
class OIDCIdentity(Identity):
    """An :class:`Identity` from an OpenID Connect sign-in, with what its session needs for logout."""

    login: ProviderLogin | None = None
    openid2: OpenID2Claim | None = None  # an unverified openid2_id (OpenID 2.0 to OpenID Connect Migration)


def provider_login(identity: Identity) -> ProviderLogin | None:
    """What logging out at the provider needs, for a session an OpenID Connect sign-in starts (else None)."""
    return identity.login if isinstance(identity, OIDCIdentity) else None


def authorization_code(query: Mapping[str, str], provider: str) -> str:
    """The code of an authorization response (RFC 6749 §4.1.2), or why there is none.

    ``access_denied`` is the person saying no (:class:`LoginCancelled`); any
    other error, or an answer without a code, fails the sign-in.
    """
    error = query.get("error")
    if error == "access_denied":
        raise LoginCancelled()
    if error is not None:
        description = query.get("error_description", "")[:200]
        raise LoginFailed(f"{provider} answered error {error[:100]!r}: {description!r}")
    code = query.get("code", "")
    if not code:
        raise LoginFailed(f"{provider} answered without a code")
    return code


def client_request(provider: Provider, method: str, form: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The body and headers of a request the client authenticates with its secret (token endpoint, introspection):
    client_secret_basic (RFC 6749 §2.3.1: each half form-urlencoded first) or client_secret_post."""
    secret = str(provider.client_secret) if provider.client_secret is not None else ""
    if method == "client_secret_basic":
        pair = f"{urlencode({'': provider.client_id})[1:]}:{urlencode({'': secret})[1:]}"
        return urlencode(form), {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    return urlencode({**form, "client_id": provider.client_id, "client_secret": secret}), {}


def user_id(issuer: str, sub: str) -> str:
    """The account key of ``sub`` at ``issuer``."""
    return f"{issuer}#{sub}"


class OIDCSignIn(ButtonMethod):
    """Begins and completes OpenID Connect sign-ins with the configured ``oidc`` providers."""

    protocol: SignInProtocol = "oidc"

    def __init__(self, providers: Sequence[Provider], fetcher: SafeFetcher, redirect_uri: str, *,
                 require_email: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.providers = {p.name: p for p in providers if p.type == "oidc"}
        self.fetcher = fetcher
        self.redirect_uri = redirect_uri
        self.require_email = require_email
        self.clock = clock
        self.metadata = {p.name: ProviderMetadata(p.issuer, fetcher) for p in self.providers.values()}

    def authorize(self, provider: Provider, state: str,
                  step_up: StepUp | None = None) -> tuple[str, dict[str, object]]:
        """The authorization request for ``provider`` (discovery may be fetched: blocks)."""
        document = self.metadata[provider.name].document()
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24)
        params = {
            "response_type": "code", "client_id": provider.client_id, "redirect_uri": self.redirect_uri,
            "scope": provider.scopes, "state": state, "nonce": nonce,
            "code_challenge": s256_code_challenge(verifier), "code_challenge_method": "S256",
        }
        if provider.openid2_migration:  # Migration §2: the realm our OpenID 2.0 sign-in uses
            params["openid2_realm"] = openid2_realm(self.redirect_uri)
        if step_up is not None:
            params |= step_up_params(step_up, document.claims_parameter_supported)
        endpoint = document.authorization_endpoint
        url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
        return url, {"nonce": nonce, "verifier": verifier}

    def complete(self, query: Mapping[str, str], current_url: str, data: Mapping[str, object]) -> Identity:
        """Check the answer, redeem the code and verify the ID token; :class:`LoginFailed` on any doubt."""
        provider = self.providers.get(str(data.get("provider", "")))
        nonce, verifier = data.get("nonce"), data.get("verifier")
        if provider is None or not isinstance(nonce, str) or not isinstance(verifier, str):
            raise LoginFailed(f"login state names no configured OpenID Connect provider ({data.get('provider')!r})")
        metadata = self.metadata[provider.name]
        document = metadata.document()
        answered_iss = query.get("iss")
        if (document.iss_parameter_supported or answered_iss is not None) and answered_iss != document.issuer:
            raise LoginFailed(f"authorization response iss {str(answered_iss)[:200]!r} is not {document.issuer}"
                              " (RFC 9207: an answer meant for another provider, a mix-up attack?)")
        code = authorization_code(query, provider.name)
        id_token, access_token = self._redeem(provider, document.token_endpoint, document.token_auth_method, code,
                                              verifier)
        claims = self._verify(provider, metadata, document.algorithms, id_token, nonce)
        identity = self._identity(provider, document.issuer, self._with_userinfo(provider, document, access_token,
                                                                                 claims))
        sid = claims.get("sid")
        login = ProviderLogin(provider.name, claims["sub"], sid if isinstance(sid, str) and sid else None, id_token)
        return OIDCIdentity(identity.user_id, identity.nickname, identity.email, identity.groups, identity.provider,
                            assurance=token_assurance(claims, provider.name), login=login,
                            openid2=self._openid2_claim(provider, document, claims))

    def end_session_url(self, provider_name: str, id_token: str, post_logout_redirect_uri: str,
                        state: str | None = None) -> str | None:
        """Where RP-initiated logout sends the browser, or None (not asked for, or no ``end_session_endpoint``).

        ``state`` comes back to ``post_logout_redirect_uri`` unchanged (:mod:`gateway.signin.logout_return`).

        Blocks: discovery may be fetched (:class:`LoginFailed` when it fails).
        """
        provider = self.providers.get(provider_name)
        if provider is None or not provider.logout_at_provider:
            return None
        endpoint = self.metadata[provider.name].document().end_session_endpoint
        if endpoint is None:
            return None
        params = {"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri,
                  "client_id": provider.client_id}
        if state is not None:
            params["state"] = state
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)

    def _redeem(self, provider: Provider, endpoint: str, method: str, code: str, verifier: str) -> tuple[str, str]:
        """The ID token and the access token ('' when none or not a bearer token) the code is redeemed for."""
        body_text, headers = client_request(provider, method, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
            "code_verifier": verifier})
        status, body = fetch_json(self.fetcher, endpoint, "token request", body_text, headers)
        if status != 200 or not isinstance(body, dict):
            detail = body.get("error") if isinstance(body, dict) else None
            raise LoginFailed(f"token endpoint {endpoint} answered {status} ({str(detail)[:100]})")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise LoginFailed(f"token endpoint {endpoint} sent no id_token")
        access_token = body.get("access_token")
        bearer = str(body.get("token_type", "")).lower() == "bearer"
        return id_token, access_token if isinstance(access_token, str) and bearer else ""

    def _with_userinfo(self, provider: Provider, document: ProviderDocument, access_token: str,
                       claims: dict[str, Any]) -> dict[str, Any]:
        """The ID token's claims, with e-mail, user name and groups from userinfo when the token lacks them.

        The ID token wins wherever it speaks; ``email`` and ``email_verified``
        come together from one source, so an unverified address never borrows
        the other source's ``email_verified: true``.
        """
        wanted = ("email", "preferred_username", *((provider.groups_claim,) if provider.groups_claim else ()))
        endpoint = document.userinfo_endpoint
        if all(key in claims for key in wanted) or endpoint is None or not access_token:
            return claims
        status, body = fetch_json(self.fetcher, endpoint, "userinfo", None, {"Authorization": f"Bearer {access_token}"})
        if status != 200 or not isinstance(body, dict):
            raise LoginFailed(f"userinfo {endpoint} answered {status} without a JSON object", PROVIDER_ERROR)
        if body.get("sub") != claims["sub"]:  # Core §5.3.2: MUST match, else the response MUST NOT be used
            raise LoginFailed(f"userinfo {endpoint} answered for sub {str(body.get('sub'))[:100]!r}, not the ID "
                              f"token's {claims['sub'][:100]!r} (a substituted response?)")
        merged = dict(claims)
        if "email" not in claims:
            merged.pop("email_verified", None)
            merged |= {key: body[key] for key in ("email", "email_verified") if key in body}
        merged |= {key: body[key] for key in wanted[1:] if key not in claims and key in body}
        return merged

    def _openid2_claim(self, provider: Provider, document: ProviderDocument,
                       claims: Mapping[str, Any]) -> OpenID2Claim | None:
        """The ``openid2_id`` to verify, from a provider we migrate from; ignored from any other."""
        value = claims.get("openid2_id")
        if not provider.openid2_migration or value is None:
            return None
        if not isinstance(value, str) or not value:
            raise LoginFailed(f"ID token from {provider.name}: openid2_id is not a string", "migration-refused")
        return OpenID2Claim(value, claims["iss"], document.authorization_endpoint)

    def _verify(self, provider: Provider, metadata: ProviderMetadata, algorithms: Sequence[str], id_token: str,
                nonce: str) -> dict[str, Any]:
        """The ID token's claims, after joserfc has checked the signature and the claims."""
        try:
            claims = metadata.decode(id_token, algorithms)
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": metadata.issuer},
                "aud": {"essential": True, "value": provider.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "nonce": {"essential": True, "value": nonce},
            }
            audiences = claims.get("aud")
            if "azp" in claims or (isinstance(audiences, list) and len(audiences) > 1):
                options["azp"] = {"essential": True, "value": provider.client_id}  # Core §3.1.3.7 items 4 and 5
            JWTClaimsRegistry(now=int(self.clock()), leeway=LEEWAY, **options).validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise LoginFailed(f"ID token from {provider.name} refused: {type(exc).__name__}: {exc}") from exc
        return claims

    def _identity(self, provider: Provider, issuer: str, claims: Mapping[str, Any]) -> Identity:
        sub = claims["sub"]
        if not (0 < len(sub) <= 255 and set(sub) <= _PRINTABLE):
            raise LoginFailed(f"ID token from {provider.name}: sub is not 1-255 printable ASCII characters")
        email = claims.get("email")
        verified = claims.get("email_verified") is True
        email = email if verified and isinstance(email, str) and "@" in email and len(email) <= 320 else ""
        if self.require_email and not email:
            raise LoginFailed(f"no verified e-mail from {provider.name}", "email-required")
        username = claims.get("preferred_username")
        nickname = username if isinstance(username, str) and username.strip() else email or sub
        groups = claim_groups(claims, provider.groups_claim, provider.name)
        return Identity(user_id(issuer, sub), nickname[:200], email, groups, provider.name)


def step_up_params(step_up: StepUp, claims_parameter: bool) -> dict[str, str]:
    """The authorization request's step-up parameters (Core §3.1.2.1, §5.5.1.1).

    ``prompt=login`` always: the provider must authenticate the person now, not vouch for its own session
    (which is what the gateway's session already says). ``max_age`` and ``acr_values`` as asked; with
    ``claims_parameter``, ``acr`` asked as an essential claim too (a voluntary ``acr_values`` may be ignored).
    """
    params = {"prompt": "login"}
    if step_up.max_age is not None:
        params["max_age"] = str(step_up.max_age)
    if step_up.acr_values:
        params["acr_values"] = " ".join(step_up.acr_values)
        if claims_parameter:
            essential = {"id_token": {"acr": {"essential": True, "values": list(step_up.acr_values)}}}
            params["claims"] = json.dumps(essential, separators=(",", ":"))
    return params


def token_assurance(claims: Mapping[str, Any], provider: str) -> Assurance | None:
    """The ``auth_time``, ``acr`` and ``amr`` claims (Core §2) of a verified token; None without ``auth_time``.

    A malformed one is refused, not ignored: it is what a step-up rule will trust.
    """
    auth_time, acr, amr = claims.get("auth_time"), claims.get("acr", ""), claims.get("amr", [])
    if auth_time is not None and (isinstance(auth_time, bool) or not isinstance(auth_time, int | float)
                                  or auth_time <= 0):
        raise LoginFailed(f"token from {provider}: auth_time {str(auth_time)[:40]!r} is not a time")
    if not isinstance(acr, str) or len(acr) > 200 or not isinstance(amr, list) or len(amr) > 10 \
            or not all(isinstance(method, str) and len(method) <= 50 for method in amr):
        raise LoginFailed(f"token from {provider}: acr or amr is malformed")
    if auth_time is None:
        return None
    return Assurance(float(auth_time), acr, tuple(amr))


def claim_groups(claims: Mapping[str, Any], claim: str, provider: str) -> tuple[str, ...]:
    """The groups the configured claim names (a list of names, or one name); none when not configured.

    They travel in the session cookie, so their number and length are bounded;
    beyond the bounds the sign-in is refused rather than cut short: dropping a
    group could slip past a rule that denies it.
    """
    if not claim or claims.get(claim) is None:
        return ()
    value = claims[claim]
    names = [value] if isinstance(value, str) else value
    if (not isinstance(names, list) or len(names) > MAX_GROUPS
            or not all(isinstance(n, str) and 0 < len(n) <= MAX_GROUP_LENGTH for n in names)):
        raise LoginFailed(f"{provider}'s {claim} claim is not a list of at most {MAX_GROUPS} group names of 1 to "
                          f"{MAX_GROUP_LENGTH} characters", "too-many-groups")
    return tuple(sorted(set(names)))


__all__ = ["LEEWAY", "OIDCIdentity", "OIDCSignIn", "ProviderLogin", "claim_groups", "provider_login",
           "step_up_params", "token_assurance", "user_id"]
