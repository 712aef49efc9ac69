"""Fixtures for tests against a local cosmosdb-server: one server per session, one database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.cosmos import CosmosClient

from devhost.cosmos_store import PROFILES, CosmosStore
from shared import caches
from tests.integration.cosmos_server import CosmosServer


def pytest_configure(config: pytest.Config) -> None:
    # The server's bundled certificate is self-signed and expired, so the SDK runs unverified;
    # silence that warning for this one local address only.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Unverified HTTPS request is being made to host '127.0.0.1':urllib3.exceptions.InsecureRequestWarning",
    )


@pytest.fixture(scope="session")
def cosmos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CosmosServer]:
    """A running cosmosdb-server, its log kept under pytest's temporary directory."""
    with CosmosServer(log_dir=tmp_path_factory.mktemp("cosmosdb-server")) as server:
        yield server


@pytest.fixture(scope="session")
def cosmos_client(cosmos_server: CosmosServer) -> Iterator[CosmosClient]:
    """One SDK client for the session (a client reads the account on creation)."""
    with cosmos_server.client() as client:
        yield client


@pytest.fixture
def cosmos_sink(cosmos_client: CosmosClient) -> Iterator[CosmosStore]:
    """A sink over a fresh database with the `scored` and `rejected` containers, dropped afterwards."""
    database = f"test-{uuid.uuid4().hex}"
    yield CosmosStore(cosmos_client, database)
    cosmos_client.delete_database(database)


@pytest.fixture
def cosmos_state(
    cosmos_server: CosmosServer, cosmos_sink: CosmosStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CosmosStore]:
    """The app configured as on Azure: behaviour state in the server's `profiles` container."""
    cosmos_sink.upsert(PROFILES, [])  # creates the container
    monkeypatch.setenv("BEHAVIOUR_STATE", "cosmos")
    monkeypatch.setenv("COSMOS_DATABASE", cosmos_sink.database_name)
    monkeypatch.setenv(
        "CosmosDBConnection", f"AccountEndpoint={cosmos_server.endpoint};AccountKey={cosmos_server.key};"
    )
    caches.reset("settings", "state store")
    yield cosmos_sink
    caches.reset("state store")
