"""PublishToPowerBI through the worker engine: its metadata as the host receives it, and change-feed deliveries
against the Power BI stand-in."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import functions.publish as publish
from devhost.worker import Worker, WorkerError, worker
from shared.publishing.push import PowerBIPushClient, PowerBIUnavailableError
from shared.publishing.rows import ROW_SCHEMA, to_row
from shared.settings import get_settings
from tests.fakes.powerbi_server import FakeClock, FakePowerBI, Fault
from tests.invoke import change_feed
from tests.shared.publishing.test_rows import _doc

pytestmark = pytest.mark.integration


def deliver(docs: list[dict[str, Any]]) -> None:
    """Deliver one change-feed batch to PublishToPowerBI through the worker engine."""
    change_feed(worker(), docs)


@pytest.fixture(autouse=True)
def fresh_process() -> Iterator[None]:
    """Each test sees a new process: no cached client, no 'publishing is off' notice given yet."""
    notices = (publish._client, publish._announce_publishing_off, publish._announce_unresolved_reference)
    for cached in notices:
        cached.cache_clear()
    yield
    for cached in notices:
        cached.cache_clear()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePowerBI]:
    """The Power BI fake, with POWERBI_PUSH_URL pointing at it and settings re-read."""
    with FakePowerBI(schema=ROW_SCHEMA) as server:
        monkeypatch.setenv("POWERBI_PUSH_URL", server.url)
        get_settings.cache_clear()
        yield server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Make the handler's client sleep on a fake clock: patched where the handler names the class."""
    fake_clock = FakeClock()
    monkeypatch.setattr(
        publish, "PowerBIPushClient", functools.partial(PowerBIPushClient, sleep=fake_clock.sleep, clock=fake_clock)
    )
    return fake_clock


def test_trigger_binding_metadata(functions_worker: Worker) -> None:
    """A Cosmos DB change-feed trigger on the scored container that never creates its lease container."""
    bindings = functions_worker.bindings("PublishToPowerBI")
    assert len(bindings) == 1
    trigger = bindings[0]
    assert trigger["type"] == "cosmosDBTrigger"
    assert trigger["direction"] == "IN"
    assert trigger["name"] == "documents"
    assert trigger["connection"] == "CosmosDBConnection"
    assert trigger["databaseName"] == "%COSMOS_DATABASE%"
    assert trigger["containerName"] == "%COSMOS_SCORED_CONTAINER%"
    assert trigger["leaseContainerName"] == "%COSMOS_LEASE_CONTAINER%"
    assert trigger["createLeaseContainerIfNotExists"] is False
    assert trigger["maxItemsPerInvocation"] == 5000


def test_retry_policy_is_exponential_backoff(functions_worker: Worker) -> None:
    """The host receives an exponential-backoff retry policy, so a raised batch is re-delivered."""
    from _functions_rpc import RpcRetryOptions

    policy = functions_worker.metadata["PublishToPowerBI"].retry_options
    assert policy.retry_strategy == RpcRetryOptions.RetryStrategy.exponential_backoff
    assert policy.max_retry_count > 0
    assert policy.minimum_interval.seconds == 10
    assert policy.maximum_interval.seconds == 300


def test_documents_arrive_as_rows(fake: FakePowerBI, caplog: pytest.LogCaptureFixture) -> None:
    """Every scored document reaches Power BI as its to_row row, and the counts are logged."""
    docs = [_doc(i, is_flagged=i % 2 == 0) for i in range(7)]
    with caplog.at_level(logging.INFO, logger="functions.publish"):
        deliver(docs)
    assert fake.rows == [to_row(d) for d in docs]
    assert any("published 7 of 7 documents" in r.getMessage() for r in caplog.records)


def test_client_is_created_once_per_process(fake: FakePowerBI) -> None:
    """Two invocations share one client, so its pacing window sees every POST of the process."""
    deliver([_doc(1)])
    deliver([_doc(2)])
    assert publish._client.cache_info().misses == 1
    assert [r["id"] for r in fake.rows] == ["tx-000001", "tx-000002"]


def test_malformed_document_is_set_aside(fake: FakePowerBI, caplog: pytest.LogCaptureFixture) -> None:
    """A document that cannot become a row is skipped with a warning; the rest are published."""
    broken = _doc(1)
    del broken["fraud_probability"]
    with caplog.at_level(logging.WARNING, logger="functions.publish"):
        deliver([_doc(0), broken, _doc(2)])
    assert [r["id"] for r in fake.rows] == ["tx-000000", "tx-000002"]
    assert any("tx-000001" in r.getMessage() and "fraud_probability" in r.getMessage() for r in caplog.records)


def test_without_url_logs_once_and_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """With no POWERBI_PUSH_URL two invocations log 'off' once and never build a client."""
    with FakePowerBI() as server, caplog.at_level(logging.INFO, logger="functions.publish"):
        deliver([_doc(0)])
        deliver([_doc(1)])
        assert server.posts == []
    notices = [r for r in caplog.records if "publishing to Power BI is off" in r.getMessage()]
    assert len(notices) == 1
    assert notices[0].levelno == logging.INFO
    assert publish._client.cache_info().currsize == 0


def test_flagged_only_publishing(fake: FakePowerBI, monkeypatch: pytest.MonkeyPatch) -> None:
    """POWERBI_PUBLISH=flagged pushes only flagged rows, to stay within a push dataset's hourly row limit."""
    monkeypatch.setenv("POWERBI_PUBLISH", "flagged")
    get_settings.cache_clear()
    docs = [{**_doc(i), "is_flagged": i % 3 == 0} for i in range(9)]
    deliver(docs)
    assert sorted(row["id"] for row in fake.rows) == sorted(d["id"] for d in docs if d["is_flagged"])


def test_unresolved_key_vault_reference_is_reported_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A `@Microsoft.KeyVault(...)` value the platform did not resolve: one clear error, no request, no crash."""
    monkeypatch.setenv("POWERBI_PUSH_URL", "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/pbi/)")
    get_settings.cache_clear()
    with caplog.at_level(logging.INFO, logger="functions.publish"):
        deliver([_doc(0)])
        deliver([_doc(1)])
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Key Vault" in errors[0].getMessage()
    assert "SecretUri" not in errors[0].getMessage()
    assert publish._client.cache_info().currsize == 0


def test_unavailable_power_bi_raises_for_the_retry_policy(fake: FakePowerBI, clock: FakeClock) -> None:
    """When Power BI keeps failing, the handler raises so the trigger's retry policy re-delivers."""
    fake.script(*[Fault.http(503)] * 5)
    with pytest.raises(WorkerError, match=PowerBIUnavailableError.__name__):
        deliver([_doc(0), _doc(1)])
    assert fake.rows == []
    assert len(clock.sleeps) == 4


def test_rejection_is_logged_not_raised(fake: FakePowerBI, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A definite rejection (400) is logged with its count and does not fail the invocation."""
    fake.script(Fault.http(400))
    with caplog.at_level(logging.ERROR):
        deliver([_doc(0), _doc(1)])
    assert "power bi rejected 2 rows: HTTP 400" in caplog.messages
    assert clock.sleeps == []
    assert fake.key not in caplog.text
