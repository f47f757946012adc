"""Specification of gateway.gate.redirects: which `next` targets survive, and that nothing else can leave the site."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.errors import UnsafeRedirect
from gateway.gate.redirects import check_next, next_or_reason, safe_next
from tests.payloads import DECOY_HOSTS, all_payloads, variants

PUBLIC = "https://gateway.example"
ALLOWED = ("app.example", "api.example:8443")
DEFAULT_PORTS = {"http": 80, "https": 443}


def check(target: Any, **kwargs: Any) -> str:
    return check_next(target, public_url=PUBLIC, allowed_hosts=ALLOWED, **kwargs)


# --- What is kept ----------------------------------------------------------------------

ACCEPTED = [
    pytest.param("/", "/", id="root"),
    pytest.param("/account", "/account", id="plain path"),
    pytest.param("/a/b?c=d&e=f#g", "/a/b?c=d&e=f#g", id="query and fragment kept"),
    pytest.param("/search?q=%2F%2Fevil.com", "/search?q=%2F%2Fevil.com", id="encoded slashes in the query"),
    pytest.param("/?next=//evil.com", "/?next=//evil.com", id="slashes in the query are not a host"),
    pytest.param("/caf%C3%A9", "/caf%C3%A9", id="encoded UTF-8 path"),
    pytest.param("/100%25", "/100%25", id="encoded percent sign"),
    pytest.param("/wiki/User:Alice", "/wiki/User:Alice", id="colon after the first segment"),
    pytest.param("/a//b", "/a//b", id="empty segment inside the path"),
    pytest.param("/@evil.com", "/@evil.com", id="at sign in a path is just a path"),
    pytest.param("https://gateway.example/account?x=1#y", "/account?x=1#y", id="own origin reduced to path"),
    pytest.param("HTTPS://Gateway.Example:443/a", "/a", id="own origin in upper case with default port"),
    pytest.param("https://gateway.example", "/", id="own origin without path"),
    pytest.param("https://gateway.example?x", "/?x", id="own origin with query only"),
    pytest.param("https://app.example/x?y", "https://app.example/x?y", id="allowed host"),
    pytest.param("HTTPS://APP.Example:443/x", "https://app.example/x", id="allowed host normalized"),
    pytest.param("http://app.example:9000/", "http://app.example:9000/", id="allowed host without port: any port"),
    pytest.param("https://api.example:8443/v1", "https://api.example:8443/v1", id="allowed host with its port"),
]


@pytest.mark.parametrize(("target", "expected"), ACCEPTED)
def test_same_site_paths_and_allowed_hosts_are_kept(target: str, expected: str) -> None:
    assert check(target) == expected
    assert next_or_reason(target, public_url=PUBLIC, allowed_hosts=ALLOWED) == (expected, None)


@pytest.mark.parametrize(("target", "expected"), ACCEPTED)
def test_a_kept_target_checks_again_to_itself(target: str, expected: str) -> None:
    assert check(check(target)) == expected


@pytest.mark.parametrize("target", [None, ""])
def test_a_missing_next_goes_home_without_a_reason(target: str | None) -> None:
    assert next_or_reason(target, public_url=PUBLIC) == ("/", None)


def test_public_url_with_port_and_path_is_matched_by_origin() -> None:
    public = "http://127.0.0.1:8080/gateway/"
    assert check_next("http://127.0.0.1:8080/app", public_url=public) == "/app"
    assert safe_next("http://127.0.0.1/app", public_url=public) == "/"
    assert check_next("http://[::1]:8080/app", public_url="http://[::1]:8080") == "/app"


def test_targets_up_to_max_length_are_kept() -> None:
    assert check("/" + "a" * 2047) == "/" + "a" * 2047
    assert check("/abc", max_length=4) == "/abc"
    assert next_or_reason("/abcd", public_url=PUBLIC, max_length=4) == ("/", "too long")


# --- What is refused, and why -----------------------------------------------------------

REFUSED = [
    # Other hosts, however they are spelled.
    pytest.param("https://evil.com/", "host not allowed", id="another host"),
    pytest.param("https://gateway.example.evil.com/", "host not allowed", id="our name as a subdomain"),
    pytest.param("http://gateway.example/", "host not allowed", id="our host over plain http"),
    pytest.param("https://gateway.example:8443/", "host not allowed", id="our host on another port"),
    pytest.param("https://api.example/v1", "host not allowed", id="allowed host on a port not listed"),
    pytest.param("https://evilapp.example/", "host not allowed", id="allowed host as a suffix of another"),
    pytest.param("https://evil.app.example/", "host not allowed", id="subdomain of an allowed host"),
    pytest.param("https://evil.api.example:8443/", "host not allowed", id="subdomain of an allowed host:port"),
    pytest.param("https://evilapi.example:8443/", "host not allowed", id="allowed host:port as a suffix"),
    pytest.param("https://gateway.example./", "malformed host", id="trailing dot is another origin"),
    pytest.param("https://0x7f.1/", "host not allowed", id="numeric host"),
    pytest.param("https://gateway.example@evil.com/", "userinfo in the URL", id="userinfo hides the host"),
    pytest.param("https://evil.com@gateway.example/", "userinfo in the URL", id="userinfo even towards us"),
    pytest.param("https://evil%2ecom/", "percent-encoded host", id="encoded dot in the host"),
    pytest.param("https://gateway.example%40evil.com/", "percent-encoded host", id="encoded at sign"),
    pytest.param("https://evil.com:99999/", "malformed host", id="port out of range"),
    pytest.param("https://evil.com:/", "malformed host", id="empty port"),
    pytest.param("https://evil_com/", "malformed host", id="underscore host"),
    pytest.param("https://[::1/", "malformed host", id="unclosed IPv6 literal"),
    # Scheme-relative in all its forms.
    pytest.param("//evil.com", "scheme-relative (//host)", id="scheme-relative"),
    pytest.param("///evil.com", "scheme-relative (//host)", id="three slashes"),
    pytest.param("/\\evil.com", "character not allowed in a URL", id="slash backslash"),
    pytest.param("\\\\evil.com", "character not allowed in a URL", id="two backslashes"),
    pytest.param("\\/evil.com", "character not allowed in a URL", id="backslash slash"),
    pytest.param("/%2fevil.com", "scheme-relative (//host)", id="encoded slash"),
    pytest.param("/%5cevil.com", "backslash", id="encoded backslash"),
    pytest.param("/%252f%252fevil.com", "scheme-relative (//host)", id="double-encoded slashes"),
    pytest.param("/%252525252fevil.com", "nested percent-encoding", id="five times encoded"),
    pytest.param("https://gateway.example//evil.com", "scheme-relative (//host)", id="our origin, // path"),
    pytest.param("https:evil.com", "no //host after the scheme", id="scheme without slashes"),
    pytest.param("https:///evil.com", "no //host after the scheme", id="three slashes after the scheme"),
    pytest.param("https:/evil.com", "no //host after the scheme", id="one slash after the scheme"),
    # Characters browsers strip or remove.
    pytest.param("/\t/evil.com", "character not allowed in a URL", id="tab, removed by browsers"),
    pytest.param("/\n/evil.com", "character not allowed in a URL", id="newline, removed by browsers"),
    pytest.param("/\r\n/evil.com", "character not allowed in a URL", id="CRLF, header injection"),
    pytest.param(" /account", "character not allowed in a URL", id="leading space, stripped by browsers"),
    pytest.param("\x00//evil.com", "character not allowed in a URL", id="leading NUL, stripped by browsers"),
    pytest.param("/account ", "character not allowed in a URL", id="trailing space"),
    pytest.param("/%09/evil.com", "control or invisible character", id="encoded tab"),
    pytest.param("/%E2%80%8B", "control or invisible character", id="encoded zero-width space"),
    pytest.param("/%C2%85", "control or invisible character", id="encoded next-line (C1)"),
    # Unicode look-alikes.
    pytest.param("/\uff0fevil.com", "character not allowed in a URL", id="fullwidth solidus"),
    pytest.param("/\u2215evil.com", "character not allowed in a URL", id="division slash"),
    pytest.param("/%EF%BC%8Fevil.com", "scheme-relative (//host)", id="encoded fullwidth solidus, NFKC"),
    pytest.param("https://evil\uff0ecom/", "character not allowed in a URL", id="fullwidth full stop in host"),
    # Dot segments and colons that become hosts after normalisation or echoing.
    pytest.param("/.//evil.com", "dot segment", id="dot segment before //"),
    pytest.param("/a/..//evil.com", "dot segment", id="dot-dot segment before //"),
    pytest.param("/%2e%2e/x", "dot segment", id="encoded dot-dot"),
    pytest.param("/..;/x", "dot segment", id="dot-dot with path parameter"),
    pytest.param("/.example.com", "dot segment", id="leading dot"),
    pytest.param("/https://evil.com", "colon in the first path segment", id="URL inside the path"),
    pytest.param("/%68ttps%3a%2f%2fevil.com", "colon in the first path segment", id="encoded URL inside the path"),
    pytest.param("/javascript:alert(1)", "colon in the first path segment", id="scheme inside the path"),
    # Other schemes.
    pytest.param("javascript:alert(1)", "scheme not allowed", id="javascript"),
    pytest.param("JaVaScRiPt:alert(1)", "scheme not allowed", id="javascript in mixed case"),
    pytest.param("vbscript:msgbox(1)", "scheme not allowed", id="vbscript"),
    pytest.param("data:text/html;base64,PHNjcmlwdD4=", "scheme not allowed", id="data"),
    pytest.param("ftp://evil.com/", "scheme not allowed", id="ftp"),
    pytest.param("java\tscript:alert(1)", "character not allowed in a URL", id="tab inside the scheme"),
    # Not a URL we can reason about.
    pytest.param("evil.com", "not an absolute path", id="relative path"),
    pytest.param("?x=1", "not an absolute path", id="query only"),
    pytest.param("/a<script>", "character not allowed in a URL", id="HTML in the path"),
    pytest.param("/%zz", "malformed percent-encoding", id="bad percent-escape"),
    pytest.param("/" + "a" * 2048, "too long", id="over max_length"),
]


@pytest.mark.parametrize(("target", "reason"), REFUSED)
def test_unsafe_targets_are_refused_with_a_reason(target: str, reason: str) -> None:
    with pytest.raises(UnsafeRedirect) as refused:
        check(target)
    assert (refused.value.target, refused.value.reason) == (target, reason)
    assert next_or_reason(target, public_url=PUBLIC, allowed_hosts=ALLOWED) == ("/", reason)
    assert safe_next(target, public_url=PUBLIC, allowed_hosts=ALLOWED) == "/"


@pytest.mark.parametrize("target", [b"/account", 42, ["/account"], object()])
def test_non_strings_are_refused(target: Any) -> None:
    assert next_or_reason(target, public_url=PUBLIC) == ("/", "not a string")


# --- The public corpus ------------------------------------------------------------------

CONFIGURATIONS = {
    "public is a decoy": {"public_url": f"https://{DECOY_HOSTS[0]}"},
    "public is the other decoy": {"public_url": f"https://{DECOY_HOSTS[1]}"},
    "decoys allowed": {"public_url": PUBLIC, "allowed_hosts": DECOY_HOSTS},
}


def test_the_corpus_has_several_hundred_payloads() -> None:
    assert len(all_payloads()) >= 500


@pytest.mark.parametrize("form", ["raw", "encoded", "decoded"])
@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_every_corpus_payload_goes_home(configuration: str, form: str) -> None:
    kwargs: Any = CONFIGURATIONS[configuration]
    kept = {}
    for payload in all_payloads():
        target = variants(payload)[form]
        result = safe_next(target, **kwargs)
        if result != "/":
            kept[target] = result
    assert kept == {}


# --- Properties -------------------------------------------------------------------------

C0_AND_SPACE = "".join(map(chr, range(0x21)))
DOTTED_DECIMAL = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def browser_origin(base: str, reference: str) -> tuple[str, str, int] | None:
    """Where a browser on ``base`` goes for ``reference``, per WHATWG URL parsing.

    Independent of gateway.gate.redirects and stricter: ``None`` for anything that is not
    an http(s) origin it can name with certainty.
    """
    base_parts = urlsplit(base)
    home = (base_parts.scheme, base_parts.hostname or "", base_parts.port or DEFAULT_PORTS[base_parts.scheme])
    reference = re.sub("[\t\n\r]", "", reference.strip(C0_AND_SPACE)).replace("\\", "/")
    scheme_match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", reference)
    if scheme_match is None:
        scheme, rest = home[0], reference
        if not rest.startswith("//"):
            return home  # path, query or fragment on this page's origin
    else:
        scheme, rest = scheme_match[1].lower(), reference[scheme_match.end() :]
        if scheme not in DEFAULT_PORTS:
            return None
        if scheme == home[0] and not rest.startswith("//"):
            return home  # "special relative or authority state": relative
    authority = re.split(r"[/?#]", rest.lstrip("/"), maxsplit=1)[0].rpartition("@")[2]
    if authority.startswith("["):
        host, _, port_text = authority.partition("]")
        host, port_text = host + "]", port_text.removeprefix(":")
    else:
        host, _, port_text = authority.partition(":")
    host = unicodedata.normalize("NFKC", unquote(host)).lower()
    if not re.fullmatch(r"[a-z0-9.\-]+|\[[0-9a-f:.]+\]", host):
        return None
    if re.fullmatch(r"0x[0-9a-f]*|[0-9]+", host.rsplit(".", 1)[-1]) and not DOTTED_DECIMAL.fullmatch(host):
        return None  # an IPv4 number in disguise
    if port_text and not port_text.isdigit():
        return None
    return scheme, host, int(port_text) if port_text else DEFAULT_PORTS[scheme]


def urljoin_origin(base: str, reference: str) -> tuple[str, str, int]:
    parts = urlsplit(urljoin(base, reference))
    return parts.scheme, parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


def permitted(origin: tuple[str, str, int] | None) -> bool:
    if origin is None:
        return False
    _, host, port = origin
    return origin == browser_origin(PUBLIC, "/") or host in ALLOWED or f"{host}:{port}" in ALLOWED


def assert_stays_on_site(target: object) -> None:
    result = safe_next(target, public_url=PUBLIC, allowed_hosts=ALLOWED)  # type: ignore[arg-type]
    if result == "/":
        return
    assert permitted(browser_origin(PUBLIC, result)), result
    assert permitted(urljoin_origin(PUBLIC, result)), result
    assert check(result) == result
    if result.startswith("/"):
        # What a server behind us may make of the path and echo into another redirect:
        # decoded once more, NFKC-normalised, or with dot segments removed (urljoin does).
        decoded = unquote(result)
        for later in (decoded, unicodedata.normalize("NFKC", decoded), urlsplit(urljoin(PUBLIC, result)).path):
            assert browser_origin(PUBLIC, later) == browser_origin(PUBLIC, "/"), (result, later)


PIECES = [
    *("http:", "https:", "HtTpS:", "javascript:", "data:", "ftp:", "java\tscript:"),
    *("/", "//", "\\", "/\\", "%2f", "%2F", "%5c", "%252f", "%25", "%2e", ".", "..", "./", "../"),
    *("\t", "\n", "\r", " ", "\x00", "\x7f", "%09", "%0a", "%00", "\u200b", "\u3002", "\uff0e"),
    *("\uff0f", "\uff3c", "%ef%bc%8f", "%e3%80%82", "@", ":", ":443", ":8443", ":0", "?", "#", ";"),
    *("gateway.example", "GATEWAY.example", "app.example", "api.example", "evil.com", "gateway.example.evil.com"),
    *("[::1]", "0x7f.1", "127.0.0.1", "xn--e1afmkfd", "%67ateway.example", "a", "b1"),
]
SEGMENT_PIECES = [
    *("", ".", "..", "%2e", "%2E%2e", "%252e", ";", ":", "@", "a", "https:", "evil.com"),
    *("%2f", "%252f", "%5c", "%09", "%0d%0a", "%ef%bc%8f", "%EF%BC%8E", "%e2%80%8b", "\uff0f", "\t"),
]
PREFIXES = ["", "/", "//", "https:", "https://gateway.example", "HTTPS://GATEWAY.EXAMPLE:443", "https://app.example"]
SEGMENT = st.lists(st.sampled_from(SEGMENT_PIECES), max_size=3).map("".join)
PATH = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda segments: "/" + "/".join(segments))
URL_ISH = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=2)), max_size=10).map("".join),
    st.tuples(st.sampled_from(PREFIXES), PATH, st.sampled_from(["", "?next=//evil.com", "#//evil.com"])).map("".join),
)


@settings(max_examples=1000)
@given(URL_ISH)
@example("https://gateway.example/.//evil.com")
@example("https://app.example//evil.com")
@example("/%2e/%2fevil.com")
@example("/%EF%BC%8F/evil.com")
@example("/a/..//evil.com")
def test_url_ish_strings_never_leave_the_site(target: str) -> None:
    assert_stays_on_site(target)


@settings(max_examples=500)
@given(st.one_of(st.text(), st.none(), st.binary(), st.integers()))
def test_arbitrary_input_never_leaves_the_site(target: object) -> None:
    assert_stays_on_site(target)


@given(st.sampled_from(all_payloads()), st.sampled_from(["raw", "encoded", "decoded"]))
def test_corpus_payloads_never_leave_the_site(payload: str, form: str) -> None:
    assert_stays_on_site(variants(payload)[form])
