"""ScoreTransactions through the worker engine, with Event Hubs deliveries shaped as the host sends them."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

import functions.score as score_module
from devhost.host_messages import eventhub_input
from devhost.worker import Worker
from shared import caches
from shared.generation.generator import TransactionGenerator
from shared.scoring import bundled
from shared.scoring.model import FraudModel, LazyModel, load_model
from shared.settings import get_settings
from tests.invoke import score

pytestmark = pytest.mark.unit


def _bodies(n: int, seed: int = 3, now: datetime | None = None) -> list[bytes]:
    return [json.dumps(r).encode() for r in TransactionGenerator(seed=seed).generate(n, now=now)]


def test_batch_is_scored_into_documents(functions_worker: Worker) -> None:
    """Every good event becomes one scored document carrying the contract and the score fields."""
    bodies = _bodies(200)
    scored, rejected = score(functions_worker, bodies, partition="4", first_sequence_number=70)
    assert rejected == []
    assert [d["id"] for d in scored] == [json.loads(b)["id"] for b in bodies]
    doc = scored[0]
    for key in (
        "fraud_probability",
        "is_flagged",
        "threshold",
        "model_version",
        "scored_at",
        "enqueued_time",
        "partition",
        "account_id",
        "amount",
        "category_recipient",
        "is_fraud",
    ):
        assert key in doc, key
    assert doc["partition"] == "4"
    assert doc["sequence_number"] == 70
    assert 0.0 <= doc["fraud_probability"] <= 1.0
    assert doc["is_flagged"] == (doc["fraud_probability"] >= doc["threshold"])
    assert doc["enqueued_time"].endswith("Z")


def test_flagged_documents_carry_reasons(functions_worker: Worker) -> None:
    """Flagged documents name up to three fields that pushed toward fraud; others carry none."""
    scored, _ = score(functions_worker, _bodies(500))
    flagged = [d for d in scored if d["is_flagged"]]
    assert flagged, "a 10% fraud sample should flag something"
    for d in flagged:
        assert 1 <= len(d["reasons"]) <= 3
        contributions = [r["contribution"] for r in d["reasons"]]
        assert contributions == sorted(contributions, reverse=True)
    assert all(d["reasons"] == [] for d in scored if not d["is_flagged"])


def test_bad_events_are_rejected_not_fatal(functions_worker: Worker) -> None:
    """Bad JSON, non-UTF-8, wrong fields and duplicates go to `rejected`; the rest is scored."""
    good = _bodies(5)
    broken = dict(json.loads(good[0]), id="other-id", amount="lots")
    bodies = [b"{not json", b"\xff\xfe", json.dumps(broken).encode(), *good, good[1]]
    scored, rejected = score(functions_worker, bodies)
    assert len(scored) + len(rejected) == len(bodies)
    assert len(scored) == 5
    reasons = [(d["field"], d["reason"]) for d in rejected]
    assert reasons == [
        ("body", "invalid_json"),
        ("body", "invalid_json"),
        ("amount", "wrong_type"),
        ("id", "duplicate_id"),
    ]
    assert rejected[0]["raw_body"] == "{not json"
    assert rejected[1]["raw_body"] is None
    assert rejected[1]["raw_body_base64"] == "//4="
    assert len({d["id"] for d in rejected}) == 4


def test_outputs_reach_the_host_as_json_arrays(functions_worker: Worker) -> None:
    """Each Cosmos DB output comes back as TypedData.json holding one array, as the host's collector reads it."""
    result = functions_worker.invoke("ScoreTransactions", *eventhub_input([*_bodies(50), b"garbage"]))
    kinds = {b.name: b.data.WhichOneof("data") for b in result.response.output_data}
    # The profiles output goes to the host only with the Cosmos DB state store (tests/integration cover it).
    assert kinds == {"scored": "json", "rejected": "json"}
    assert len(result.documents("scored")) == 50
    assert len(result.documents("rejected")) == 1


def test_replayed_batch_yields_same_ids(functions_worker: Worker) -> None:
    """A redelivered batch produces the same document ids, so Cosmos upserts overwrite."""
    bodies = [*_bodies(50), b"garbage"]
    first = score(functions_worker, bodies, first_sequence_number=10)
    second = score(functions_worker, bodies, first_sequence_number=10)
    assert [d["id"] for d in first[0]] == [d["id"] for d in second[0]]
    assert [d["id"] for d in first[1]] == [d["id"] for d in second[1]]


def test_empty_batch_sets_empty_outputs(functions_worker: Worker) -> None:
    """An empty delivery writes nothing and does not fail."""
    scored, rejected = score(functions_worker, [])
    assert scored == []
    assert rejected == []


