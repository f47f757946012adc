"""The real client address, believed only from proxies we trust.

``X-Forwarded-For`` is read right to left and only while each hop is a
trusted proxy; the first untrusted address is the client. A client cannot
spoof its way past this: whatever it writes into the header sits to the left
of the address our own proxy appended.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from gateway.observe.audit import request_id_from
from gateway.observe.events import request_id
from gateway.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Addresses whose answer is remembered: the peers (nginx, a few proxies) are asked about on every request,
# and parsing an address costs more than the rest of the question; hops an attacker writes into
# X-Forwarded-For only push others out of a bounded cache.
TRUST_CACHE_SIZE = 1024


class ClientAddress:
    """Resolves the client address of a request from its peer and XFF header."""

    def __init__(self, trusted_proxies: Iterable[str], unix_socket: bool = False) -> None:
        """``unix_socket``: the server listens on a Unix domain socket (setting ``uds``), whose peers carry no
        address (``scope["client"]`` is None): the socket directory's permissions already decide who may
        connect (nginx), so such a peer is a trusted proxy. Over TCP a peer without an address is never trusted.
        """
        self.trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self.unix_socket = unix_socket
        self._remembered = functools.lru_cache(maxsize=TRUST_CACHE_SIZE)(self._is_trusted)

    def is_trusted(self, address: str) -> bool:
        """Whether ``address`` (an IP address as text) is in a trusted proxy network; garbage is not."""
        return self._remembered(address)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def trusts_peer(self, scope: Scope) -> bool:
        """Whether the request's peer (the TCP client) is a trusted proxy: its headers are believed."""
        client = scope.get("client")
        if client is None:
            return self.unix_socket
        return self.is_trusted(client[0])

    def set_request_id(self, scope: Scope, trusted: bool | None = None) -> str:
        """This request's id (the proxy's, when a trusted proxy sent one), set for its log lines.

        ``trusted``: :meth:`trusts_peer`'s answer when the caller has it already (it parses an address).
        """
        rid = request_id_from(scope["headers"], self.trusts_peer(scope) if trusted is None else trusted)
        request_id.set(rid)
        return rid

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        address = peer or "unknown"
        if not forwarded_for or not (self.is_trusted(address) if peer else self.unix_socket):
            return address
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break  # garbage: the last address we could trust is the best we know
            address = hop
            if not self.is_trusted(hop):
                break
        return address
