"""The local pipeline end to end: every event stored exactly once, replays change no count."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devhost.dashboard_state import DashboardState
from devhost.runner import LocalPipeline, RunOptions, host_event_hub_options
from devhost.store import SQLiteStore

pytestmark = pytest.mark.integration


def test_host_json_drives_batching() -> None:
    """Batch size and prefetch come from host.json, as the host would read them."""
    assert host_event_hub_options() == {"max_batch": 100, "prefetch": 500}


def test_embedded_store_end_to_end(tmp_path: Path) -> None:
    """N events in, N documents stored (scored + rejected), no duplicate ids, all published; replay is idempotent."""
    store = SQLiteStore(tmp_path / "p.sqlite")
    state = DashboardState()
    options = RunOptions(events=3000, partitions=3, max_batch=400, chunk=500)
    with LocalPipeline(store, options, observer=state) as pipeline:
        summary = pipeline.run()
        assert summary.generated == 3000
        assert store.count("scored") + store.count("rejected") == 3000
        assert len(set(store.ids("scored"))) == store.count("scored")
        assert summary.published == store.count("scored")
        assert state.snapshot()["totals"]["scored"] == store.count("scored")
        assert summary.latency.percentile(99) > 0

        pipeline.replay()
        assert store.count("scored") + store.count("rejected") == 3000
        assert len(set(store.ids("scored"))) == store.count("scored")


def test_envelopes_end_to_end(tmp_path: Path) -> None:
    """With 50 records per event: every transaction stored once, counted as a transaction, bad records rejected."""
    store = SQLiteStore(tmp_path / "p.sqlite")
    state = DashboardState()
    options = RunOptions(events=5000, partitions=2, max_batch=20, chunk=1000, records_per_event=50)
    with LocalPipeline(store, options, observer=state) as pipeline:
        good = b'{"account_id": "acct-1", "id": "late-1"}'  # no timestamp: rejected, with the envelope's others
        pipeline.stream.send([b'{"records": [' + good + b", 7]}", b'{"records": "nope"}'])
        summary = pipeline.run()
        assert summary.generated == 5000
        assert summary.events < 5000 / 40  # packed: ~50 transactions per event
        assert store.count("scored") == 5000
        assert store.count("rejected") == 3  # two bad records of one envelope, and one broken envelope
        assert len(set(store.ids("scored"))) == 5000
        assert state.snapshot()["totals"]["generated"] == 5000
        assert state.snapshot()["totals"]["scored"] == 5000
        assert summary.latency.counts.sum() == 5003  # one latency per transaction, not per event
        pipeline.replay()
        assert store.count("scored") == 5000
        assert store.count("rejected") == 3


def test_bad_events_in_the_stream_are_rejected_not_lost(tmp_path: Path) -> None:
    """Malformed events injected into the stream end up in `rejected`; the count still adds up."""
    store = SQLiteStore(tmp_path / "p.sqlite")
    with LocalPipeline(store, RunOptions(events=1000, partitions=2, chunk=250)) as pipeline:
        pipeline.stream.send([b"{oops", b"\xff", b'{"id": "x"}'])
        pipeline.run()
    assert store.count("scored") == 1000
    assert store.count("rejected") == 3
    reasons = sorted((d["field"], d["reason"]) for d in store.read_all("rejected"))
    assert reasons == [("body", "invalid_json"), ("body", "invalid_json"), ("timestamp", "wrong_type")]


def test_rate_limited_run_respects_duration(tmp_path: Path) -> None:
    """With a rate and a duration, generation stops at the deadline and everything generated is stored."""
    store = SQLiteStore(tmp_path / "p.sqlite")
    with LocalPipeline(store, RunOptions(events=1_000_000, rate=2000, duration_s=1.0)) as pipeline:
        summary = pipeline.run()
    assert 500 <= summary.generated <= 3000
    assert store.count("scored") + store.count("rejected") == summary.generated


def test_power_bi_outage_never_blocks_scoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With Power BI answering 503 throughout, every event is still scored and stored; the lease does not
    advance while retries last, and rows past the retry policy are counted, not silently lost.

    The fake server stands in for Power BI (see tests/fakes/powerbi_server.py).
    """
    import functions.publish as publish
    from devhost.retry import RetryPolicy
    from devhost.runner import LEASE_NAME
    from shared.publishing.push import PowerBIPushClient
    from shared.settings import get_settings
    from tests.fakes.powerbi_server import FakePowerBI, Fault

    with FakePowerBI() as fake:
        fake.script(*[Fault.http(503)] * 1000)
        monkeypatch.setenv("POWERBI_PUSH_URL", fake.url)
        get_settings.cache_clear()
        client = PowerBIPushClient(fake.url, 5.0, sleep=lambda _s: None)  # no real waits in the client's backoff
        monkeypatch.setattr(publish, "_client", lambda _url, _timeout: client)
        store = SQLiteStore(tmp_path / "p.sqlite")
        options = RunOptions(
            events=2000, publish_retry=RetryPolicy(max_retries=2, minimum_s=0.05, maximum_s=0.1), publish_drain_s=5
        )
        with LocalPipeline(store, options) as pipeline:
            summary = pipeline.run()
    assert store.count("scored") + store.count("rejected") == 2000
    assert summary.published == 0
    assert summary.unpublished == store.count("scored")
    assert store.lease(LEASE_NAME) > 0  # skipped past, as the host does once retries are spent
    assert fake.rows == []


