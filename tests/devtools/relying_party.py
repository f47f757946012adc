"""A relying party for the development provider's tests.

python3-openid's consumer plays the site; the helpers below play the person at the
consent form, with an httpx client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import httpx
from openid.consumer.consumer import AuthRequest, Consumer, Response
from openid.extensions import ax, sreg
from openid.store.memstore import MemoryStore

BANNER = "Development OpenID provider — not for production"
REALM = "http://rp.test/"
RETURN_TO = "http://rp.test/callback"
OPENID2_NS = "http://specs.openid.net/auth/2.0"
IDENTIFIER_SELECT = "http://specs.openid.net/auth/2.0/identifier_select"
AX_EMAIL = "http://axschema.org/contact/email"
AX_NICKNAME = "http://axschema.org/namePerson/friendly"
STEAM_CLAIMED_ID = re.compile(r"^.*/steam/openid/id/7656119\d{10}$")


class Forms(HTMLParser):
    """The forms of an HTML page: action, method and the named inputs' values."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.inputs: list[dict[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(values)
            self.inputs.append({})
        elif tag == "input" and self.inputs and "name" in values:
            self.inputs[-1][values["name"]] = values.get("value", "")


@dataclass
class RelyingParty:
    """A python3-openid consumer with its own store and session, as a real site would keep."""

    store: MemoryStore = field(default_factory=MemoryStore)
    session: dict[str, object] = field(default_factory=dict)

    def begin(self, identifier: str, *, extensions: bool = True) -> AuthRequest:
        auth_request = Consumer(self.session, self.store).begin(identifier)
        if extensions:
            auth_request.addExtension(sreg.SRegRequest(required=["nickname", "email"], optional=["fullname"]))
            fetch = ax.FetchRequest()
            fetch.add(ax.AttrInfo(AX_EMAIL, required=True, alias="email"))
            fetch.add(ax.AttrInfo(AX_NICKNAME, required=True, alias="nickname"))
            auth_request.addExtension(fetch)
        return auth_request

    def complete(self, query: dict[str, str], current_url: str) -> Response:
        return Consumer(self.session, self.store).complete(query, current_url)


def consent_token(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    assert BANNER in page.text
    return Forms(page.text).inputs[0]["token"]


def decide(person: httpx.Client, op: str, token: str, decision: str, username: str = "") -> httpx.Response:
    return person.post(f"{op}/consent", data={"token": token, "decision": decision, "username": username})


def returned(rp: RelyingParty, answer: httpx.Response) -> Response:
    """What the relying party concludes from the provider's redirect (or auto-submitted form)."""
    if answer.status_code == 302:
        location = answer.headers["location"]
        return rp.complete(dict(parse_qsl(urlsplit(location).query)), location)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html"), answer.text
    form = Forms(answer.text)
    action = form.forms[0]["action"]
    return rp.complete({**dict(parse_qsl(urlsplit(action).query)), **form.inputs[0]}, action)


def sign_in(person: httpx.Client, op: str, identifier: str, username: str = "alice",
            *, return_to: str = RETURN_TO, decision: str = "allow") -> tuple[RelyingParty, Response]:
    rp = RelyingParty()
    auth_request = rp.begin(identifier)
    page = person.get(auth_request.redirectURL(REALM, return_to))
    answer = decide(person, op, consent_token(page), decision, username)
    return rp, returned(rp, answer)


def checkid(identity: str, return_to: str = RETURN_TO, realm: str = REALM) -> dict[str, str]:
    """A hand-made checkid_setup request, for what python3-openid's consumer would never send."""
    return {"openid.ns": OPENID2_NS, "openid.mode": "checkid_setup", "openid.identity": identity,
            "openid.claimed_id": identity, "openid.return_to": return_to, "openid.realm": realm}
