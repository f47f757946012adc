"""Starting a session once a person is known: the server-side record and its cookies."""

from __future__ import annotations

import secrets

from starlette.requests import Request

from gateway.pages.services import Services
from gateway.pages.threads import run_in_threadpool
from gateway.signin.oidc.exchange import provider_login
from gateway.store import ProviderSessionRecord, SessionRecord
from gateway.types import Assurance, Identity


async def start_session(services: Services, request: Request, identity: Identity, remember: bool,
                        series_id: str | None = None, assurance: Assurance | None = None) -> list[str]:
    """Create a server-side session (and, with ``remember``, a new remember-me series).

    ``series_id`` names the series a restored session belongs to, so that
    ending the series ends the sessions it produced. Both record the linked
    sign-in that started them (``identity.link_key``), so that unlinking it
    ends them. Returns the cookies to set.

    ``assurance``: a restored session's, the series' recorded one (a restore is no authentication);
    otherwise the sign-in's (``identity.assurance``), or "authenticated now" when its protocol says
    nothing. A new series records it, so that its restores carry it.
    """
    runtime = services.runtime
    settings = runtime.settings
    now = runtime.now()
    assurance = assurance or identity.assurance or Assurance(now)
    user_agent = request.headers.get("user-agent", "")
    client = services.client(request)
    session_id = secrets.token_urlsafe(18)
    login = provider_login(identity)  # for RP-initiated and back-channel logout

    def write() -> tuple[str | None, str | None]:
        """Every store write of the new session, on one pool thread: one thread hop, not one per write."""
        series, remember_cookie = series_id, None
        if remember and series is None:
            series, remember_cookie = runtime.remember.issue(identity, user_agent, now, assurance)
        record = SessionRecord(session_id, identity.user_id, now, now + settings.session_max_lifetime, series,
                               user_agent, client, link_key=identity.link_key)
        runtime.store.create_session(record)
        if login is not None:  # kept as long as the series too: a logout at the provider must end it
            runtime.store.put_provider_session(ProviderSessionRecord(
                session_id, login.provider, login.sub, login.sid, login.id_token, record.expires, series))
        return series, remember_cookie

    series_id, remember_cookie = await run_in_threadpool(write)
    cookies = []
    if remember_cookie is not None:
        cookies.append(
            runtime.cookies.set(runtime.remember_cookie_name, remember_cookie, max_age=settings.remember_lifetime))
    cookies.append(runtime.cookies.set(runtime.session_cookie_name,
                                       runtime.sessions.encode(session_id, identity, now, series_id, assurance)))
    return cookies
