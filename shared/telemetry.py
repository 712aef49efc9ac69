"""Telemetry: OpenTelemetry counters, a batch-time histogram and a scoring span, off unless configured.

With `APPLICATIONINSIGHTS_CONNECTION_STRING` set, the first batch configures the Azure Monitor
OpenTelemetry distro (`configure_azure_monitor()`, as the Functions OpenTelemetry guide shows for
Python: learn.microsoft.com/azure/azure-functions/opentelemetry-howto) and records, per batch:
counters of events scored, flagged and rejected, a histogram of scoring time, all with the model
version as an attribute, and a `score batch` span. The span is a child of the invocation the host
traces (which also covers the Cosmos DB output write), and it links to each event's producer trace
(`Diagnostic-Id`/`traceparent` application property), so a transaction can be followed from the
sender through scoring to the write.

Without the setting nothing is imported and each call is a no-op: the hot path pays nothing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import Any, Protocol

logger = logging.getLogger(__name__)

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
MAX_LINKS = 64
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Telemetry(Protocol):
    """What the scorer reports per batch."""

    enabled: bool

    def batch_span(
        self, events: int, partition: str | None, traceparents: Sequence[str]
    ) -> AbstractContextManager[object]: ...

    def record_batch(self, *, scored: int, flagged: int, rejected: int, seconds: float, model_version: str) -> None: ...


class NoTelemetry:
    """Used when no connection string is set: every call returns at once."""

    enabled = False

    def batch_span(
        self, events: int, partition: str | None, traceparents: Sequence[str]
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
    def batch_span(self, events: int, partition: str | None, traceparents: Sequence[str]) -> Iterator[object]:
        from opentelemetry.trace import Link, SpanContext, TraceFlags

        links = []
        for value in dict.fromkeys(traceparents):
            match = _TRACEPARENT.match(value)
            if match:
                trace_id, span_id, flags = (int(g, 16) for g in match.groups())
                context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
                links.append(Link(context))
            if len(links) == MAX_LINKS:
                break
        attributes: dict[str, str | int] = {"messaging.system": "eventhubs", "messaging.batch.message_count": events}
        if partition is not None:
            attributes["messaging.destination.partition.id"] = partition
        with self._tracer.start_as_current_span("score batch", links=links, attributes=attributes) as span:
            yield span

    def record_batch(self, *, scored: int, flagged: int, rejected: int, seconds: float, model_version: str) -> None:
        attributes = {"model.version": model_version}
        self._scored.add(scored, attributes)
        self._flagged.add(flagged, attributes)
        self._rejected.add(rejected, attributes)
        self._duration.record(seconds * 1000.0, attributes)


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
    configure_azure_monitor()
    logger.info("OpenTelemetry export to Azure Monitor is on")
    return OpenTelemetryTelemetry()
