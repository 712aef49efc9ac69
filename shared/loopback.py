"""Whether a host, URL or Cosmos DB connection string names this machine: the one loopback check.

Callers skip TLS verification (emulators use self-signed certificates) or allow plain http only
for loopback, so the test reads the parsed host name, never a substring of the text:
`https://localhost.example.com` and `https://evil.com/?x=://localhost` are remote.
"""

from __future__ import annotations

import ipaddress
import urllib.parse


def is_loopback_host(host: str) -> bool:
    """`localhost` (any case), an address in 127.0.0.0/8 or `::1`; brackets around an IPv6 address are fine."""
    name = host.strip().removeprefix("[").removesuffix("]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host (not its path, query or user info) is loopback."""
    try:
        host = urllib.parse.urlsplit(url.strip()).hostname
    except ValueError:  # e.g. an unbalanced "[" in the netloc
        return False
    return host is not None and is_loopback_host(host)


def connection_string_endpoint(connection: str) -> str:
    """The `AccountEndpoint=` of a Cosmos DB connection string, or "" when it has none.

    Split as azure-cosmos splits it (`;` then the first `=`, keys case-sensitive, the last one wins),
    so the endpoint checked is the one the SDK connects to.
    """
    parts = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)
    return parts.get("AccountEndpoint", "")
