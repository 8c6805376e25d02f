"""Which ``Host`` headers the single-user HTTP server answers to: the names it is really reached by.

The ``Host`` check is the defence against DNS rebinding: a web page at ``evil.example`` whose name the
attacker re-points at this machine sends ``Host: evil.example``, and gets 421. The list must still hold
every name a legitimate client uses. Bound to loopback that is ``127.0.0.1``, ``localhost`` and
``[::1]``. Bound beyond loopback (which needs ``PCREF_HTTP_BEARER_TOKEN``), clients use the machine's
name or one of its addresses — and, on the machine itself, the loopback names — so by default those are
served: the loopback names, the bind address (unless it is the wildcard), the host name and fully
qualified name, and the addresses they resolve to plus the addresses the machine sends from.
``PCREF_HTTP_ALLOWED_HOSTS`` replaces that list (a reverse proxy's public name, say); a wildcard is
refused by the settings. Each name is served with and without the port.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Sequence

__all__ = ["LOOPBACK_NAMES", "is_loopback", "machine_names", "served_hosts"]

log = logging.getLogger("pcref_mcp.server")

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
# Documentation addresses (RFC 5737, RFC 3849): connecting a UDP socket to one sends nothing; it only
# asks the kernel which local address a packet beyond this machine would leave from.
_PROBES = ((socket.AF_INET, "198.51.100.1"), (socket.AF_INET6, "2001:db8::1"))


def served_hosts(configured: Sequence[str], bind: str, port: int) -> list[str]:
    """Every ``Host`` value to accept: each name with and without ``:port``, IPv6 in brackets."""
    if configured:
        names: Iterable[str] = configured
    elif is_loopback(bind):
        names = LOOPBACK_NAMES
    else:
        names = [*LOOPBACK_NAMES, *([] if bind in WILDCARDS else [bind]), *machine_names()]
    hosts: list[str] = []
    for name in names:
        for host in _spellings(name, port):
            if host not in hosts:
                hosts.append(host)
    return hosts


def machine_names() -> list[str]:
    """This machine's host name, its fully qualified name, and its addresses (no link-local ones)."""
    names: list[str] = []
    hostname = socket.gethostname()
    for name in (hostname, _fqdn(hostname)):
        if name and name not in names:
            names.append(name)
    addresses: list[str] = []
    for name in list(names):
        try:
            found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses.extend(str(info[4][0]) for info in found)
    for family, probe in _PROBES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                addresses.append(str(udp.getsockname()[0]))
        except OSError:  # no route of that family: nothing to add
            continue
    for address in addresses:
        if "%" in address or ipaddress.ip_address(address).is_link_local:
            continue  # a zone-scoped address cannot be spelled in a Host header usefully
        if address not in names:
            names.append(address)
    return names


def _fqdn(hostname: str) -> str:
    try:
        return socket.getfqdn(hostname)
    except OSError:
        return ""


def _spellings(name: str, port: int) -> list[str]:
    """``name`` as a Host header spells it: IPv6 in brackets; with and without the port unless it
    names a port of its own."""
    if name.startswith("["):
        bare, _, rest = name.partition("]")
        return [name] if rest.startswith(":") else [f"{bare}]", f"{bare}]:{port}"]
    if name.count(":") > 1:  # a bare IPv6 address
        return [f"[{name}]", f"[{name}]:{port}"]
    if ":" in name:
        return [name]
    return [name, f"{name}:{port}"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
