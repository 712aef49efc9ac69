"""Score stage: an Event Hubs batch in, scored and rejected documents out to Cosmos DB."""

from __future__ import annotations

import gc
import logging
import time
import typing
from typing import Any

import azure.functions as func

from functions import eventhub_time  # noqa: F401  # installs the enqueued-time override before any batch
from shared.contract import EnvelopeLimits, Rejection
from shared.history import get_history
from shared.model import FraudModel, LazyModel, ModelIntegrityError, load_model
from shared.scoring import EventBatch, reject_all, score_batch
from shared.settings import get_settings
from shared.telemetry import get_telemetry, traceparents

logger = logging.getLogger(__name__)

bp = func.Blueprint()


def load_bundled_model() -> FraudModel:
    """The model in MODEL_DIR, hash-checked, with FRAUD_THRESHOLD applied if set."""
    settings = get_settings()
    model = load_model(settings.model_dir, settings.threshold_override)
    # Everything alive now (modules, libraries, the model) lives as long as the worker. Frozen, it
    # is left out of the full garbage collections that the documents of every batch eventually
    # trigger; each of those otherwise walks some 120,000 objects (70 ms measured, see
    # benchmarks/README.md). Startup garbage not yet collected stays for good: a one-off.
    gc.freeze()
    return model


bundled_model = LazyModel(load_bundled_model)
"""Loaded on first use, once per process; `ScoreRequest` shares it."""


def _partition_of(events: list[func.EventHubEvent]) -> str | None:
    # With cardinality=many, every event shares one trigger-metadata mapping holding the
    # PartitionContext of the batch (one batch never spans partitions).
    metadata = events[0].metadata or {}
    context = metadata.get("PartitionContext")
    if isinstance(context, dict) and context.get("PartitionId") is not None:
        return str(context["PartitionId"])
    return None


def to_batch(events: list[func.EventHubEvent]) -> EventBatch:
    """Strip the `azure.functions` wrappers so the domain code stays host-free."""
    if not events:
        return EventBatch([], [], [], None)
    return EventBatch(
        bodies=[e.get_body() for e in events],
        enqueued_times=[e.enqueued_time for e in events],
        sequence_numbers=[e.sequence_number for e in events],
        partition=_partition_of(events),
    )


def to_documents(docs: list[dict[str, Any]]) -> func.DocumentList:
    """The documents as the list a Cosmos DB output takes, each dict as it is.

    `DocumentList` is a `UserList`, and the Cosmos DB output converter serialises each element
    with `dict(d)`, so plain dicts go through unchanged (tests/functions/test_score.py runs the
    converter on them). Wrapping each in `Document.from_dict` copied it key by key through
    Python-level `__setitem__`: about 5 µs per scored document, most of a batch's budget.
    """
    return func.DocumentList(docs)


@bp.function_name("ScoreTransactions")
@bp.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%EVENT_HUB_NAME%",
    connection="EventHubConnection",
    consumer_group="%EVENT_HUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
    # Raw bytes: with a string or JSON data type the host would decode bodies before we can
    # reject a bad one, and a single malformed event could fail the whole batch.
    data_type=func.DataType.BINARY,
)
@bp.cosmos_db_output(
    arg_name="scored",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_SCORED_CONTAINER%",
)
@bp.cosmos_db_output(
    arg_name="rejected",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_REJECTED_CONTAINER%",
)
@bp.cosmos_db_output(
    arg_name="profiles",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_PROFILES_CONTAINER%",
)
def score_transactions(
    # typing.List, not list: the worker refuses PEP 585 generics in binding annotations (README: worker).
    events: typing.List[func.EventHubEvent],  # noqa: UP006
    scored: func.Out[func.DocumentList],
    rejected: func.Out[func.DocumentList],
    profiles: func.Out[func.DocumentList],
    context: func.Context,
) -> None:
    """Score the batch with the bundled model; every transaction becomes one scored or rejected document."""
    started = time.perf_counter()
    batch = to_batch(events)
    telemetry = get_telemetry()
    # Producer trace contexts are read only when telemetry is on: off, it costs nothing here.
    producers = traceparents((events[0].metadata or {}).get("PropertiesArray")) if telemetry.enabled and events else []
    model_version = "unavailable"
    settings = get_settings()
    limits = EnvelopeLimits(settings.max_event_bytes, settings.max_records_per_envelope)
    # The worker does not carry the invocation's trace context into a sync function's thread, so the
    # span is parented to it explicitly (shared/telemetry.py).
    parent = context.trace_context.trace_parent if telemetry.enabled else None
    history = get_history()
    with telemetry.batch_span(len(batch), batch.partition, producers, parent=parent):
        try:
            model = bundled_model.get()
            model_version = model.version
            result = score_batch(batch, model, limits=limits, history=history)
        except ModelIntegrityError:
            # Already logged once by LazyModel; keep the events rather than skipping them.
            unavailable = Rejection("model", "model_unavailable", "the model artifact failed its check")
            result = reject_all(batch, unavailable, limits=limits)
        scored.set(to_documents(result.scored))
        rejected.set(to_documents(result.rejected))
        if result.profiles and history is not None:
            if history.output:
                # Written by the host after the function returns, like the scored documents; a redelivered
                # batch finds its own payments in these states: the same features (shared/history.py).
                profiles.set(to_documents(result.profiles))
            history.remember(result.profiles)
    seconds = time.perf_counter() - started
    telemetry.record_batch(
        scored=len(result.scored),
        flagged=result.flagged,
        rejected=len(result.rejected),
        seconds=seconds,
        model_version=model_version,
    )
    logger.info(
        "scored %d transactions from %d events (%d flagged, %d rejected) in %.1f ms",
        len(result.scored),
        len(batch),
        result.flagged,
        len(result.rejected),
        seconds * 1000.0,
    )