def test_retention_never_drops_unstored_events() -> None:
    """A partition whose retention is full of events not yet stored refuses more, loudly, instead of losing them."""
    from devhost.stream import EventStream

    stream = EventStream(partitions=1, retain_per_partition=3)
    stream.send([b"1", b"2", b"3"])
    with pytest.raises(OverflowError, match="retention"):
        stream.send([b"4"])
    partition = stream.partitions[0]
    assert [e.body for e in partition.deliver(2)] == [b"1", b"2"]
    partition.checkpoint = partition.delivered
    stream.send([b"4", b"5"])  # the two stored events may age out now
    assert [e.body for e in partition.deliver(10)] == [b"3", b"4", b"5"]


def test_stage_times_fit_inside_the_run_and_its_drain(tmp_path: Path) -> None:
    """Publishing left after the last transaction is stored counts as drain time, so the stages never exceed the run.

    A backlog of change-feed documents already in the store makes most publishing happen in the drain;
    before drain_s, bench-pipeline's "loop and waiting" share came out negative.
    """
    store = SQLiteStore(tmp_path / "p.sqlite")
    store.upsert("scored", [{"id": f"old-{i}", "account_id": f"acct-{i % 50}"} for i in range(20_000)])
    with LocalPipeline(store, RunOptions(events=300, partitions=2, publish_batch=100)) as pipeline:
        summary = pipeline.run()
    assert summary.published >= 20_000
    assert summary.drain_s > 0
    assert sum(summary.stage_seconds.values()) <= summary.elapsed_s + summary.drain_s


def test_a_failing_publish_at_the_end_of_a_run_says_why_it_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Power BI still failing when the run ends: the wait for the retry policy is announced once, never silent."""
    import functions.publish as publish
    from devhost.retry import RetryPolicy
    from shared.publishing.push import PowerBIPushClient
    from shared.settings import get_settings
    from tests.fakes.powerbi_server import FakePowerBI, Fault

    document = {
        "timestamp": "2026-11-21T10:00:00Z",
        "account_id": "acct-1",
        "amount": 12.5,
        "category_recipient": "food_store",
        "transaction_type": "online",
        "transaction_method": "card",
        "foreign_transaction": 0,
        "fraud_probability": 0.1,
        "is_flagged": False,
        "threshold": 0.5,
        "model_version": "test",
        "scored_at": "2026-11-21T10:00:01Z",
    }
    with FakePowerBI() as fake:
        fake.script(*[Fault.http(503)] * 1000)
        monkeypatch.setenv("POWERBI_PUSH_URL", fake.url)
        get_settings.cache_clear()
        client = PowerBIPushClient(fake.url, 5.0, sleep=lambda _s: None)
        monkeypatch.setattr(publish, "_client", lambda _url, _timeout: client)
        store = SQLiteStore(tmp_path / "p.sqlite")
        store.upsert("scored", [{**document, "id": f"doc-{i}"} for i in range(50)])
        retry = RetryPolicy(max_retries=50, minimum_s=0.2, maximum_s=0.2)  # outlasts the drain
        options = RunOptions(events=100, partitions=1, publish_retry=retry, publish_drain_s=1.0)
        caplog.set_level("WARNING", logger="devhost.runner")
        with LocalPipeline(store, options) as pipeline:
            summary = pipeline.run()
    waits = [r.getMessage() for r in caplog.records if "the run is over" in r.getMessage()]
    assert len(waits) == 1
    assert re.search(r"waited out for up to \d+ s more", waits[0])
    assert "Ctrl-C" in waits[0]
    assert summary.published == 0
    assert summary.drain_s > 0