def test_threshold_override_setting(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """FRAUD_THRESHOLD overrides the metadata threshold."""
    monkeypatch.setenv("FRAUD_THRESHOLD", "0.0")
    monkeypatch.setattr(bundled, "bundled_model", LazyModel(bundled.load_bundled_model))
    scored, _ = score(functions_worker, _bodies(20))
    assert all(d["is_flagged"] and d["threshold"] == 0.0 for d in scored)


def test_broken_model_rejects_batch_instead_of_losing_it(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A tampered artifact is refused: the batch lands in `rejected` with a reason, one log line per process."""
    from pathlib import Path

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    src = Path(get_settings().model_dir)
    for name in ("fraud_model.joblib", "fraud_model.metadata.json"):
        (model_dir / name).write_bytes((src / name).read_bytes())
    artifact = model_dir / "fraud_model.joblib"
    artifact.write_bytes(artifact.read_bytes()[:-10])
    monkeypatch.setattr(bundled, "bundled_model", LazyModel(lambda: load_model(model_dir)))
    for _ in range(2):
        scored, rejected = score(functions_worker, _bodies(10))
        assert scored == []
        assert len(rejected) == 10
        assert {d["reason"] for d in rejected} == {"model_unavailable"}
    assert sum("refusing to score" in r.getMessage() for r in caplog.records) == 1


def test_telemetry_counts_batches_and_links_producers(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With telemetry on, a batch adds to the scored/flagged/rejected counters (model version attached); its
    span is a child of the host's invocation trace and links to the producers' traces (Diagnostic-Id)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared.telemetry import OpenTelemetryTelemetry

    reader, spans, tracer_provider = InMemoryMetricReader(), InMemorySpanExporter(), TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = OpenTelemetryTelemetry(MeterProvider(metric_readers=[reader]), tracer_provider)
    monkeypatch.setattr(score_module, "get_telemetry", lambda: telemetry)

    bodies = [*_bodies(30), b"not json"]
    producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    invocation = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    message = eventhub_input(bodies, properties=[{"Diagnostic-Id": producer}] * len(bodies))
    scored = functions_worker.invoke("ScoreTransactions", *message, trace_parent=invocation).documents("scored")

    (span,) = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert [format(link.context.trace_id, "032x") for link in span.links] == ["4bf92f3577b34da6a3ce929d0e0e4736"]
    data = reader.get_metrics_data()
    assert data is not None
    values: dict[str, Any] = {
        m.name: m.data.data_points[0] for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    flagged = sum(1 for d in scored if d["is_flagged"])
    assert values["fraud.events.scored"].value == 30
    assert values["fraud.events.rejected"].value == 1
    assert values["fraud.events.flagged"].value == flagged
    assert values["fraud.events.scored"].attributes["model.version"].startswith("xgb-")
    assert values["fraud.batch.duration"].count == 1


def test_enqueued_times_are_utc_whatever_the_local_zone(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host sends EnqueuedTimeUtc without a zone; it is UTC even when the process runs in New York."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        enqueued = datetime(2025, 11, 29, 23, 0, 0, 123456, tzinfo=UTC)
        scored, _ = score(functions_worker, _bodies(3, now=enqueued), enqueued=[enqueued] * 3)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert {d["enqueued_time"] for d in scored} == {"2025-11-29T23:00:00.123Z"}


def test_concurrent_first_invocations_load_the_model_once(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches from several partitions arriving at once (the worker's thread pool) load the model once."""
    loads: list[int] = []

    def slow_load() -> FraudModel:
        loads.append(1)
        time.sleep(0.3)  # long enough for every other first call to arrive while this one loads
        return bundled.load_bundled_model()

    monkeypatch.setattr(bundled, "bundled_model", LazyModel(slow_load))
    results: list[int] = []
    # One set of bodies: generated again, the same ids would carry other timestamps (an id conflict).
    bodies = _bodies(20)

    def one(partition: str) -> None:
        scored, _ = score(functions_worker, bodies, partition=partition)
        results.append(len(scored))

    threads = [threading.Thread(target=one, args=(str(p),)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [20, 20, 20, 20]
    assert loads == [1]


def test_behaviour_state_off_scores_every_payment_as_first(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEHAVIOUR_STATE=off: history unknown for every payment, even an account's tenth in the same batch."""
    import numpy as np

    from shared.behaviour import features as behaviour

    monkeypatch.setenv("BEHAVIOUR_STATE", "off")
    # A fresh process reads its settings once: the worker fixture may have read them already.
    caches.reset("settings", "state store")
    records = TransactionGenerator(seed=9, accounts=5).generate(60)
    scored, _ = score(functions_worker, [json.dumps(r).encode() for r in records])
    columns = {f: np.asarray([r[f] for r in records]) for f in ("amount", "old_balance")}
    n = len(behaviour.FEATURES)
    assert [list(d["behaviour"].values())[:n] for d in scored] == behaviour.no_history(columns).tolist()


def test_memory_state_carries_history_across_batches(functions_worker: Worker) -> None:
    """With the test host's memory store, an account's later batch sees its earlier payments."""
    records = TransactionGenerator(seed=9, accounts=5).generate(60)
    first, _ = score(functions_worker, [json.dumps(r).encode() for r in records[:30]])
    second, _ = score(functions_worker, [json.dumps(r).encode() for r in records[30:]], first_sequence_number=30)
    assert all(d["behaviour"]["history_count"] > 0 for d in second)
    assert first[0]["behaviour"]["history_count"] == 0
