"""The open-redirect payload corpus, shared by the unit and integration tests.

Every payload in ``tests/data/open_redirect_payloads.txt`` must end at ``/`` whichever
way it reaches the gateway: as written, percent-encoded once by a careful client, or
percent-decoded once by a framework.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import quote, unquote

PAYLOADS_FILE = Path(__file__).parent / "data" / "open_redirect_payloads.txt"

# The "trusted" hosts the payloads try to pass for: also run them with public_url or
# allowed_hosts set to these, which is where a lax check would fail.
DECOY_HOSTS = ("www.whitelisteddomain.tld", "example.com")


@cache
def load_payloads() -> tuple[str, ...]:
    """Every payload once, in file order; ``#`` comment lines and blank lines skipped."""
    lines = PAYLOADS_FILE.read_text(encoding="utf-8").split("\n")
    return tuple(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def variants(payload: str) -> dict[str, str]:
    """The forms in which a payload can reach the gateway, by name."""
    return {"raw": payload, "encoded": quote(payload, safe=""), "decoded": unquote(payload)}


# The generated part of the corpus: the shapes of the public open-redirect lists,
# combined exhaustively. Each prefix turns what follows into a foreign authority in
# some browser or server; each host is the attacker's, disguised.
_PREFIXES = (
    "//", "///", "////", "/\\", "\\\\", "\\/", "/\\/", "/%09/", "//%09/", "/%2f%2f", "/%2F%2F", "/%5c", "/%5C",
    "//%5c", "/%2f/", "/%5c/", "%2f%2f", "%5c%5c", "https://", "http://", "https:", "http:", "//\t", "/ /",
    "https:/\\", "http:\\\\", "HTTPS://", "hTtP://", "//%0d%0a", "/%0a/", "%09//", " //", "\t//", "/\u3002/",
    "https:%2f%2f", "javascript://", "//%E2%80%AE", "/../", "/.//", "/%2e/%2f", "%2f%2e%2e%2f%2f",
)
_HOSTS = (
    "evil.com", "EVIL.COM", "216.58.214.206", "3627734734", "0xd83ad6ce", "0330.072.0326.0316", "0xd8.0x3a.0xd6.0xce",
    "[::ffff:d83a:d6ce]", "www.whitelisteddomain.tld@evil.com", "www.whitelisteddomain.tld.evil.com",
    "evil.com%2f%2e%2e", "evil.com%00.www.whitelisteddomain.tld", "evil%E3%80%82com",
    "evil.com\\@www.whitelisteddomain.tld",
)
_SUFFIXES = ("", "/", "/%2e%2e", "?www.whitelisteddomain.tld", "#www.whitelisteddomain.tld", ":80/x")
_SCHEMES = ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "java%0d%0ascript:alert(1)", "javascript%3aalert(1)",
            "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "%6a%61%76%61%73%63%72%69%70%74:alert(1)",
            "\x01javascript:alert(1)", " javascript:alert(1)", "jav\tascript:alert(1)", "file:///etc/passwd",
            "ftp://evil.com/", "ws://evil.com/", "blob:https://evil.com/x")


@cache
def generated_payloads() -> tuple[str, ...]:
    combos = (p + h + s for p in _PREFIXES for h in _HOSTS for s in _SUFFIXES)
    return tuple(dict.fromkeys((*combos, *_SCHEMES)))


@cache
def all_payloads() -> tuple[str, ...]:
    """The hand-written corpus, then the generated one."""
    return tuple(dict.fromkeys((*load_payloads(), *generated_payloads())))
