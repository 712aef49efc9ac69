"""Telemetry: OpenTelemetry counters, a batch-time histogram and a scoring span, off unless configured.

With `APPLICATIONINSIGHTS_CONNECTION_STRING` set, the first call of `get_telemetry()` configures the
Azure Monitor OpenTelemetry distro, as the Functions OpenTelemetry guide shows for Python
(learn.microsoft.com/azure/azure-functions/opentelemetry-howto), and per batch the scorer records:
counters of events scored, flagged and rejected, a histogram of scoring time, all with the model
version as an attribute, and a `score batch` span linked to each event's producer trace
(`Diagnostic-Id`/`traceparent` application property).

The guide's other two parts live outside this module, and the span's parentage depends on them:

- host.json `"telemetryMode": "OpenTelemetry"` and the app setting `PYTHON_ENABLE_OPENTELEMETRY=true`
  (infra/main.bicep). With both, the worker tells the host it exports its own logs, so each Python log
  line reaches Application Insights once; without them the host forwards the same lines a second time.
  `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY` stays unset: it makes the worker call
  `configure_azure_monitor()` too, and the providers would be set up twice.
- The parent of `score batch`. The worker extracts the invocation's W3C trace context and attaches it in
  its event loop, but runs a synchronous function on a thread-pool thread, where that context is not
  current (azure_functions_runtime: `configure_opentelemetry` in `invocation_request`, then
  `run_in_executor`). So `batch_span(parent=...)` takes the invocation's `traceparent` explicitly
  (`func.Context.trace_context.trace_parent`), and the span is then a child of the host's invocation.
  Without it the span starts a trace of its own, still linked to the producers.

Export uses Entra ID when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD` is set (the
exporter reads it and signs in with the managed identity). Live Metrics stays off: it is not used here,
and with Entra-only ingestion it has logged a 401 a second (Azure/azure-sdk-for-python#48251).

Without the connection string nothing is imported and each call is a no-op: the hot path pays nothing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import Any, Protocol

from shared import caches

logger = logging.getLogger(__name__)

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
MAX_LINKS = 64
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Telemetry(Protocol):
    """What the scorer reports per batch."""

    enabled: bool

    def batch_span(
        self, events: int, partition: str | None, traceparents: Sequence[str], parent: str | None = None
    ) -> AbstractContextManager[object]: ...

    def record_batch(self, *, scored: int, flagged: int, rejected: int, seconds: float, model_version: str) -> None: ...


class NoTelemetry:
    """Used when no connection string is set: every call returns at once."""

    enabled = False

    def batch_span(
        self, events: int, partition: str | None, traceparents: Sequence[str], parent: str | None = None
    ) -> AbstractContextManager[object]:
        return nullcontext()

    def record_batch(self, *, scored: int, flagged: int, rejected: int, seconds: float, model_version: str) -> None:
        return None


class OpenTelemetryTelemetry:
    """Reports through the OpenTelemetry API to whatever providers are configured (Azure Monitor on Azure)."""

    enabled = True

    def __init__(self, meter_provider: Any = None, tracer_provider: Any = None) -> None:
        from opentelemetry import metrics, trace

        meter = metrics.get_meter("fraud.scoring", meter_provider=meter_provider)
        self._tracer = trace.get_tracer("fraud.scoring", tracer_provider=tracer_provider)
        self._scored = meter.create_counter("fraud.events.scored", unit="{event}", description="Events scored")
        self._flagged = meter.create_counter("fraud.events.flagged", unit="{event}", description="Events flagged")
        self._rejected = meter.create_counter("fraud.events.rejected", unit="{event}", description="Events rejected")
        self._duration = meter.create_histogram(
            "fraud.batch.duration", unit="ms", description="Time to score one Event Hubs batch"
        )

    @contextmanager
    def batch_span(
        self, events: int, partition: str | None, traceparents: Sequence[str], parent: str | None = None
    ) -> Iterator[object]:
        """A `score batch` span: a child of `parent` (the invocation's traceparent) when it is valid,
        otherwise of whatever context is current; linked to up to MAX_LINKS distinct producer traces."""
        from opentelemetry.trace import Link, NonRecordingSpan, set_span_in_context

        links = []
        for value in dict.fromkeys(traceparents):
            context = _span_context(value)
            if context is not None:
                links.append(Link(context))
            if len(links) == MAX_LINKS:
                break
        parent_context = _span_context(parent) if parent else None
        otel_parent = set_span_in_context(NonRecordingSpan(parent_context)) if parent_context else None
        attributes: dict[str, str | int] = {"messaging.system": "eventhubs", "messaging.batch.message_count": events}
        if partition is not None:
            attributes["messaging.destination.partition.id"] = partition
        with self._tracer.start_as_current_span(
            "score batch", context=otel_parent, links=links, attributes=attributes
        ) as span:
            yield span

    def record_batch(self, *, scored: int, flagged: int, rejected: int, seconds: float, model_version: str) -> None:
        attributes = {"model.version": model_version}
        self._scored.add(scored, attributes)
        self._flagged.add(flagged, attributes)
        self._rejected.add(rejected, attributes)
        self._duration.record(seconds * 1000.0, attributes)


def _span_context(traceparent: str) -> Any:
    """A remote SpanContext from a W3C traceparent, or None for anything malformed or all-zero."""
    from opentelemetry.trace import SpanContext, TraceFlags

    match = _TRACEPARENT.match(traceparent)
    if match is None:
        return None
    trace_id, span_id, flags = (int(g, 16) for g in match.groups())
    context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return context if context.is_valid else None


def traceparents(properties: Sequence[object] | None) -> list[str]:
    """Producer trace contexts from the events' application properties (Event Hubs SDKs set Diagnostic-Id)."""
    if not properties:
        return []
    found = []
    for props in properties:
        # The worker decodes properties to plain dicts; `type(...) is dict` keeps the common case cheap.
        if type(props) is not dict and not isinstance(props, Mapping):
            continue
        value = props.get("Diagnostic-Id") or props.get("traceparent")
        if isinstance(value, str):
            found.append(value)
    return found


@cache
def get_telemetry() -> Telemetry:
    """The process's telemetry: Azure Monitor when its connection string is set, otherwise a no-op."""
    if not os.environ.get(CONNECTION_SETTING):
        return NoTelemetry()
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        logger.warning(
            "%s is set but azure-monitor-opentelemetry is not installed; telemetry is off", CONNECTION_SETTING
        )
        return NoTelemetry()
    # Credential: none passed, because the exporter builds the managed identity credential itself from
    # APPLICATIONINSIGHTS_AUTHENTICATION_STRING (azure-monitor-opentelemetry-exporter, export/_base.py).
    configure_azure_monitor(enable_live_metrics=False)
    logger.info("OpenTelemetry export to Azure Monitor is on")
    return OpenTelemetryTelemetry()


caches.register("telemetry", get_telemetry.cache_clear)
