"""Score stage: an Event Hubs batch in, scored and rejected documents out to Cosmos DB."""

from __future__ import annotations

import logging
import time
import typing
from typing import Any

import azure.functions as func

from shared.behaviour.merchant_store import get_merchant_store
from shared.behaviour.store import StateWriteError, get_state_store
from shared.contract.schema import Rejection
from shared.scoring import bundled
from shared.scoring.batch import BatchResult, reject_all, reject_events, score_batch
from shared.scoring.events import EventBatch, Limits
from shared.scoring.model import ModelIntegrityError
from shared.settings import get_settings
from shared.telemetry import get_telemetry, traceparents

logger = logging.getLogger(__name__)

bp = func.Blueprint()


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
# What the function cannot turn into documents (the host's writes of its outputs after it returns,
# an account state that cannot be written) fails the invocation; without a policy the host would
# checkpoint past the batch and it would be lost. -1 retries indefinitely: for Event Hubs the
# partition waits (its checkpoint does not move) while the retries last, backing off to one try
# every 5 minutes, and the other partitions go on. Retries are counted in the instance's memory; a
# restart redelivers from the checkpoint, which is the same. Scoring is idempotent (documents keyed
# by id, states exact under redelivery), so a retry writes nothing twice.
# https://learn.microsoft.com/azure/azure-functions/functions-bindings-error-pages#retries
@bp.retry(
    strategy="exponential_backoff",
    max_retry_count="-1",
    minimum_interval="00:00:02",
    maximum_interval="00:05:00",
)
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
def score_transactions(
    # typing.List, not list: the worker refuses PEP 585 generics in binding annotations (README: worker).
    events: typing.List[func.EventHubEvent],  # noqa: UP006
    scored: func.Out[func.DocumentList],
    rejected: func.Out[func.DocumentList],
    context: func.Context,
) -> None:
    """Score the batch with the bundled model; every transaction becomes one scored or rejected document."""
    started = time.perf_counter()
    batch = to_batch(events)
    try:
        result, model_version = _score(batch, events, context)
    except StateWriteError:
        # Raised on purpose: the retry policy above runs the batch again, from the same checkpoint.
        logger.warning("account states could not be written for a batch of %d events; it will be retried", len(batch))
        raise
    except Exception:
        # The last resort: nothing of the batch is lost, whatever went wrong in our code.
        logger.exception(
            "scoring failed: %d events kept as rejected (internal_error) with their raw bodies", len(batch)
        )
        result, model_version = reject_events(batch), "unavailable"
    scored.set(to_documents(result.scored))
    rejected.set(to_documents(result.rejected))
    seconds = time.perf_counter() - started
    get_telemetry().record_batch(
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


def _score(batch: EventBatch, events: list[func.EventHubEvent], context: func.Context) -> tuple[BatchResult, str]:
    """The batch's documents and the model version that scored them."""
    telemetry = get_telemetry()
    # Producer trace contexts are read only when telemetry is on: off, it costs nothing here.
    producers = traceparents((events[0].metadata or {}).get("PropertiesArray")) if telemetry.enabled and events else []
    settings = get_settings()
    limits = Limits.of(settings)
    # The worker does not carry the invocation's trace context into a sync function's thread, so the
    # span is parented to it explicitly (shared/telemetry.py).
    parent = context.trace_context.trace_parent if telemetry.enabled else None
    with telemetry.batch_span(len(batch), batch.partition, producers, parent=parent):
        try:
            model = bundled.bundled_model.get()
        except ModelIntegrityError:
            # Already logged once by LazyModel; keep the events rather than skipping them.
            unavailable = Rejection("model", "model_unavailable", "the model artifact failed its check")
            return reject_all(batch, unavailable, limits=limits), "unavailable"
        result = score_batch(batch, model, limits=limits, store=get_state_store(), merchant_store=get_merchant_store())
        return result, model.version
