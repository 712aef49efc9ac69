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


INVOCATION = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _tracing() -> tuple[Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    return t.OpenTelemetryTelemetry(MeterProvider(), tracer_provider), spans


def test_span_is_a_child_of_the_invocation_it_is_given() -> None:
    """With the invocation's traceparent the span joins the host's trace as its child, links unchanged."""
    telemetry, spans = _tracing()
    with telemetry.batch_span(2, "0", [PRODUCER], parent=INVOCATION):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is not None
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.parent.is_remote
    assert [format(link.context.trace_id, "032x") for link in span.links] == ["0af7651916cd43dd8448eb211c80319c"]


@pytest.mark.parametrize("parent", [None, "", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
def test_without_a_valid_invocation_the_span_starts_its_own_trace(parent: str | None) -> None:
    """No parent, a malformed one or the all-zero context: a root span, never a crash."""
    telemetry, spans = _tracing()
    with telemetry.batch_span(1, None, [], parent=parent):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is None


def test_the_worker_does_not_carry_the_invocation_context_into_a_sync_function() -> None:
    """Why `parent` is passed explicitly: the worker attaches the invocation's trace context in its
    event loop, then runs a sync function on a thread-pool thread, where that context is not current.

    This pins azure_functions_runtime's behaviour (the package Azure runs for Python 3.13). If it starts
    failing, the worker now propagates the context and `parent` has become redundant, not wrong.
    """
    import asyncio
    import importlib
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from opentelemetry import trace

    # Imported by name: the package ships no type information (mypy would refuse a plain import).
    otel = importlib.import_module("azure_functions_runtime.otel")
    run_sync_func = importlib.import_module("azure_functions_runtime.utils.executor").run_sync_func

    seen: list[bool] = []

    def function() -> None:
        seen.append(trace.get_current_span().get_span_context().is_valid)

    invocation = SimpleNamespace(
        trace_context=SimpleNamespace(trace_parent=INVOCATION, trace_state=""),
        thread_local_storage=threading.local(),
    )

    async def invoke() -> bool:
        otel.update_opentelemetry_status()
        otel.configure_opentelemetry(invocation)
        attached_in_loop = trace.get_current_span().get_span_context().is_valid
        with ThreadPoolExecutor(1) as pool:
            await asyncio.get_running_loop().run_in_executor(pool, run_sync_func, "inv-1", invocation, function, {})
        return attached_in_loop

    assert asyncio.run(invoke()) is True
    assert seen == [False]


def test_on_with_connection_string_configures_the_distro_without_live_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection string turns export on through configure_azure_monitor, once, Live Metrics off."""
    import azure.monitor.opentelemetry as distro

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(distro, "configure_azure_monitor", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv(t.CONNECTION_SETTING, "InstrumentationKey=00000000-0000-0000-0000-000000000000")
    t.get_telemetry.cache_clear()
    try:
        first, second = t.get_telemetry(), t.get_telemetry()
    finally:
        t.get_telemetry.cache_clear()
    assert first is second
    assert first.enabled
    assert calls == [{"enable_live_metrics": False}]
