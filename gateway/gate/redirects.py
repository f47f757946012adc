"""Validation of the ``next`` target the gateway redirects to after sign-in and logout.

``next`` comes from the client, so a lax check is an open redirect: a link to our
real login page that lands the person, signed in and trusting, on a look-alike site.
The danger is that Python's ``urllib.parse`` and browsers disagree on what many
strings mean. Browsers follow the WHATWG URL Standard (https://url.spec.whatwg.org/):

* tab, CR and LF are removed anywhere, and leading/trailing C0 controls and spaces
  are stripped, so ``/\\t/evil.com`` is ``//evil.com`` (§4.4 basic URL parser);
* for http(s) a backslash is a slash, so ``/\\evil.com`` and ``\\/evil.com`` are
  scheme-relative (§4.4 "special" schemes);
* any number of slashes may follow ``http:`` (``https:///evil.com``), ``http:evil.com``
  from an https page names the host ``evil.com``, and userinfo hides the real host
  (``https://our.host@evil.com``);
* hosts are percent-decoded and IDNA-mapped (``evil%2ecom``, fullwidth ``U+FF0E``, §3.5);
* dot segments are removed, so ``/.//evil.com`` becomes the path ``//evil.com``, which
  is harmless only until something echoes it into another redirect.

Servers and frameworks after us may also percent-decode (more than once) and
Unicode-normalise. So rather than parse leniently and then judge, we accept a narrow
grammar and refuse the rest:

* a path ``/…`` (plus query and fragment) made only of RFC 3986 characters, whose
  path - as written, and after each round of percent-decoding and NFKC - does not
  start with ``//``, has no backslash or control/invisible character, no segment
  starting with ``.`` and no ``:`` in its first segment;
* an ``http(s)://host[:port]…`` URL without userinfo or percent-encoding in the
  host, whose path passes the same test: reduced to that path when the origin is
  ``public_url``'s, kept (lower-cased, default port dropped) when the host is in
  ``allowed_hosts`` (``host`` matches any port, ``host:port`` only that port).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from gateway.errors import UnsafeRedirect
from gateway.paths import Paths
from gateway.types import StepUp

__all__ = ["FALLBACK", "NextTargets", "check_next", "next_or_reason", "safe_next"]

FALLBACK = "/"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_DECODE_ROUNDS = 4
# RFC 3986 unreserved, reserved and "%"; refuses space, controls, backslash, non-ASCII, <>"{}|^`.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_AUTHORITY = re.compile(r"//([^/?#]*)(.*)", re.DOTALL)
_HOST_PORT = re.compile(r"(?P<host>[a-z0-9](?:[a-z0-9.\-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def check_next(
    target: str | None, *, public_url: str, allowed_hosts: Collection[str] = (), max_length: int = 2048
) -> str:
    """Return a safe redirect target, ``/`` when none was given, or raise :class:`UnsafeRedirect`.

    ``exc.target`` is attacker-controlled: log it with ``%r``.
    """
    if target is None or target == "":
        return FALLBACK
    if not isinstance(target, str):
        raise UnsafeRedirect(repr(target)[:100], "not a string")
    if len(target) > max_length:
        raise UnsafeRedirect(target, "too long")
    if not _URI_CHARS.fullmatch(target):
        raise UnsafeRedirect(target, "character not allowed in a URL")
    if _BAD_PERCENT.search(target):
        raise UnsafeRedirect(target, "malformed percent-encoding")
    if target.startswith("/"):
        _refuse_unsafe_path(target, target)
        return target
    scheme = _SCHEME.match(target)
    if scheme is None:
        raise UnsafeRedirect(target, "not an absolute path")
    if scheme[1].lower() not in _DEFAULT_PORTS:
        raise UnsafeRedirect(target, "scheme not allowed")
    return _checked_url(target, scheme[1].lower(), target[scheme.end() :], public_url, allowed_hosts)


def next_or_reason(
    target: str | None, *, public_url: str, allowed_hosts: Collection[str] = (), max_length: int = 2048
) -> tuple[str, str | None]:
    """:func:`check_next`, but return ``("/", reason)`` instead of raising (the caller logs the reason)."""
    try:
        return check_next(target, public_url=public_url, allowed_hosts=allowed_hosts, max_length=max_length), None
    except UnsafeRedirect as exc:
        return FALLBACK, exc.reason


def safe_next(
    target: str | None, *, public_url: str, allowed_hosts: Collection[str] = (), max_length: int = 2048
) -> str:
    """:func:`check_next`, falling back to ``/``; never raises for any target."""
    return next_or_reason(target, public_url=public_url, allowed_hosts=allowed_hosts, max_length=max_length)[0]


@dataclass(frozen=True, slots=True)
class NextTargets:
    """The site's ``next`` policy, set once from the settings: where a browser may be sent back to."""

    public_url: str
    allowed_hosts: tuple[str, ...] = ()
    max_length: int = 2048
    paths: Paths = field(kw_only=True)  # the login page's address (route_prefix)

    def safe(self, target: str | None) -> str:
        """``target`` if it is safe, else ``/`` (:func:`safe_next`)."""
        return safe_next(target, public_url=self.public_url, allowed_hosts=self.allowed_hosts,
                         max_length=self.max_length)

    def check(self, target: str) -> str:
        """``target`` if it is safe; :class:`UnsafeRedirect` (with its reason) if not (:func:`check_next`)."""
        return check_next(target, public_url=self.public_url, allowed_hosts=self.allowed_hosts,
                          max_length=self.max_length)

    def login_url(self, target: str | None, message: str | None = None, step_up: StepUp | None = None) -> str:
        """The login page that sends the browser on to ``target`` (made safe) afterwards, asking for ``step_up``."""
        if step_up is None:
            return self.paths.login_url(self.safe(target), message)
        return self.paths.login_url(self.safe(target), message, step_up.max_age, step_up.acr_values)


