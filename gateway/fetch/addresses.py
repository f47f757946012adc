"""Which IP addresses the gateway may connect to on behalf of a visitor (pure).

Whatever a visitor types into the login form makes the gateway fetch it, and
then POST to whatever endpoint that document names. Without a guard that is a
server-side request forgery (SSRF) hole: ``http://127.0.0.1:6379/``,
``http://169.254.169.254/`` (cloud metadata) or a name resolving to
``10.0.0.5`` would all be fetched from inside the network.

The rule is an allow rule at heart: an address is fetchable only if it is
ordinary global unicast. Everything special-purpose in the IANA registries is
refused (RFC 6890 and its updates), and IPv6 forms that *carry* an IPv4
address (IPv4-mapped, 6to4, NAT64) are judged by the IPv4 address inside, so
``::ffff:127.0.0.1`` is loopback. Teredo (``2001::/32``) is refused outright:
it tunnels through relays and obfuscates the client address.

Decimal, octal and hexadecimal host spellings (``2130706433``, ``0177.0.0.1``,
``0x7f.1``) are not a separate case: ``getaddrinfo`` (and
:func:`parse_host_address`) turns them into ``127.0.0.1`` before the check.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

_V4 = IPv4Network
_V6 = IPv6Network

# IPv4 special-purpose ranges (IANA IPv4 Special-Purpose Address Registry, RFC 6890).
FORBIDDEN_IPV4: tuple[IPv4Network, ...] = (
    _V4("0.0.0.0/8"),  # "this network"; 0.0.0.0 reaches the local host on Linux
    _V4("10.0.0.0/8"),  # private (RFC 1918)
    _V4("100.64.0.0/10"),  # shared address space, carrier-grade NAT (RFC 6598)
    _V4("127.0.0.0/8"),  # loopback
    _V4("169.254.0.0/16"),  # link-local, including cloud metadata 169.254.169.254
    _V4("172.16.0.0/12"),  # private (RFC 1918)
    _V4("192.0.0.0/24"),  # IETF protocol assignments
    _V4("192.0.2.0/24"),  # documentation TEST-NET-1
    _V4("192.88.99.0/24"),  # deprecated 6to4 relay anycast
    _V4("192.168.0.0/16"),  # private (RFC 1918)
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # documentation TEST-NET-2
    _V4("203.0.113.0/24"),  # documentation TEST-NET-3
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, including the limited broadcast 255.255.255.255
)

# IPv6: only global unicast (2000::/3) may be fetched. Outside it lie loopback,
# unspecified, IPv4-compatible, discard-only, unique-local fc00::/7, link-local
# fe80::/10, site-local fec0::/10, multicast ff00::/8 and local-use NAT64.
GLOBAL_UNICAST_IPV6 = _V6("2000::/3")
# Special-purpose ranges inside 2000::/3.
FORBIDDEN_IPV6: tuple[IPv6Network, ...] = (
    _V6("2001::/23"),  # IETF protocol assignments, including Teredo 2001::/32 and ORCHID
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation (RFC 9637)
)

_NAT64_WELL_KNOWN = _V6("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4 address
_SIXTOFOUR = _V6("2002::/16")  # RFC 3056: bits 16-48 are the IPv4 address

# Characters of the legacy inet_aton spellings: 2130706433, 0177.0.0.1, 0x7f.1.
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")


def is_forbidden_address(ip: IPAddress) -> bool:
    """True when the gateway must not connect to ``ip`` (unless private fetching is enabled).

    Python's own ``is_global`` is consulted too, so a range a newer Python
    learns to call non-global is refused as well; it only ever adds refusals.
    """
    if isinstance(ip, IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return is_forbidden_address(embedded)
        if ip.scope_id is not None:
            return True
        return ip not in GLOBAL_UNICAST_IPV6 or any(ip in net for net in FORBIDDEN_IPV6) or not ip.is_global
    return any(ip in net for net in FORBIDDEN_IPV4) or not ip.is_global


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the translation forms.

    An IPv4-mapped address is the IPv4 host itself on a dual-stack socket; a
    6to4 or NAT64 address is routed to the IPv4 host by a gateway. On an
    IPv6-only network with DNS64 every IPv4 site resolves to ``64:ff9b::/96``,
    so public ones must stay reachable: judge them by what they carry.
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _SIXTOFOUR:
        return ip.sixtofour
    if ip in _NAT64_WELL_KNOWN:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_host_address(host: str) -> IPAddress | None:
    """The address a URL host names literally, or ``None`` when it is a DNS name.

    Accepts ``[::1]`` brackets, IPv6 zone ids (``fe80::1%eth0``) and the legacy
    IPv4 spellings that ``inet_aton`` (and so ``getaddrinfo``) understands:
    ``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``. Pure: no DNS.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(text):
        try:
            return IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


__all__ = [
    "FORBIDDEN_IPV4",
    "FORBIDDEN_IPV6",
    "GLOBAL_UNICAST_IPV6",
    "IPAddress",
    "embedded_ipv4",
    "is_forbidden_address",
    "parse_host_address",
]
