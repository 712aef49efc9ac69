"""The one loopback check: hosts, URLs and Cosmos DB connection strings, parsed rather than searched."""

from __future__ import annotations

import pytest

from shared.loopback import connection_string_endpoint, is_loopback_host, is_loopback_url

pytestmark = pytest.mark.unit

KEY = "a" * 88


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.5.5.5", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost.example.com", False),
        ("127.0.0.1.nip.io", False),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("::2", False),
        ("", False),
    ],
)
def test_loopback_host(host: str, expected: bool) -> None:
    """localhost, 127.0.0.0/8 and ::1, whatever the case or brackets; a name that merely starts so is remote."""
    assert is_loopback_host(host) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://localhost:8081/", True),
        ("https://LOCALHOST:8081/", True),
        ("http://127.0.0.1:7071/api", True),
        ("https://127.5.5.5/", True),
        ("http://[::1]:8081", True),
        ("https://user:pw@localhost/", True),
        ("https://localhost.example.com", False),
        ("https://localhost.example.com:8081/", False),
        ("https://127.0.0.1.nip.io", False),
        ("https://evil.com/?x=://localhost", False),
        ("https://evil.com/://127.0.0.1/", False),
        ("https://localhost@evil.com/", False),
        ("https://acct.documents.azure.com:443/", False),
        ("localhost", False),
        ("http://[::1", False),
        ("", False),
    ],
)
def test_loopback_url(url: str, expected: bool) -> None:
    """Only the URL's host counts: not its path, query or user info, and a malformed URL is not loopback."""
    assert is_loopback_url(url) is expected


@pytest.mark.parametrize(
    ("connection", "endpoint", "loopback"),
    [
        (f"AccountEndpoint=https://localhost:8081/;AccountKey={KEY};", "https://localhost:8081/", True),
        (f"AccountKey={KEY};AccountEndpoint=http://[::1]:8081/", "http://[::1]:8081/", True),
        (f"AccountEndpoint=https://127.0.0.1:9/;AccountKey={KEY}==;", "https://127.0.0.1:9/", True),
        (f"AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey={KEY};", None, False),
        (f"AccountEndpoint=https://localhost.example.com/;AccountKey={KEY};", None, False),
        # A loopback address elsewhere in the string does not make the account loopback.
        (f"AccountEndpoint=https://acct.documents.azure.com/;AccountKey={KEY};x=https://localhost/", None, False),
        (f"AccountKey={KEY};", "", False),
        ("", "", False),
    ],
)
def test_connection_string_endpoint(connection: str, endpoint: str | None, loopback: bool) -> None:
    """The AccountEndpoint is read out of the string (keys keep their trailing `=`), and only it is checked."""
    found = connection_string_endpoint(connection)
    if endpoint is not None:
        assert found == endpoint
    assert is_loopback_url(found) is loopback