def _refuse_unsafe_path(reference: str, target: str) -> None:
    """Raise unless the path of ``reference`` (``/path?query#fragment``) is safe in every decoding.

    Each round percent-decodes and NFKC-normalises, as a later server might
    (``%252f`` -> ``%2f`` -> ``/``; fullwidth solidus U+FF0F -> ``/``), until nothing changes.
    """
    view = re.split(r"[?#]", reference, maxsplit=1)[0]
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(view)
        normalized = unicodedata.normalize("NFKC", decoded)
        for candidate in (view, decoded, normalized):
            reason = _path_problem(candidate)
            if reason is not None:
                raise UnsafeRedirect(target, reason)
        if normalized == view:
            return
        view = normalized
    raise UnsafeRedirect(target, "nested percent-encoding")


def _path_problem(path: str) -> str | None:
    if path.startswith("//"):
        return "scheme-relative (//host)"
    for char in path:
        if char == "\\":
            return "backslash"
        if unicodedata.category(char) in _INVISIBLE:
            return "control or invisible character"
    segments = path[1:].split("/")
    if any(segment.startswith(".") for segment in segments):
        return "dot segment"
    if ":" in segments[0]:
        return "colon in the first path segment"
    return None


def _checked_url(target: str, scheme: str, rest: str, public_url: str, allowed_hosts: Collection[str]) -> str:
    """Check ``scheme:rest`` (http or https) against our origin and the allowed hosts."""
    match = _AUTHORITY.fullmatch(rest)
    if match is None or match[1] == "":
        raise UnsafeRedirect(target, "no //host after the scheme")
    authority, tail = match[1], match[2]
    if "@" in authority:
        raise UnsafeRedirect(target, "userinfo in the URL")
    if "%" in authority:
        raise UnsafeRedirect(target, "percent-encoded host")
    host_port = _HOST_PORT.fullmatch(authority.lower())
    if host_port is None or int(host_port["port"] or 0) > 65535:
        raise UnsafeRedirect(target, "malformed host")
    host = host_port["host"]
    port = int(host_port["port"] or _DEFAULT_PORTS[scheme])
    path = tail if tail.startswith("/") else "/" + tail
    _refuse_unsafe_path(path, target)
    if (scheme, host, port) == _origin(public_url):
        return path
    allowed = {entry.strip().lower() for entry in allowed_hosts}
    if host in allowed or f"{host}:{port}" in allowed:
        netloc = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        return f"{scheme}://{netloc}{path}"
    raise UnsafeRedirect(target, "host not allowed")


@lru_cache(maxsize=8)
def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``public_url``, host as :data:`_HOST_PORT` spells it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return scheme, host, parts.port or _DEFAULT_PORTS.get(scheme, 0)
