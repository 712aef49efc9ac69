"""Telemetry: off (and free) without a connection string; counters, histogram and linked spans with one."""

from __future__ import annotations

from typing import Any

import pytest

from shared import telemetry as t

pytestmark = pytest.mark.unit

PRODUCER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_off_without_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    """No APPLICATIONINSIGHTS_CONNECTION_STRING: the no-op, and the distro is never imported."""
    import sys

    monkeypatch.delenv(t.CONNECTION_SETTING, raising=False)
    t.get_telemetry.cache_clear()
    try:
        telemetry = t.get_telemetry()
        assert isinstance(telemetry, t.NoTelemetry)
        with telemetry.batch_span(3, "0", [PRODUCER]):
            telemetry.record_batch(scored=3, flagged=1, rejected=0, seconds=0.001, model_version="v")
    finally:
        t.get_telemetry.cache_clear()
    assert "azure.monitor.opentelemetry" not in sys.modules


def test_counters_histogram_and_linked_span() -> None:
    """Per batch: scored/flagged/rejected counters and a duration histogram with the model version;
    a `score batch` span linked to each producer trace."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = t.OpenTelemetryTelemetry(MeterProvider(metric_readers=[reader]), tracer_provider)

    with telemetry.batch_span(5, "3", [PRODUCER, PRODUCER, "garbage"]):
        telemetry.record_batch(scored=4, flagged=1, rejected=1, seconds=0.002, model_version="xgb-1")

    (span,) = spans.get_finished_spans()
    assert span.name == "score batch"
    assert span.attributes is not None
    assert span.attributes["messaging.destination.partition.id"] == "3"
    assert [format(link.context.trace_id, "032x") for link in span.links] == ["0af7651916cd43dd8448eb211c80319c"]

    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, Any] = {
        metric.name: metric.data.data_points[0]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    assert points["fraud.events.scored"].value == 4
    assert points["fraud.events.flagged"].value == 1
    assert points["fraud.events.rejected"].value == 1
    assert points["fraud.batch.duration"].sum == pytest.approx(2.0)
    assert points["fraud.events.scored"].attributes == {"model.version": "xgb-1"}


def test_traceparents_from_event_properties() -> None:
    """Diagnostic-Id (Event Hubs SDKs) or traceparent, whichever the producer set."""
    props = [{"Diagnostic-Id": PRODUCER}, {"traceparent": PRODUCER}, {"other": 1}, "not a mapping"]
    assert t.traceparents(props) == [PRODUCER, PRODUCER]
    assert t.traceparents(None) == []
