"""The state one app instance shares between its pages, and python3-openid's server side.

``Provider`` resolves the public base URL, owns the association store and the pending
consent requests, and turns the library's responses into Starlette responses.
"""

from __future__ import annotations

import copy
import threading
from typing import Any
from urllib.parse import urlsplit

from openid.association import Association
from openid.message import OPENID1_URL_LIMIT, OPENID2_NS
from openid.server.server import (
    BROWSER_REQUEST_MODES,
    ENCODE_KVFORM,
    ENCODE_URL,
    EncodingError,
    MalformedReturnURL,
    MalformedTrustRoot,
    OpenIDResponse,
    ProtocolError,
    Server,
    UntrustedReturnURL,
)
from openid.store.memstore import MemoryStore
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from devtools.openid_provider.pages import autosubmit_page, error_page
from devtools.openid_provider.pending import PendingRequests
from devtools.openid_provider.profiles import Profile
from devtools.openid_provider.sessions import SignIns


class LockedMemoryStore(MemoryStore):  # type: ignore[misc]
    """python3-openid's MemoryStore made safe for the thread pool the endpoint runs in."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()

    def storeAssociation(self, server_url: str, assoc: Association) -> None:
        with self._lock:
            super().storeAssociation(server_url, assoc)

    def getAssociation(self, server_url: str, handle: str | None = None) -> Association | None:
        with self._lock:
            return super().getAssociation(server_url, handle)

    def removeAssociation(self, server_url: str, handle: str) -> bool:
        with self._lock:
            return bool(super().removeAssociation(server_url, handle))

    def useNonce(self, server_url: str, timestamp: int, salt: str) -> bool:
        with self._lock:
            return bool(super().useNonce(server_url, timestamp, salt))

    def cleanupNonces(self) -> int:
        with self._lock:
            return int(super().cleanupNonces())

    def cleanupAssociations(self) -> int:
        with self._lock:
            return int(super().cleanupAssociations())


def describe(error: ProtocolError) -> str:
    """A sentence for a person; some library errors stringify as "None"."""
    if isinstance(error, MalformedReturnURL):
        return f"openid.return_to is not a valid URL: {error.return_to!r}"
    if isinstance(error, MalformedTrustRoot):
        return f"openid.realm is not a valid realm: {error}"
    return str(error)


def _absolute_http(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL: python3-openid redirects an error to any return_to it was given
    (``::``, ``javascript:…``) when the request failed before the return_to was checked."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_association(response: OpenIDResponse | ProtocolError) -> bool:
    return isinstance(response, OpenIDResponse) and response.request.mode == "associate"


def _without_assoc_type(kv_body: str) -> str:
    return "".join(line for line in kv_body.splitlines(keepends=True) if not line.startswith("assoc_type:"))


def _form_of(response: OpenIDResponse | ProtocolError) -> tuple[str, dict[str, str]]:
    """Where an indirect response goes, and its fields, for a form the browser POSTs."""
    if isinstance(response, ProtocolError):
        return response.getReturnTo(), response.toMessage().toPostArgs()
    return response.request.return_to, response.fields.toPostArgs()


class _Answer(OpenIDResponse):  # type: ignore[misc]
    """An answer whose deep copy shares its request.

    ``Signatory.sign`` returns a signed deep copy of the answer: the copy of the
    request (the whole incoming message) was a fifth of the provider's CPU per
    sign-in, and nothing changes a request once decoded. The fields are copied.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> _Answer:
        twin = copy.copy(self)
        twin.fields = copy.deepcopy(self.fields, memo)
        return twin


class Provider:
    """Everything one ``create_app`` instance shares: base URL, associations, pending requests."""

    def __init__(self, base_url: str | None, oidc_issuer: str | None = None, ignore_step_up: bool = False) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        # The OpenID Connect issuer this provider is moving to: its identifiers name it (Migration §6).
        self.oidc_issuer = oidc_issuer
        self.store = LockedMemoryStore()
        self.pending = PendingRequests()
        self.sign_ins = SignIns()  # "stay signed in at this provider"
        # Disregard PAPE's max_auth_age and policies (devtools/stepup.py): a relying party's refusal path.
        self.ignore_step_up = ignore_step_up

    def base(self, request: Request) -> str:
        """The configured public URL, or the scheme and host the request was sent to."""
        return self._base_url or f"{request.url.scheme}://{request.url.netloc}"

    def server(self, base: str, profile: Profile) -> Any:
        """A library server for one profile's endpoint (cheap: all state lives in the store)."""
        return Server(self.store, profile.endpoint(base))

    def respond(
        self, request: Request, response: OpenIDResponse | ProtocolError, profile: Profile, base: str,
    ) -> Response:
        """Sign when needed and send: key-value form to the relying party, else via the browser.

        Must run off the event loop: signing may create an association in the store.
        """
        server = self.server(base, profile)
        if isinstance(response, OpenIDResponse) and response.request.mode in BROWSER_REQUEST_MODES:
            return self._answer(request, server, response)
        if response.whichEncoding() == ENCODE_KVFORM:  # a direct response (OpenID 2.0 §5.1.2)
            encoded = server.encodeResponse(response)
            body = encoded.body if profile.assoc_type_in_reply or not _is_association(response) \
                else _without_assoc_type(encoded.body)
            return PlainTextResponse(body, status_code=encoded.code)
        try:
            if isinstance(response, OpenIDResponse) and response.needsSigning():
                response = server.signatory.sign(response)
        except EncodingError as exc:
            return error_page(request, 400, f"The answer cannot be signed: {exc}")
        if response.whichEncoding() == ENCODE_URL:
            return RedirectResponse(response.encodeToURL(), status_code=302)
        return autosubmit_page(request, *_form_of(response))

    def _answer(self, request: Request, server: Any, response: OpenIDResponse) -> Response:
        """An answer to checkid, signed, then sent by redirect or, when too long for a URL, by form (§5.2.1).

        Encoded to a URL once: the library's ``whichEncoding`` encodes to measure, and asked before and
        after signing it made three encodings (each a deep copy of the message) per answer.
        """
        if type(response) is OpenIDResponse:
            response.__class__ = _Answer  # signing deep-copies the answer: let the copy share the request
        try:
            if response.needsSigning():
                response = server.signatory.sign(response)
        except EncodingError as exc:
            return error_page(request, 400, f"The answer cannot be signed: {exc}")
        url = response.encodeToURL()
        if response.fields.getOpenIDNamespace() == OPENID2_NS and len(url) > OPENID1_URL_LIMIT:
            return autosubmit_page(request, *_form_of(response))
        return RedirectResponse(url, status_code=302)

    def refuse(self, request: Request, error: ProtocolError, profile: Profile, base: str) -> Response:
        """Answer a bad request: to the relying party when it can be reached safely, else a page.

        OpenID 2.0 §5.2.3 sends indirect errors to openid.return_to "if present and valid";
        a malformed, untrusted or not absolute http(s) return_to gets a page instead of a redirect.
        """
        unsafe = isinstance(error, MalformedReturnURL | UntrustedReturnURL | MalformedTrustRoot) \
            or (error.hasReturnTo() and not _absolute_http(error.getReturnTo()))
        if unsafe or error.whichEncoding() is None:
            return error_page(request, 400, describe(error))
        return self.respond(request, error, profile, base)
