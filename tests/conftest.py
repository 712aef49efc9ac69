"""Shared fixtures: clean settings per test, and the worker engine that runs the app's functions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from shared import caches
from tests.fakes.event_hubs import FakeEventHub

if TYPE_CHECKING:
    from devhost.worker import Worker

APP_SETTINGS = (
    "GENERATE_MAX_COUNT",
    "GENERATOR_FRAUD_RATE",
    "GENERATOR_SEED",
    "GENERATOR_TIMER_COUNT",
    "GENERATOR_RECORDS_PER_EVENT",
    "EVENT_HUB_PARTITION_COUNT",
    "GENERATOR_SENDER",
    "MAX_EVENT_BYTES",
    "MAX_RECORDS_PER_ENVELOPE",
    "ENQUEUED_TIME_PARSER",
    "MAX_TRANSACTIONS_PER_INVOCATION",
    "EVENT_TIME_MAX_LATE_HOURS",
    "EVENT_TIME_MAX_EARLY_HOURS",
    "SCORE_API_REASON_FIGURES",
    "MODEL_DIR",
    "FRAUD_THRESHOLD",
    "POWERBI_PUSH_URL",
    "POWERBI_TIMEOUT_SECONDS",
    "POWERBI_PUBLISH",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "BEHAVIOUR_STATE",
    "COSMOS_DATABASE",
    "COSMOS_PROFILES_CONTAINER",
    "CosmosDBConnection",
    "CosmosDBConnection__accountEndpoint",
)


@pytest.fixture(autouse=True)
def event_hub(clean_settings: None) -> Iterator[FakeEventHub]:
    """The hub the generators send to (shared.generation.sender): a fake enforcing Event Hubs' contract, per test."""
    from shared.generation import sender as event_sender

    hub = FakeEventHub(partitions=4)
    event_sender.install(hub)
    yield hub
    event_sender.install(None)


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as a fresh process would: default settings, whatever the shell exports, no cache."""
    for name in APP_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    # The test host keeps account states in memory, fresh for each test; tests of the Cosmos DB
    # store set BEHAVIOUR_STATE=cosmos and a connection themselves.
    monkeypatch.setenv("BEHAVIOUR_STATE", "memory")
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def functions_worker() -> Worker:
    """Azure's worker engine (azure-functions-runtime) in process, with this app indexed and loaded.

    Every function-level test invokes through it: `functions_worker.invoke(name, *host_messages.x_input(...))`
    sends host-shaped protobuf messages and returns the decoded outputs, as on Azure.
    """
    from devhost.worker import worker

    return worker()
