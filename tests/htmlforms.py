"""A browser's handling of HTML forms for httpx-driven tests: parse, fill, submit."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


@dataclass
class Form:
    action: str
    method: str
    attrs: dict[str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower(), a))
        elif not self.forms:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            name = a.get("name")
            if not name:
                return
            if kind == "checkbox":
                self.forms[-1].checkboxes[name] = a.get("value", "on")
                if "checked" in a:
                    self.forms[-1].fields.append((name, a.get("value", "on")))
            elif kind == "submit":
                self.forms[-1].buttons.append((name, a.get("value", "")))
            else:
                self.forms[-1].fields.append((name, a.get("value", "")))
        elif tag == "button" and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def submit(client: httpx.Client, page: httpx.Response, data: dict[str, str] | None = None,
           button: tuple[str, str] | None = None, index: int = 0, check: tuple[str, ...] = ()) -> httpx.Response:
    """Submit form ``index`` of ``page`` like a browser: hidden fields kept, ``data`` typed in."""
    form = forms(page.text)[index]
    values = dict(form.fields)
    for name in check:
        values[name] = form.checkboxes[name]
    values.update(data or {})
    if button is not None:
        values[button[0]] = button[1]
    url = urljoin(str(page.url), form.action or str(page.url))
    if form.method == "post":
        return client.post(url, data=values)
    return client.get(url, params=values)
